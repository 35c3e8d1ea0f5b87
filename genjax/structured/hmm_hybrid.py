"""A supervised HMM fitted to the blend lambda * log p(x, y) + (1 - lambda) * log p(y | x).

The per-sequence objective is the convex blend of Bouchard & Triggs (2004) and Bishop & Lasserre
(2007): with lambda = joint_weight,

  lambda log p(x, y) + (1 - lambda) log p(y | x) = log p(x, y) - (1 - lambda) log p(x),

summed over the labelled sequences, plus the log-density of a Dirichlet(k + 1) prior on every
row of the HMM (initial states and transitions: k = trans_k; emissions: k = emit_k) at full
weight for every lambda. Add-k counts are that prior's MAP, so at lambda = 1 the optimum is the
closed form of `hmm.fit_supervised` (counts plus k, normalised); at lambda = 0 it is the HMM's
conditional-likelihood fit, the locally normalised twin of a CRF with the HMM's features.

The parameters are unnormalised logits, each row's softmax a distribution. log p(x, y) is read
from the sequences' counts (complete-data sufficient statistics), log p(x) from the scaled
forward recursion (`hmm.packed_log_likelihood`) over the sequences `pack`ed once; the gradient
is jax.grad's, and the solver full-batch L-BFGS (genjax.classical.logistic.minimize_lbfgs).

A cell whose prior count is 0 (k = 0) and which the training data never shows is a structural
zero, as in the closed form: its probability stays 0 for every lambda (its logit is masked out,
so its gradient is 0 and L-BFGS never moves it). The optimum at lambda = 1 would put it at
-inf, which no finite logit reaches.

L-BFGS runs on logits scaled per cell (`step_scales`) from the counted HMM: on CoNLL-2000 it
meets tol = 1e-6 in 13 (chunking) and 19 (POS) iterations at lambda = 0.5. At lambda = 0 it is
slow: log p(y | x) is nearly flat along directions that log p(x, y) pins (a factor on one
symbol's emission probability in every state cancels in p(y | x) but for the rows'
renormalisation), and with emit_k = 0 no prior holds the emissions; 100 iterations leave a
gradient norm near 2e-4 (experiments/configs/hmm_tagger.py).
"""

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from genjax.classical.logistic import minimize_lbfgs
from genjax.structured import hmm as H


def check_joint_weight(joint_weight, field: str = "model.joint_weight") -> float:
  """`joint_weight` as a float, or a ValueError if it is not in [0, 1] (NaN included)."""
  value = float(joint_weight)
  if not 0.0 <= value <= 1.0:
    raise ValueError(f"{field} must be in [0, 1] (1: log p(x, y), 0: log p(y | x)); "
                     f"got {joint_weight!r}")
  return value


@flax.struct.dataclass
class Labelled:
  """Fully labelled sequences as the objective reads them: their counts (an `hmm.Stats` whose
  emission is the K x V table of state-symbol counts) and their symbols `pack`ed for the
  forward recursion. `num_tokens` scales the objective to nats per token."""

  counts: H.Stats
  packed: H.Packed
  num_tokens: int = flax.struct.field(pytree_node=False)


def labelled(x_NxT: np.ndarray, states_NxT: np.ndarray, mask_NxT: np.ndarray, num_states: int,
             num_symbols: int, chunk_tokens: int = 1 << 20) -> Labelled:
  """`Labelled` of right-padded symbol ids x_NxT, states_NxT (anything at padding) and mask_NxT;
  host-side, once per data set."""
  x_NxT, mask_NxT = np.asarray(x_NxT), np.asarray(mask_NxT, bool)
  states_NxT = np.where(mask_NxT, np.asarray(states_NxT), 0)
  emission = H.Categorical(jnp.zeros((num_states, num_symbols)))
  counts = H.supervised_stats(emission, jnp.asarray(x_NxT), jnp.asarray(states_NxT),
                              jnp.asarray(mask_NxT))
  lengths = mask_NxT.sum(1)
  packed = H.pack([x_NxT[i, :n] for i, n in enumerate(lengths)], chunk_tokens=chunk_tokens)
  return Labelled(counts, packed, int(lengths.sum()))


@flax.struct.dataclass
class Logits:
  """Unnormalised log-parameters: the softmax of init_K, of each row of trans_KxK (from a state)
  and of each row of emit_KxV (a state's symbols) is a distribution."""

  init_K: jax.Array
  trans_KxK: jax.Array
  emit_KxV: jax.Array


def prior_counts(data: Labelled, trans_k: float, emit_k: float) -> Logits:
  """Counts plus k, per cell: the weights of log theta in log p(x, y) + log Dirichlet(k + 1)
  (whose normalised rows are the closed form); a cell of weight 0 is a structural zero."""
  c = data.counts
  return Logits(c.init_K + trans_k, c.trans_KxK + trans_k, c.emission + emit_k)


def log_parameters(logits: Logits, weights: Logits) -> Logits:
  """Row-wise log-softmax of the logits over the support (weights > 0); -inf off it."""
  return jax.tree.map(
      lambda eta, w: jax.nn.log_softmax(jnp.where(w > 0, eta, -jnp.inf), axis=-1),
      logits, weights)


def to_hmm(logits: Logits, weights: Logits, emit_k: float) -> H.HMM:
  """The HMM of `logits` (Categorical emissions with add-`emit_k` smoothing, as fit_supervised
  would give them)."""
  log = log_parameters(logits, weights)
  return H.HMM(log.init_K, log.trans_KxK, H.Categorical(log.emit_KxV, pseudo_count=emit_k))


