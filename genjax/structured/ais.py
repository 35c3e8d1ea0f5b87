"""Annealed importance sampling (AIS) for an RBM's log partition function, after Salakhutdinov
& Murray (2008), and the test log-likelihood it gives.

The path runs from a base-rate model A (visible biases b_A fitted to the data, no weights) to
the RBM B through the unnormalised marginals

  log p*_beta(v) = (1 - beta) v.b_A + beta v.b_B + sum_j softplus(beta (c_j + v W_j)),

each the visible marginal of the joint exp((1 - beta) v.b_A + beta (v.b_B + h.c + v W h)), whose
block Gibbs sweep is the AIS transition. At beta = 0 the partition function is known,
log Z_0 = sum_i softplus(b_A,i) + H log 2; at beta = 1, log p*_1(v) = -F(v). Each run's
log-weight sums log p*_{beta_k}(v_k) - log p*_{beta_{k-1}}(v_k) along its chain, and
log Z_B ~ log Z_0 + log mean exp(log-weights): unbiased in Z, so in expectation an
underestimate of log Z (and the log-likelihood it gives is, in expectation, optimistic).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from genjax.families.rbm import RBMParams, free_energy


def beta_schedule(num_betas: int = 14_500) -> np.ndarray:
  """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 spaced as Salakhutdinov & Murray's
  14,500: 500 uniformly in [0, 0.5), 4,000 in [0.5, 0.9), 10,000 in [0.9, 1] (scaled to
  `num_betas` in the same proportions)."""
  if num_betas < 10:
    raise ValueError(f"num_betas must be at least 10, got {num_betas}")
  n1 = max(1, round(num_betas * 500 / 14_500))
  n2 = max(1, round(num_betas * 4_000 / 14_500))
  n3 = num_betas - n1 - n2
  return np.concatenate([np.linspace(0.0, 0.5, n1, endpoint=False),
                         np.linspace(0.5, 0.9, n2, endpoint=False),
                         np.linspace(0.9, 1.0, n3 + 1)]).astype(np.float32)


def base_rate_bias(x_NxD: np.ndarray, pseudocount: float = 1.0) -> np.ndarray:
  """Visible biases of the base-rate model: log-odds of each unit's on-probability in the data
  (binary values or probabilities in [0, 1]), smoothed with `pseudocount` on and off."""
  x = np.asarray(x_NxD, np.float64)
  p = (x.sum(0) + pseudocount) / (len(x) + 2.0 * pseudocount)
  return np.log(p / (1.0 - p)).astype(np.float32)


def log_unnormalized(params: RBMParams, base_bias_D: jax.Array, v_MxD: jax.Array,
                     beta: jax.Array) -> jax.Array:
  """log p*_beta(v) on the path from the base-rate model (beta 0) to the RBM (beta 1): (M,)."""
  return ((1.0 - beta) * (v_MxD @ base_bias_D) + beta * (v_MxD @ params.b)
          + jnp.sum(jax.nn.softplus(beta * (v_MxD @ params.w + params.c)), -1))


def base_log_partition(base_bias_D: jax.Array, num_hidden: int) -> jax.Array:
  """log Z_0 of the path's start: sum_i softplus(b_A,i) + H log 2."""
  return jnp.sum(jax.nn.softplus(base_bias_D)) + num_hidden * jnp.log(2.0)


def _sweep(params: RBMParams, base_bias_D: jax.Array, a_MxH: jax.Array, beta: jax.Array,
           key: jax.Array) -> jax.Array:
  # a = v W + c of the current state, computed once per step by the caller.
  k_h, k_v = jax.random.split(key)
  h = jax.random.bernoulli(k_h, jax.nn.sigmoid(beta * a_MxH)).astype(a_MxH.dtype)
  pv = jax.nn.sigmoid((1.0 - beta) * base_bias_D + beta * (h @ params.w.T + params.b))
  return jax.random.bernoulli(k_v, pv).astype(a_MxH.dtype)


