"""PRNG key derivation: one base key per run, a key per step, a key per example."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax import parallel

# Levels of quantised_normal: 2^16 equiprobable ones, four to a threefry2x32 call.
_LEVEL_BITS = 16
_LEVELS_PER_CALL = 4


def step_key(base_key: jax.Array, step: jax.Array) -> jax.Array:
  """The key of training step `step`: a pure function of the run's base key and the step."""
  return jax.random.fold_in(base_key, step)


def example_keys(key: jax.Array, local_batch: int, axis_name: str | None = None) -> jax.Array:
  """One key per example of this device's slice of the global batch.

  Keys are folded from the example's index in the *global* batch, so device i
  (axis index i) draws for examples [i * local_batch, (i + 1) * local_batch).
  Devices therefore draw different noise, and a run on N devices draws exactly
  the noise of a one-device run with the same global batch.
  """
  index = parallel.device_index(axis_name) * local_batch + jnp.arange(local_batch)
  return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index)


def normal(key: jax.Array, local_batch: int, shape: tuple[int, ...],
           axis_name: str | None = None) -> jax.Array:
  """Standard normal noise of shape (local_batch, *shape), drawn per example (see example_keys)."""
  keys = example_keys(key, local_batch, axis_name)
  return jax.vmap(lambda k: jax.random.normal(k, shape))(keys)


def uniform(key: jax.Array, local_batch: int, shape: tuple[int, ...],
            axis_name: str | None = None) -> jax.Array:
  """Uniform [0, 1) draws of shape (local_batch, *shape), drawn per example (see example_keys)."""
  keys = example_keys(key, local_batch, axis_name)
  return jax.vmap(lambda k: jax.random.uniform(k, shape))(keys)


def bernoulli(key: jax.Array, p: jax.Array, axis_name: str | None = None) -> jax.Array:
  """Bernoulli(p) draws with one key per example along p's leading axis (see example_keys)."""
  keys = example_keys(key, p.shape[0], axis_name)
  return jax.vmap(lambda k, q: jax.random.bernoulli(k, q))(keys, p)


def quantised_normal(key: jax.Array, local_batch: int, width: int,
                     axis_name: str | None = None) -> jax.Array:
  """Standard normal noise of shape (local_batch, width), quantised to 2^16 equiprobable levels:
  a draw is Phi^-1((u + 1/2) / 2^16) for a uniform 16-bit integer u (Phi^-1 the normal quantile
  function), so levels are symmetric about 0 and reach +-4.33.

  Its bits come from one counter-based threefry2x32 call per four draws: example b's draws
  4c .. 4c + 3 are the 16-bit halves of threefry2x32(key, (g, c)), g the example's index in the
  global batch (device i holds examples [i * local_batch, (i + 1) * local_batch)). A draw is a
  pure function of (key, g, j): a run on N devices draws the noise of a one-device run, and a
  narrower draw is a prefix of a wider one. This costs a quarter of the threefry calls of
  `normal` (which spends a call per draw and a key per example); use `key` for nothing else,
  as its counters (0, c) are fold_in(key, c)'s. `key` must be a threefry2x32 key.
  """
  if str(jax.random.key_impl(key)) != "threefry2x32":
    raise ValueError(f"quantised_normal needs a threefry2x32 key, got {jax.random.key_impl(key)}")
  k = jax.random.key_data(key)
  calls = -(-width // _LEVELS_PER_CALL)
  g = parallel.device_index(axis_name) * local_batch + jnp.arange(local_batch)
  a, b = threefry2x32(k[0], k[1], g.astype(jnp.uint32)[:, None],
                      jnp.arange(calls, dtype=jnp.uint32)[None, :])
  mask = jnp.uint32((1 << _LEVEL_BITS) - 1)
  u = jnp.stack([a & mask, a >> _LEVEL_BITS, b & mask, b >> _LEVEL_BITS], axis=-1)
  u = u.reshape((local_batch, calls * _LEVELS_PER_CALL))[:, :width]
  return normal_level(u)


# Threefry-2x32's rotation distances, by round within a group of four, alternating groups.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array,
                 x1: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The Threefry-2x32 hash (20 rounds; Salmon et al. 2011) of counter words (x0, x1) under key
  words (k0, k1), all uint32 and broadcast together: JAX's threefry2x32, written out as plain
  array operations so that XLA fuses all 20 rounds into one pass (JAX's CPU lowering loops over
  them, writing both words to memory each time)."""
  ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
  x0, x1 = x0 + ks[0], x1 + ks[1]
  for i in range(5):
    for r in _ROTATIONS[i % 2]:
      x0 = x0 + x1
      x1 = x0 ^ ((x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r)))
    x0 = x0 + ks[(i + 1) % 3]
    x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
  return x0, x1


def normal_level(u: jax.Array) -> jax.Array:
  """The standard normal quantile at (u + 1/2) / 2^16 of 16-bit integers u (any integer dtype):
  sqrt(2) erfinv((2u + 1) / 2^16 - 1), whose argument is exact in float32."""
  v = (2 * u.astype(jnp.int32) + (1 - (1 << _LEVEL_BITS))).astype(jnp.float32)
  return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(v * np.float32(2.0 ** -_LEVEL_BITS))
