"""JEM: a classifier's logits read as an energy-based model of x, sampled by SGLD from a buffer.

Grathwohl et al. (2020), "Your classifier is secretly an energy based model and you should treat
it like one": the logits f(x) of any classifier define p(x, y) = exp(f(x)[y]) / Z, so
  E(x) = -logsumexp_y f(x)[y],   log p(x) = -E(x) - log Z,   log p(y | x) = log_softmax f(x)[y],
and -log p(x, y) = -log p(y | x) - log p(x). The gradient of -log p(x) in the parameters is
E'(x_data) - E_p[E'(x)], estimated by E(x_data) - E(x_sgld) with x_sgld drawn by K steps of
stochastic gradient Langevin dynamics,
  x <- x - alpha * grad_x E(x) + sigma * eps = x + alpha * grad_x logsumexp_y f(x)[y] + sigma * eps,
started from a persistent replay buffer whose entries are re-initialised from uniform noise
with probability `reinit_prob` (the paper: alpha = 1, sigma = 0.01, K = 20, 10,000 entries,
0.05; the step size and the noise are not Langevin's alpha / 2 and sqrt(alpha), the paper's
choice). Their CIFAR-10 WideResNet-28-10 reaches 92.9 % accuracy with an Inception score of
8.76 and an FID of 38.4; training is known to diverge, which the paper's small learning rate
and the replay buffer hold off.

Data parallelism: every device runs SGLD for its slice of the global batch with one key per
example of the global batch (genjax.rng.example_keys: devices draw different noise, the same
noise a one-device run draws for that example); the buffer rows are drawn without replacement
from a key every device shares, and the devices' samples are gathered, so every copy of the
buffer receives the same rows and stays the same.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from genjax import parallel, rng

# Streams folded into the sampler's key: which rows, which of them restart, the restarts'
# noise, each SGLD step's noise.
_ROWS, _REINIT, _UNIFORM, _NOISE = range(4)


def config_fields(**overrides) -> dict:
  """The `model` fields of a classifier that can be trained as a JEM: `joint_weight` (lambda in
  [0, 1]: the loss is (1 - lambda) * CE + lambda * (-log p(x, y)); 0, the default, is the
  plain classifier), and the sampler's `sgld_steps`, `sgld_step_size`, `sgld_noise`,
  `buffer_size` and `reinit_prob` (the paper's values)."""
  fields = {"joint_weight": 0.0, "sgld_steps": 20, "sgld_step_size": 1.0, "sgld_noise": 0.01,
            "buffer_size": 10_000, "reinit_prob": 0.05}
  for name, value in overrides.items():
    if name not in fields:
      raise KeyError(f"no JEM model field {name!r}; expected one of {tuple(fields)}")
    fields[name] = value
  return fields


@dataclasses.dataclass(frozen=True)
class JEMHParams:
  """The JEM objective's hyper-parameters (static: part of the compiled step)."""

  joint_weight: float = 0.0
  sgld_steps: int = 20
  sgld_step_size: float = 1.0
  sgld_noise: float = 0.01
  buffer_size: int = 10_000
  reinit_prob: float = 0.05


def hparams(model: ml_collections.ConfigDict, batch_size: int) -> JEMHParams:
  """The JEM hyper-parameters of a `model` config section (fields it lacks: config_fields'
  defaults), checked: ValueError naming the field and its allowed values."""
  default = config_fields()
  hp = JEMHParams(**{name: type(value)(model.get(name, value))
                     for name, value in default.items()})
  if not 0.0 <= hp.joint_weight <= 1.0:  # NaN fails too
    raise ValueError(f"model.joint_weight must be in [0, 1] (0: the classifier's cross-entropy, "
                     f"1: -log p(x, y)), got {hp.joint_weight}")
  if not 0.0 <= hp.reinit_prob <= 1.0:
    raise ValueError(f"model.reinit_prob must be in [0, 1], got {hp.reinit_prob}")
  if hp.sgld_steps < 1:
    raise ValueError(f"model.sgld_steps must be >= 1, got {hp.sgld_steps}")
  if not hp.sgld_step_size > 0.0:
    raise ValueError(f"model.sgld_step_size must be > 0, got {hp.sgld_step_size}")
  if not hp.sgld_noise >= 0.0:
    raise ValueError(f"model.sgld_noise must be >= 0, got {hp.sgld_noise}")
  if hp.joint_weight > 0.0 and hp.buffer_size < batch_size:
    # Each step draws a batch of distinct rows.
    raise ValueError(f"model.buffer_size must be >= data.batch_size ({batch_size}), got "
                     f"{hp.buffer_size}")
  return hp


def energy(logits_BxK: jax.Array) -> jax.Array:
  """E(x) = -logsumexp_y f(x)[y] of a batch's logits: (B,)."""
  return -jax.nn.logsumexp(logits_BxK, axis=-1)


def init_buffer(key: jax.Array, size: int, image_shape: tuple[int, ...]) -> jax.Array:
  """A replay buffer of `size` images of uniform [0, 1) noise (the data's range):
  (size, *image_shape)."""
  return jax.random.uniform(key, (size, *image_shape), jnp.float32)


def sgld(logits_fn, x: jax.Array, keys_B: jax.Array, steps: int, step_size: float,
         noise: float) -> jax.Array:
  """`steps` SGLD steps x <- x + step_size * grad_x logsumexp_y f(x)[y] + noise * eps.

  Args:
    logits_fn: x (B, ...) -> logits (B, K), example by example (no batch statistics).
    x: the starts (B, ...).
    keys_B: one key per example; step t's eps of example i is normal(fold_in(keys_B[i], t)).
    steps, step_size, noise: K, alpha and sigma.
  Returns:
    The samples (B, ...), without a gradient to the parameters.
  """
  # The sum over the batch: example i's logits depend on x_i alone, so its gradient is each
  # example's own.
  grad_log_mass = jax.grad(lambda x: jnp.sum(-energy(logits_fn(x))))

  def one_step(t, x):
    eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, t), x.shape[1:]))(keys_B)
    return x + step_size * grad_log_mass(x) + noise * eps

  return jax.lax.stop_gradient(jax.lax.fori_loop(0, steps, one_step, x))


