"""Annealed importance sampling (AIS) of a partition function, after Salakhutdinov & Murray
(2008), for any model given as a path of unnormalised marginals and their Gibbs transitions.

A `Path` anneals a set of units s (the density RBM's visible units, the classification RBM's
hidden units) from a base model p_0, whose partition function Z_0 is known and which can be
sampled exactly, to the target p_1 through unnormalised marginals log p*_beta(s), 0 <= beta <= 1,
each with a Markov transition that leaves p_beta invariant. Each run starts at an exact draw
s_0 ~ p_0 and, for k = 1..K, adds log p*_{beta_k}(s_{k-1}) - log p*_{beta_{k-1}}(s_{k-1}) to its
log-weight, then moves s_k ~ T_{beta_k}(. | s_{k-1}); log Z_1 ~ log Z_0 + log mean exp(log-weights):
unbiased in Z, so in expectation an underestimate of log Z (and the log-likelihood it gives is,
in expectation, optimistic).

The two paths shipped here both interpolate from a base-rate model A (biases fitted to the data,
no weights) to the target B, p_beta ~ exp((1 - beta) (-E_A) + beta (-E_B)):

- density RBM (`rbm_path`), annealing v with h summed out:
    log p*_beta(v) = (1 - beta) v.b_A + beta v.b + sum_j softplus(beta (c_j + v W_j)),
    log Z_0 = sum_i softplus(b_A,i) + H log 2; at beta = 1, log p*_1(v) = -F(v).
- classification RBM (`classrbm_path`), annealing h with x and y summed out (base: x_i
  Bernoulli(sigmoid(b_A,i)), y categorical with log-probabilities d_A, h uniform):
    log p*_beta(h) = beta h.c + sum_i softplus((1 - beta) b_A,i + beta (b_i + W_i h))
                     + logsumexp_y ((1 - beta) d_A,y + beta (d_y + U_y h)),
    log Z_0 = H log 2 + sum_i softplus(b_A,i) + logsumexp_y d_A,y; at beta = 1 it is
    genjax.structured.classrbm.hidden_log_weight. The transition samples x | h and y | h, then
    h | x, y, each from the joint at beta (base-rate interpolation of the x and y biases, the
    interaction and hidden-bias terms scaled by beta). Zero base biases (b_A = 0, d_A = 0) give
    the plain scaled-energy path exp(-beta E) from the uniform distribution.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from genjax.structured import classrbm
from genjax.structured.classrbm import ClassRBMParams
from genjax.structured.rbm import RBMParams, free_energy


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


def base_rate_label_bias(labels_N: np.ndarray, num_classes: int,
                         pseudocount: float = 1.0) -> np.ndarray:
  """Label biases of the base-rate model: the log class frequencies of `labels_N` (integers in
  [0, num_classes)), smoothed with `pseudocount` per class; shape (C,), logsumexp 0."""
  counts = np.bincount(np.asarray(labels_N, np.int64), minlength=num_classes)[:num_classes]
  return np.log((counts + pseudocount) / (counts.sum() + num_classes * pseudocount)).astype(
      np.float32)


# ------------------------------------------------------------------------------ the generic AIS


@struct.dataclass
class Path:
  """An annealing path from a base model (beta 0) to a target (beta 1) over units s (M, S).

  `model` is the pytree the functions read; the functions are static (part of the compiled
  program, so module-level functions compile once per shape):
    log_p(model, s_MxS, beta) -> (M,)          log p*_beta(s), unnormalised
    transition(model, s_MxS, beta, key) -> s'  a Markov step that leaves p_beta invariant
    sample_base(model, key, m) -> s_MxS        exact draws from p_0
    log_z_base(model) -> ()                    log Z_0
    log_ratio(model, s_MxS, beta_from, beta_to) -> (M,)   optional: log p*_to(s) - log p*_from(s)
      computed without subtracting two large sums (float32 rounding over thousands of steps).
  """

  model: Any
  log_p: Callable = struct.field(pytree_node=False)
  transition: Callable = struct.field(pytree_node=False)
  sample_base: Callable = struct.field(pytree_node=False)
  log_z_base: Callable = struct.field(pytree_node=False)
  log_ratio: Callable | None = struct.field(pytree_node=False, default=None)

  def increment(self, s_MxS: jax.Array, beta_from: jax.Array, beta_to: jax.Array) -> jax.Array:
    """log p*_{beta_to}(s) - log p*_{beta_from}(s), shape (M,)."""
    if self.log_ratio is not None:
      return self.log_ratio(self.model, s_MxS, beta_from, beta_to)
    return self.log_p(self.model, s_MxS, beta_to) - self.log_p(self.model, s_MxS, beta_from)


@jax.jit
def anneal(path: Path, betas_K: jax.Array, key: jax.Array, s0_MxS: jax.Array) -> jax.Array:
  """The log importance weights (M,) of M AIS runs started at `s0_MxS` (exact draws from the
  base model) along the inverse temperatures `betas_K` (0 first, 1 last); step k's transition
  draws with fold_in(key, k).

  The weight update and the transition read the same state, so the matrix product they share
  (v W for the density RBM, h W^T for the classification RBM) is computed once per step.
  """

  def body(carry, k):
    s, log_w = carry
    log_w = log_w + path.increment(s, betas_K[k - 1], betas_K[k])
    s = path.transition(path.model, s, betas_K[k], jax.random.fold_in(key, k))
    return (s, log_w), None

  m = s0_MxS.shape[0]
  (_, log_w), _ = jax.lax.scan(body, (s0_MxS, jnp.zeros((m,), jnp.float32)),
                               jnp.arange(1, betas_K.shape[0]))
  return log_w


def runs(path: Path, key: jax.Array, num_runs: int = 100,
         num_betas: int = 14_500) -> tuple[np.ndarray, float]:
  """(log-weights of `num_runs` AIS runs along `beta_schedule(num_betas)`, log Z_0)."""
  k0, k_ais = jax.random.split(key)
  s0 = path.sample_base(path.model, k0, num_runs)
  log_w = anneal(path, jnp.asarray(beta_schedule(num_betas)), k_ais, s0)
  return np.asarray(log_w, np.float64), float(path.log_z_base(path.model))


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


# ------------------------------------------------------------------------------ density RBM


def log_unnormalized(params: RBMParams, base_bias_D: jax.Array, v_MxD: jax.Array,
                     beta: jax.Array) -> jax.Array:
  """log p*_beta(v) on the path from the base-rate model (beta 0) to the RBM (beta 1): (M,)."""
  return ((1.0 - beta) * (v_MxD @ base_bias_D) + beta * (v_MxD @ params.b)
          + jnp.sum(jax.nn.softplus(beta * (v_MxD @ params.w + params.c)), -1))


def base_log_partition(base_bias_D: jax.Array, num_hidden: int) -> jax.Array:
  """log Z_0 of the path's start: sum_i softplus(b_A,i) + H log 2."""
  return jnp.sum(jax.nn.softplus(base_bias_D)) + num_hidden * jnp.log(2.0)