@jax.jit
def ais_log_weights(params: RBMParams, base_bias_D: jax.Array, betas_K: jax.Array,
                    key: jax.Array, v0_MxD: jax.Array) -> jax.Array:
  """The log importance weights (M,) of M AIS runs started at `v0_MxD` (exact draws from the
  base-rate model) along the inverse temperatures `betas_K` (0 first, 1 last).

  Each step costs two matrix products: v W serves both the weight update and the hidden draw.
  """

  def body(carry, k):
    v, log_w = carry
    b_prev, b_next = betas_K[k - 1], betas_K[k]
    a = v @ params.w + params.c
    log_w = (log_w + (b_next - b_prev) * (v @ params.b - v @ base_bias_D)
             + jnp.sum(jax.nn.softplus(b_next * a) - jax.nn.softplus(b_prev * a), -1))
    v = _sweep(params, base_bias_D, a, b_next, jax.random.fold_in(key, k))
    return (v, log_w), None

  m = v0_MxD.shape[0]
  (_, log_w), _ = jax.lax.scan(body, (v0_MxD, jnp.zeros((m,), v0_MxD.dtype)),
                               jnp.arange(1, betas_K.shape[0]))
  return log_w


def transition(params: RBMParams, base_bias_D: jax.Array, v_MxD: jax.Array, beta: jax.Array,
               key: jax.Array) -> jax.Array:
  """One block Gibbs sweep v -> h -> v' that leaves p_beta invariant (the AIS transition)."""
  return _sweep(params, base_bias_D, v_MxD @ params.w + params.c, beta, key)


def log_mean_exp_interval(log_w: np.ndarray, log_z_base: float) -> "AISEstimate":
  """The estimate log Z_0 + log mean exp(log_w) and log(Z +- 3 standard errors)."""
  log_w = np.asarray(log_w, np.float64)
  top = log_w.max()
  r = np.exp(log_w - top)
  mean = r.mean()
  sem = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else 0.0
  lo = np.log(mean - 3 * sem) if mean - 3 * sem > 0 else -np.inf
  return AISEstimate(log_z=float(np.log(mean) + top + log_z_base),
                     log_z_minus_3sd=float(lo + top + log_z_base),
                     log_z_plus_3sd=float(np.log(mean + 3 * sem) + top + log_z_base),
                     log_z_base=float(log_z_base), log_weights=log_w)


@dataclasses.dataclass(frozen=True)
class AISEstimate:
  """log Z estimate, its +-3 standard-error interval (log(Z +- 3 sigma), as S&M 2008 report)
  and the log-weights behind it."""

  log_z: float
  log_z_minus_3sd: float  # -inf when Z - 3 sigma <= 0
  log_z_plus_3sd: float
  log_z_base: float
  log_weights: np.ndarray

  @property
  def effective_sample_size(self) -> float:
    w = np.exp(self.log_weights - self.log_weights.max())
    return float(w.sum() ** 2 / (w ** 2).sum())


def ais_runs(params: RBMParams, base_bias_D: np.ndarray, key: jax.Array, num_runs: int = 100,
             num_betas: int = 14_500) -> tuple[np.ndarray, float]:
  """(log-weights of `num_runs` AIS runs along `beta_schedule(num_betas)`, log Z_0)."""
  b_a = jnp.asarray(base_bias_D, jnp.float32)
  k0, k_ais = jax.random.split(key)
  v0 = jax.random.bernoulli(k0, jax.nn.sigmoid(b_a), (num_runs, b_a.shape[0]))
  log_w = ais_log_weights(params, b_a, jnp.asarray(beta_schedule(num_betas)), k_ais,
                          v0.astype(jnp.float32))
  return np.asarray(log_w, np.float64), float(base_log_partition(b_a, params.w.shape[1]))


def estimate_log_partition(params: RBMParams, base_bias_D: np.ndarray, key: jax.Array,
                           num_runs: int = 100, num_betas: int = 14_500) -> AISEstimate:
  """One AIS estimate of log Z from `num_runs` runs along `beta_schedule(num_betas)`."""
  return log_mean_exp_interval(*ais_runs(params, base_bias_D, key, num_runs, num_betas))


def mean_log_likelihood(params: RBMParams, v_NxD: jax.Array, log_z: float,
                        batch_size: int = 1000) -> float:
  """Mean log p(v) = -F(v) - log Z over the rows of `v_NxD` (nats)."""
  fe = jax.jit(free_energy)
  total = 0.0
  for start in range(0, v_NxD.shape[0], batch_size):
    total += float(jnp.sum(fe(params, jnp.asarray(v_NxD[start:start + batch_size]))))
  return -total / v_NxD.shape[0] - log_z