def buffer_starts(buffer_NxD: jax.Array, key: jax.Array, local_batch: int, reinit_prob: float,
                  axis_name: str | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """This device's SGLD starts: buffer rows, each replaced by uniform noise with probability
  `reinit_prob`.

  Args:
    buffer_NxD: the replay buffer (N, ...), the same on every device.
    key: the step's sampler key (the same on every device).
    local_batch: this device's slice of the global batch.
    reinit_prob: the probability that a start is fresh noise.
    axis_name: the device axis under data parallelism.
  Returns:
    The starts (local_batch, ...), the global batch's buffer rows (global batch,), distinct,
    drawn from `key` alone, and whether each start was re-initialised (local_batch,).
  """
  n_devices = 1 if axis_name is None else jax.lax.axis_size(axis_name)
  global_batch = local_batch * n_devices
  rows = jax.random.choice(jax.random.fold_in(key, _ROWS), buffer_NxD.shape[0], (global_batch,),
                           replace=False)
  local_rows = jax.lax.dynamic_slice_in_dim(
      rows, parallel.device_index(axis_name) * local_batch, local_batch)
  shape = buffer_NxD.shape[1:]
  u_B = rng.uniform(jax.random.fold_in(key, _REINIT), local_batch, (), axis_name)
  reinit_B = u_B < reinit_prob
  fresh = rng.uniform(jax.random.fold_in(key, _UNIFORM), local_batch, shape, axis_name)
  mask = reinit_B.reshape(-1, *([1] * len(shape)))
  return jnp.where(mask, fresh, buffer_NxD[local_rows]), rows, reinit_B


def replay_sgld(buffer_NxD: jax.Array, logits_fn, key: jax.Array, local_batch: int,
                hp: JEMHParams, axis_name: str | None = None) -> tuple[jax.Array, jax.Array]:
  """One round of the persistent sampler: starts from the buffer (buffer_starts), `sgld_steps`
  SGLD steps, the samples written back to their rows.

  Args:
    buffer_NxD: the replay buffer (N, ...).
    logits_fn: x -> logits, example by example (the classifier in inference mode).
    key: the step's sampler key (the same on every device).
    local_batch: this device's slice of the global batch.
    hp: the sampler's settings.
    axis_name: the device axis under data parallelism.
  Returns:
    This device's samples (local_batch, ...) and the updated buffer (every device's samples
    written, so the copies stay equal).
  """
  x0, rows, _ = buffer_starts(buffer_NxD, key, local_batch, hp.reinit_prob, axis_name)
  keys_B = rng.example_keys(jax.random.fold_in(key, _NOISE), local_batch, axis_name)
  x = sgld(logits_fn, x0, keys_B, hp.sgld_steps, hp.sgld_step_size, hp.sgld_noise)
  x_all = x if axis_name is None else jax.lax.all_gather(x, axis_name, tiled=True)
  return x, buffer_NxD.at[rows].set(x_all)