def transition(params: RBMParams, base_bias_D: jax.Array, v_MxD: jax.Array, beta: jax.Array,
               key: jax.Array) -> jax.Array:
  """One block Gibbs sweep v -> h -> v' that leaves p_beta invariant (the AIS transition)."""
  k_h, k_v = jax.random.split(key)
  a = v_MxD @ params.w + params.c
  h = jax.random.bernoulli(k_h, jax.nn.sigmoid(beta * a)).astype(a.dtype)
  pv = jax.nn.sigmoid((1.0 - beta) * base_bias_D + beta * (h @ params.w.T + params.b))
  return jax.random.bernoulli(k_v, pv).astype(a.dtype)


def _rbm_log_p(model, v_MxD, beta):
  return log_unnormalized(*model, v_MxD, beta)


def _rbm_log_ratio(model, v_MxD, beta_from, beta_to):
  # The bias term's difference in one product, and the hidden units' unit by unit.
  params, base_bias = model
  a = v_MxD @ params.w + params.c
  return ((beta_to - beta_from) * (v_MxD @ params.b - v_MxD @ base_bias)
          + jnp.sum(jax.nn.softplus(beta_to * a) - jax.nn.softplus(beta_from * a), -1))


def _rbm_transition(model, v_MxD, beta, key):
  return transition(*model, v_MxD, beta, key)


