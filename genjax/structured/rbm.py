"""Bernoulli-Bernoulli restricted Boltzmann machine: the model, without training or config.

Energy E(v, h) = -v.b - h.c - v W h over binary visible v (D) and hidden h (H) units, so

  p(h_j = 1 | v) = sigmoid(c_j + v W_j),   p(v_i = 1 | h) = sigmoid(b_i + W_i h),
  F(v) = -v.b - sum_j softplus(c_j + v W_j)         (free energy: p(v) = exp(-F(v)) / Z).

Block Gibbs sampling (noise independent of the device count under data parallelism), the CD
gradient estimate, log Z by enumeration for tiny models and the pseudo-log-likelihood.
genjax.families.rbm trains it; genjax.structured.ais estimates its log Z.
"""

import itertools

import jax
import jax.numpy as jnp
from flax import struct

from genjax.parallel import device_index


@struct.dataclass
class RBMParams:
  """Weights W_DxH, visible biases b_D and hidden biases c_H."""

  w: jax.Array
  b: jax.Array
  c: jax.Array


def hidden_probs(params: RBMParams, v_BxD: jax.Array) -> jax.Array:
  """p(h = 1 | v), shape (B, H)."""
  return jax.nn.sigmoid(v_BxD @ params.w + params.c)


def visible_probs(params: RBMParams, h_BxH: jax.Array) -> jax.Array:
  """p(v = 1 | h), shape (B, D)."""
  return jax.nn.sigmoid(h_BxH @ params.w.T + params.b)


def free_energy(params: RBMParams, v_BxD: jax.Array) -> jax.Array:
  """F(v) = -v.b - sum_j softplus(c_j + v W_j), shape (B,): log p(v) = -F(v) - log Z."""
  return -v_BxD @ params.b - jnp.sum(jax.nn.softplus(v_BxD @ params.w + params.c), axis=-1)


def energy(params: RBMParams, v_BxD: jax.Array, h_BxH: jax.Array) -> jax.Array:
  """E(v, h) = -v.b - h.c - v W h, shape (B,)."""
  return (-v_BxD @ params.b - h_BxH @ params.c
          - jnp.sum((v_BxD @ params.w) * h_BxH, axis=-1))


def _bernoulli(key: jax.Array, p_BxK: jax.Array, axis_name: str | None) -> jax.Array:
  """Bernoulli(p) draws; under data parallelism each device draws the global batch's noise
  and keeps its own rows, so the noise does not depend on the device count."""
  local = p_BxK.shape[0]
  n_dev = 1 if axis_name is None else jax.lax.psum(1, axis_name)
  u = jax.random.uniform(key, (n_dev * local, *p_BxK.shape[1:]), p_BxK.dtype)
  u = jax.lax.dynamic_slice_in_dim(u, device_index(axis_name) * local, local)
  return (u < p_BxK).astype(p_BxK.dtype)


def gibbs_step(params: RBMParams, v_BxD: jax.Array, key: jax.Array,
               axis_name: str | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One block Gibbs sweep v -> h -> v'. Returns (v' sampled, p(v'|h), h sampled)."""
  k_h, k_v = jax.random.split(key)
  h = _bernoulli(k_h, hidden_probs(params, v_BxD), axis_name)
  pv = visible_probs(params, h)
  return _bernoulli(k_v, pv, axis_name), pv, h


def gibbs_chain(params: RBMParams, v_BxD: jax.Array, key: jax.Array, num_steps: int,
                axis_name: str | None = None) -> tuple[jax.Array, jax.Array]:
  """`num_steps` block Gibbs sweeps from v (a `lax.scan`). Returns (v sampled, p(v | h))."""

  def body(carry, t):
    v, _ = carry
    v, pv, _ = gibbs_step(params, v, jax.random.fold_in(key, t), axis_name)
    return (v, pv), None

  (v, pv), _ = jax.lax.scan(body, (v_BxD, v_BxD), jnp.arange(num_steps))
  return v, pv


def exact_log_partition(params: RBMParams) -> jax.Array:
  """log Z by enumerating the smaller layer (2^min(D, H) states; for tiny RBMs and tests).

  Summing out the other layer in closed form: log Z = logsumexp_h [h.c + sum_i softplus(b_i +
  W_i h)] (or the same with the layers' roles swapped).
  """
  d, h = params.w.shape
  if min(d, h) > 24:
    raise ValueError(f"enumerating 2^{min(d, h)} states is too many; use AIS")
  w, b, c = (params.w, params.b, params.c) if h <= d else (params.w.T, params.c, params.b)
  states = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=w.shape[1])), w.dtype)
  log_unnorm = states @ c + jnp.sum(jax.nn.softplus(states @ w.T + b), axis=-1)
  return jax.nn.logsumexp(log_unnorm)


def pseudo_log_likelihood(params: RBMParams, v_BxD: jax.Array, key: jax.Array) -> jax.Array:
  """Stochastic pseudo-log-likelihood D * log sigmoid(F(v with bit i flipped) - F(v)), one
  random bit i per example; shape (B,)."""
  d = v_BxD.shape[-1]
  i = jax.random.randint(key, (v_BxD.shape[0],), 0, d)
  flip = jax.nn.one_hot(i, d, dtype=v_BxD.dtype)
  v_flipped = v_BxD + flip - 2.0 * v_BxD * flip
  return d * jax.nn.log_sigmoid(free_energy(params, v_flipped) - free_energy(params, v_BxD))


def cd_gradient(params: RBMParams, v0_BxD: jax.Array, vk_BxD: jax.Array) -> RBMParams:
  """The CD/PCD estimate of d log p / d theta: positive statistics of the data minus negative
  statistics of the chains' states, with hidden probabilities (not samples) in both."""
  ph0, phk = hidden_probs(params, v0_BxD), hidden_probs(params, vk_BxD)
  n_pos, n_neg = v0_BxD.shape[0], vk_BxD.shape[0]
  return RBMParams(w=v0_BxD.T @ ph0 / n_pos - vk_BxD.T @ phk / n_neg,
                   b=jnp.mean(v0_BxD, 0) - jnp.mean(vk_BxD, 0),
                   c=jnp.mean(ph0, 0) - jnp.mean(phk, 0))


def chain_grid(params: RBMParams, key: jax.Array, v0_BxD: jax.Array, num_frames: int,
               steps_between: int) -> jax.Array:
  """Snapshots p(v | h) of B chains every `steps_between` sweeps: (num_frames, B, D), for a
  grid whose columns follow each chain from its start `v0_BxD` (e.g. test images)."""

  def body(v, t):
    v, pv = gibbs_chain(params, v, jax.random.fold_in(key, t), steps_between)
    return v, pv

  _, frames = jax.lax.scan(body, v0_BxD, jnp.arange(num_frames))
  return frames