def from_hmm(hmm: H.HMM, weights: Logits) -> Logits:
  """Logits of an HMM (its log-parameters; 0 at structural zeros, where they are masked out):
  a finite starting point for L-BFGS."""
  log = Logits(hmm.log_pi_K, hmm.log_A_KxK, hmm.emission.log_B_KxV)
  return jax.tree.map(lambda lp, w: jnp.where(w > 0, lp, 0.0), log, weights)


def terms(logits: Logits, data: Labelled, trans_k: float, emit_k: float) -> dict:
  """{"joint": sum of log p(x, y), "marginal": sum of log p(x), "prior": the Dirichlet(k + 1)
  log-density up to its constant, sum of k log theta} over the labelled sequences."""
  weights = prior_counts(data, trans_k, emit_k)
  log = log_parameters(logits, weights)
  # Off the support log theta is -inf and its weight 0: the product is taken as 0, not NaN.
  safe = jax.tree.map(lambda lp, w: jnp.where(w > 0, lp, 0.0), log, weights)
  c = data.counts
  joint = (jnp.sum(c.init_K * safe.init_K) + jnp.sum(c.trans_KxK * safe.trans_KxK)
           + jnp.sum(c.emission * safe.emit_KxV))
  prior = (trans_k * (jnp.sum(safe.init_K) + jnp.sum(safe.trans_KxK))
           + emit_k * jnp.sum(safe.emit_KxV))
  marginal = H.packed_log_likelihood(to_hmm(logits, weights, emit_k), data.packed)
  return {"joint": joint, "marginal": marginal, "prior": prior}


def objective(logits: Logits, data: Labelled, joint_weight: jax.Array, trans_k: float,
              emit_k: float) -> jax.Array:
  """The negated blend plus log prior, per token: -(sum log p(x, y) - (1 - joint_weight)
  sum log p(x) + log prior) / num_tokens (a scalar, to minimise).

  NaN where the forward recursion underflows (p(x) = 0 in float32: far from any optimum, where
  every training sentence keeps a probability of at least its labelled path's), so that a line
  search rejects such a trial step instead of accepting the -inf it would give."""
  t = terms(logits, data, trans_k, emit_k)
  blend = t["joint"] - (1.0 - joint_weight) * t["marginal"] + t["prior"]
  return jnp.where(jnp.isfinite(t["marginal"]), -blend / data.num_tokens, jnp.nan)


def step_scales(hmm0: H.HMM, data: Labelled, trans_k: float, emit_k: float) -> Logits:
  """sqrt(num_tokens / (w + e)) per cell (1 at structural zeros), w its weight (counts plus k)
  and e its expected count under hmm0 given the sentences' symbols: about the inverse square
  root of the per-token objective's curvature along the cell's logit (w at lambda = 1; e bounds
  what log p(x) adds below 1, as on transitions that only competing paths take). The weights
  span 0.1 to 10^5: L-BFGS on logits0 + scales * u sees every cell at one scale, and
  converges in tens of iterations instead of hundreds."""
  weights = prior_counts(data, trans_k, emit_k)
  e = H.packed_stats(hmm0, data.packed)
  expected = Logits(e.init_K, e.trans_KxK, e.emission)

  def scale(w, ec):
    h = w + ec
    return jnp.where(w > 0, jnp.sqrt(data.num_tokens / jnp.where(w > 0, h, 1.0)), 1.0)

  return jax.tree.map(scale, weights, expected)


@functools.partial(jax.jit, static_argnames=("trans_k", "emit_k", "max_iter", "memory_size"))
def _minimize(hmm0: H.HMM, data: Labelled, joint_weight: jax.Array, tol: jax.Array, *,
              trans_k: float, emit_k: float, max_iter: int, memory_size: int):
  logits0 = from_hmm(hmm0, prior_counts(data, trans_k, emit_k))
  scales = step_scales(hmm0, data, trans_k, emit_k)
  shifted = lambda u: jax.tree.map(lambda l0, s, x: l0 + s * x, logits0, scales, u)
  fun = lambda u: objective(shifted(u), data, joint_weight, trans_k, emit_k)
  # The gradient in u is the logits' times the scales: tol applies to the logits' own.
  grad_map = lambda g: jax.tree.map(jnp.divide, g, scales)
  u, info = minimize_lbfgs(fun, jax.tree.map(jnp.zeros_like, logits0), max_iter=max_iter,
                           tol=tol, memory_size=memory_size, grad_map=grad_map)
  return shifted(u), info


def fit(hmm0: H.HMM, data: Labelled, joint_weight: float, trans_k: float, emit_k: float, *,
        max_iter: int = 500, tol: float = 1e-6, memory_size: int = 10) -> tuple[H.HMM, dict]:
  """L-BFGS on `objective` from `hmm0` (e.g. the closed form, `hmm.fit_supervised` with the same
  trans_k and emit_k); `tol` bounds the gradient norm of the per-token objective.

  Returns the fitted HMM and minimize_lbfgs's info ({"num_iterations", "num_evaluations",
  "grad_norm", "loss"}: loss is the final objective, nats per token). `joint_weight` outside
  [0, 1] is a ValueError before anything compiles.
  """
  joint_weight = check_joint_weight(joint_weight)
  weights = prior_counts(data, trans_k, emit_k)
  logits, info = _minimize(hmm0, data, jnp.float32(joint_weight),
                           jnp.float32(tol), trans_k=float(trans_k), emit_k=float(emit_k),
                           max_iter=max_iter, memory_size=memory_size)
  return to_hmm(logits, weights, emit_k), info