def _rbm_sample_base(model, key, m):
  return jax.random.bernoulli(key, jax.nn.sigmoid(model[1]),
                              (m, model[1].shape[0])).astype(jnp.float32)


def _rbm_log_z_base(model):
  return base_log_partition(model[1], model[0].w.shape[1])


def rbm_path(params: RBMParams, base_bias_D: np.ndarray) -> Path:
  """The density RBM's path over its visible units from the base-rate model with visible
  biases `base_bias_D` (see the module's docstring)."""
  return Path(model=(params, jnp.asarray(base_bias_D, jnp.float32)), log_p=_rbm_log_p,
              transition=_rbm_transition, sample_base=_rbm_sample_base,
              log_z_base=_rbm_log_z_base, log_ratio=_rbm_log_ratio)


# ------------------------------------------------------------------------------ classification RBM


def classrbm_log_unnormalized(params: ClassRBMParams, base_bias_D: jax.Array,
                              base_label_bias_C: jax.Array, h_MxH: jax.Array,
                              beta: jax.Array) -> jax.Array:
  """log p*_beta(h), x and y summed out, on the path from the base-rate model (beta 0) to the
  classification RBM (beta 1, where it is classrbm.hidden_log_weight): (M,)."""
  return (beta * (h_MxH @ params.c)
          + jnp.sum(jax.nn.softplus((1.0 - beta) * base_bias_D
                                    + beta * (h_MxH @ params.w.T + params.b)), -1)
          + jax.nn.logsumexp((1.0 - beta) * base_label_bias_C
                             + beta * (h_MxH @ params.u.T + params.d), -1))


def classrbm_base_log_partition(base_bias_D: jax.Array, base_label_bias_C: jax.Array,
                                num_hidden: int) -> jax.Array:
  """log Z_0 of the classification RBM's path: H log 2 + sum_i softplus(b_A,i) +
  logsumexp_y d_A,y."""
  return (num_hidden * jnp.log(2.0) + jnp.sum(jax.nn.softplus(base_bias_D))
          + jax.nn.logsumexp(base_label_bias_C))


def classrbm_transition(params: ClassRBMParams, base_bias_D: jax.Array,
                        base_label_bias_C: jax.Array, h_MxH: jax.Array, beta: jax.Array,
                        key: jax.Array) -> jax.Array:
  """One block Gibbs sweep h -> (x, y) -> h' of the joint at `beta` (x and y are independent
  given h), which leaves p_beta(h) invariant (the AIS transition): h' (M, H)."""
  k_x, k_y, k_h = jax.random.split(key, 3)
  px = jax.nn.sigmoid((1.0 - beta) * base_bias_D + beta * (h_MxH @ params.w.T + params.b))
  x = jax.random.bernoulli(k_x, px).astype(h_MxH.dtype)
  y = jax.random.categorical(
      k_y, (1.0 - beta) * base_label_bias_C + beta * (h_MxH @ params.u.T + params.d))
  # y U is a row of U per run: a gather, not a product.
  ph = jax.nn.sigmoid(beta * (x @ params.w + params.u[y] + params.c))
  return jax.random.bernoulli(k_h, ph).astype(h_MxH.dtype)


def _classrbm_log_p(model, h_MxH, beta):
  return classrbm_log_unnormalized(*model, h_MxH, beta)


