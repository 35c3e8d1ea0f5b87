"""PRNG key derivation: one base key per run, a key per step, a key per example."""

import jax
import jax.numpy as jnp

from genjax import parallel


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