def _classrbm_log_ratio(model, h_MxH, beta_from, beta_to):
  # Term by term, so that no two sums over D units are subtracted.
  params, b_a, d_a = model
  a_x = h_MxH @ params.w.T + params.b
  a_y = h_MxH @ params.u.T + params.d
  lerp = lambda base, a, beta: (1.0 - beta) * base + beta * a  # noqa: E731
  return ((beta_to - beta_from) * (h_MxH @ params.c)
          + jnp.sum(jax.nn.softplus(lerp(b_a, a_x, beta_to))
                    - jax.nn.softplus(lerp(b_a, a_x, beta_from)), -1)
          + jax.nn.logsumexp(lerp(d_a, a_y, beta_to), -1)
          - jax.nn.logsumexp(lerp(d_a, a_y, beta_from), -1))


def _classrbm_transition(model, h_MxH, beta, key):
  return classrbm_transition(*model, h_MxH, beta, key)


def _classrbm_sample_base(model, key, m):
  return jax.random.bernoulli(key, 0.5, (m, model[0].c.shape[0])).astype(jnp.float32)


def _classrbm_log_z_base(model):
  return classrbm_base_log_partition(model[1], model[2], model[0].c.shape[0])


def classrbm_path(params: ClassRBMParams, base_bias_D: np.ndarray,
                  base_label_bias_C: np.ndarray) -> Path:
  """The classification RBM's path over its hidden units from the base-rate model with visible
  biases `base_bias_D` and label biases `base_label_bias_C` (see the module's docstring)."""
  model = (params, jnp.asarray(base_bias_D, jnp.float32),
           jnp.asarray(base_label_bias_C, jnp.float32))
  return Path(model=model, log_p=_classrbm_log_p, transition=_classrbm_transition,
              sample_base=_classrbm_sample_base, log_z_base=_classrbm_log_z_base,
              log_ratio=_classrbm_log_ratio)


# ------------------------------------------------------------------------------ either model


def path_from_data(params: RBMParams | ClassRBMParams, x_NxD: np.ndarray,
                   labels_N: np.ndarray | None = None) -> Path:
  """The model's path from the base-rate model of the training data: `x_NxD` binary values or
  on-probabilities in [0, 1]; `labels_N` (integer classes) for the classification RBM."""
  base_bias = base_rate_bias(x_NxD)
  if isinstance(params, ClassRBMParams):
    if labels_N is None:
      raise ValueError("the classification RBM's base-rate model needs the training labels")
    return classrbm_path(params, base_bias, base_rate_label_bias(labels_N, params.d.shape[0]))
  return rbm_path(params, base_bias)


def estimate_log_partition(params: RBMParams | ClassRBMParams, base_bias_D: np.ndarray,
                           key: jax.Array, num_runs: int = 100, num_betas: int = 14_500,
                           base_label_bias_C: np.ndarray | None = None) -> AISEstimate:
  """One AIS estimate of log Z from `num_runs` runs along `beta_schedule(num_betas)`: of the
  density RBM, or of the classification RBM when `base_label_bias_C` is given."""
  path = (rbm_path(params, base_bias_D) if base_label_bias_C is None
          else classrbm_path(params, base_bias_D, base_label_bias_C))
  return log_mean_exp_interval(*runs(path, key, num_runs, num_betas))


def log_marginal_unnormalized(params: RBMParams | ClassRBMParams, x_BxD: jax.Array) -> jax.Array:
  """The target's unnormalised log p*(x), (B,): -F(v) for the density RBM, logsumexp_y -F(x, y)
  for the classification RBM; log p(x) = log p*(x) - log Z."""
  if isinstance(params, ClassRBMParams):
    return jax.nn.logsumexp(classrbm.class_scores(params, x_BxD), -1)
  return -free_energy(params, x_BxD)


def mean_log_likelihood(params: RBMParams | ClassRBMParams, v_NxD: jax.Array, log_z: float,
                        batch_size: int = 1000) -> float:
  """Mean log p(v) = log p*(v) - log Z over the rows of `v_NxD` (nats), p(v) the density RBM's
  or the classification RBM's marginal of the images (labels summed out)."""
  fn = jax.jit(log_marginal_unnormalized)
  total = 0.0
  for start in range(0, v_NxD.shape[0], batch_size):
    total += float(jnp.sum(fn(params, jnp.asarray(v_NxD[start:start + batch_size]))))
  return total / v_NxD.shape[0] - log_z
