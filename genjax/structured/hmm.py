"""Hidden Markov models: forward-backward (scan and associative scan), Viterbi, sampling, EM.

An `HMM` holds log initial probabilities log_pi_K, log transitions log_A_KxK (row: from, column:
to) and an emission model from `hmm_emissions`. Sequences come right-padded in batches: x_BxT
(or x_BxTxD), mask_BxT (True on real tokens), and optionally states_BxT with -1 where a state is
unobserved: an observed state clamps the posterior to it (semi-supervised EM, constrained
decoding). Everything is batched with vmap over sequences and lax.scan over time; padded steps
leave the messages unchanged, so a length-0 sequence has log-likelihood 0.
"""

import functools
from collections.abc import Iterable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from genjax.structured.hmm_emissions import (  # noqa: F401 (re-exported)
    Categorical,
    DiagGaussian,
    FullGaussian,
    GaussianMixture,
)


@flax.struct.dataclass
class HMM:
  """log_pi_K, log_A_KxK and an emission model (any of `hmm_emissions`)."""

  log_pi_K: jax.Array
  log_A_KxK: jax.Array
  emission: object

  @property
  def num_states(self) -> int:
    return self.log_pi_K.shape[-1]

  @classmethod
  def random(cls, key: jax.Array, emission, concentration: float = 1.0) -> "HMM":
    """Initial and transition rows from a symmetric Dirichlet(concentration)."""
    k = emission_num_states(emission)
    k_pi, k_A = jax.random.split(key)
    alpha = jnp.full((k,), concentration)
    return cls(jnp.log(jax.random.dirichlet(k_pi, alpha)),
               jnp.log(jax.random.dirichlet(k_A, alpha, (k,))), emission)


def emission_num_states(emission) -> int:
  return jax.tree.leaves(emission)[0].shape[0]


# ---------------------------------------------------------------- log-emissions and clamping


def log_emissions(hmm: HMM, x: jax.Array) -> jax.Array:
  """log p(x_t | z_t = k) for observations of any leading shape: x_BxT[xD] -> [B, T, K]."""
  em = hmm.emission
  lead = x.shape[:x.ndim - em.event_ndim]
  flat = x.reshape(-1, *x.shape[len(lead):])
  return jax.vmap(em.log_prob)(flat).reshape(*lead, -1)


def clamp(log_B: jax.Array, states: jax.Array | None) -> jax.Array:
  """log_B_...xK with -inf where an observed state (states >= 0) is not k."""
  if states is None:
    return log_B
  k = jnp.arange(log_B.shape[-1])
  keep = (states[..., None] < 0) | (states[..., None] == k)
  return jnp.where(keep, log_B, -jnp.inf)


# ---------------------------------------------------------------- one sequence: scan


def _lse_matvec(a_K: jax.Array, log_A_KxK: jax.Array) -> jax.Array:
  """log sum_i exp(a_i + log A_ij) -> [K]."""
  return jax.nn.logsumexp(a_K[:, None] + log_A_KxK, axis=0)


def forward(log_pi_K: jax.Array, log_A_KxK: jax.Array, log_B_TxK: jax.Array,
            mask_T: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(log p(x), log_alpha_TxK) with alpha_t(k) = p(x_0..t, z_t = k); padded steps copy alpha."""
  log_B_TxK = jnp.where(mask_T[:, None], log_B_TxK, 0.0)
  a0 = log_pi_K + log_B_TxK[0]

  def step(a, inputs):
    lb, m = inputs
    a = jnp.where(m, _lse_matvec(a, log_A_KxK) + lb, a)
    return a, a

  a_last, rest = jax.lax.scan(step, a0, (log_B_TxK[1:], mask_T[1:]))
  return jax.nn.logsumexp(a_last), jnp.concatenate([a0[None], rest])


def backward(log_A_KxK: jax.Array, log_B_TxK: jax.Array, mask_T: jax.Array) -> jax.Array:
  """log_beta_TxK with beta_t(k) = p(x_t+1..end | z_t = k); 0 at the last and padded steps."""
  log_B_TxK = jnp.where(mask_T[:, None], log_B_TxK, 0.0)
  k = log_A_KxK.shape[0]

  def step(b, inputs):
    lb, m = inputs  # emission and mask of step t+1
    b = jnp.where(m, jax.nn.logsumexp(log_A_KxK + (lb + b)[None, :], axis=1), 0.0)
    return b, b

  _, rest = jax.lax.scan(step, jnp.zeros(k), (log_B_TxK[1:], mask_T[1:]), reverse=True)
  return jnp.concatenate([rest, jnp.zeros((1, k))])


# ---------------------------------------------------------------- one sequence: associative scan


def _lse_matmul(X: jax.Array, Y: jax.Array) -> jax.Array:
  """Log-semiring matrix product, batched on leading axes: log sum_j exp(X_ij + Y_jk)."""
  return jax.nn.logsumexp(X[..., :, :, None] + Y[..., None, :, :], axis=-2)


def _step_matrices(log_A_KxK: jax.Array, log_B_TxK: jax.Array, mask_T: jax.Array) -> jax.Array:
  """M_t = log A + log B_t (columns) for t >= 1; the log-identity at padded steps. [T-1, K, K]"""
  k = log_A_KxK.shape[0]
  log_I = jnp.where(jnp.eye(k, dtype=bool), 0.0, -jnp.inf)
  M = log_A_KxK[None] + log_B_TxK[1:, None, :]
  return jnp.where(mask_T[1:, None, None], M, log_I)


def forward_parallel(log_pi_K: jax.Array, log_A_KxK: jax.Array, log_B_TxK: jax.Array,
                     mask_T: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`forward` in O(log T) depth: prefix log-semiring products of the step matrices."""
  log_B_TxK = jnp.where(mask_T[:, None], log_B_TxK, 0.0)
  a0 = log_pi_K + log_B_TxK[0]
  P = jax.lax.associative_scan(_lse_matmul, _step_matrices(log_A_KxK, log_B_TxK, mask_T))
  rest = jax.nn.logsumexp(a0[None, :, None] + P, axis=1)
  alpha = jnp.concatenate([a0[None], rest])
  return jax.nn.logsumexp(alpha[-1]), alpha


def backward_parallel(log_A_KxK: jax.Array, log_B_TxK: jax.Array, mask_T: jax.Array) -> jax.Array:
  """`backward` in O(log T) depth: suffix log-semiring products of the step matrices."""
  log_B_TxK = jnp.where(mask_T[:, None], log_B_TxK, 0.0)
  # reverse=True combines (later, earlier); the product must keep time order.
  S = jax.lax.associative_scan(lambda later, earlier: _lse_matmul(earlier, later),
                               _step_matrices(log_A_KxK, log_B_TxK, mask_T), reverse=True)
  k = log_A_KxK.shape[0]
  return jnp.concatenate([jax.nn.logsumexp(S, axis=2), jnp.zeros((1, k))])


# ---------------------------------------------------------------- one sequence: posteriors


def _posteriors(log_pi_K, log_A_KxK, log_B_TxK, mask_T, parallel: bool):
  """(log p(x), gamma_TxK, xi_KxK): state marginals (0 at padding) and summed pair marginals."""
  fwd, bwd = (forward_parallel, backward_parallel) if parallel else (forward, backward)
  ll, alpha = fwd(log_pi_K, log_A_KxK, log_B_TxK, mask_T)
  beta = bwd(log_A_KxK, log_B_TxK, mask_T)
  # Normalised per step rather than by log p(x): float32 keeps them exact on long sequences.
  gamma = jnp.where(mask_T[:, None], jax.nn.softmax(alpha + beta, axis=-1), 0.0)
  lb = jnp.where(mask_T[:, None], log_B_TxK, 0.0)

  # Pair marginals summed over time inside a scan: O(K^2) memory, not O(T K^2).
  def add_pair(acc, inputs):
    a_prev, lb_t, b_t, m = inputs
    log_xi = a_prev[:, None] + log_A_KxK + (lb_t + b_t)[None, :]
    xi = jnp.exp(log_xi - jax.nn.logsumexp(log_xi))
    return acc + jnp.where(m, xi, 0.0), None

  xi, _ = jax.lax.scan(add_pair, jnp.zeros_like(log_A_KxK),
                       (alpha[:-1], lb[1:], beta[1:], mask_T[1:]))
  return ll, gamma, xi


def viterbi_one(log_pi_K: jax.Array, log_A_KxK: jax.Array, log_B_TxK: jax.Array,
                mask_T: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(z_T, log p(x, z)): the most probable state path (padding repeats the last state)."""
  log_B_TxK = jnp.where(mask_T[:, None], log_B_TxK, 0.0)
  k = log_A_KxK.shape[0]
  d0 = log_pi_K + log_B_TxK[0]

  def step(d, inputs):
    lb, m = inputs
    scores = d[:, None] + log_A_KxK
    best = jnp.argmax(scores, axis=0)
    d_new = jnp.max(scores, axis=0) + lb
    return jnp.where(m, d_new, d), jnp.where(m, best, jnp.arange(k))

  d_last, back = jax.lax.scan(step, d0, (log_B_TxK[1:], mask_T[1:]))
  z_last = jnp.argmax(d_last)

  def trace(z, ptr):
    return ptr[z], z

  z0, rest = jax.lax.scan(trace, z_last, back, reverse=True)
  return jnp.concatenate([z0[None], rest]), d_last[z_last]


# ---------------------------------------------------------------- batched API on an HMM


def _batch_inputs(hmm: HMM, x, mask, states, log_B):
  if log_B is None:
    log_B = log_emissions(hmm, x)
  if mask is None:
    mask = jnp.ones(log_B.shape[:-1], bool)
  return clamp(log_B, states), mask


@functools.partial(jax.jit, static_argnames="parallel")
def log_likelihood(hmm: HMM, x: jax.Array | None, mask: jax.Array | None = None,
                   states: jax.Array | None = None, log_B: jax.Array | None = None,
                   parallel: bool = False) -> jax.Array:
  """log p(x_b[, observed states_b]) per sequence: [B]. Give `log_B` [B, T, K] to skip x."""
  log_B, mask = _batch_inputs(hmm, x, mask, states, log_B)
  fwd = forward_parallel if parallel else forward
  return jax.vmap(lambda lb, m: fwd(hmm.log_pi_K, hmm.log_A_KxK, lb, m)[0])(log_B, mask)


@functools.partial(jax.jit, static_argnames="parallel")
def posterior_marginals(hmm: HMM, x: jax.Array | None, mask: jax.Array | None = None,
                        states: jax.Array | None = None, log_B: jax.Array | None = None,
                        parallel: bool = False) -> tuple[jax.Array, jax.Array]:
  """(log p(x) [B], gamma_BxTxK = p(z_t = k | x)), gamma 0 at padding."""
  log_B, mask = _batch_inputs(hmm, x, mask, states, log_B)
  post = jax.vmap(lambda lb, m: _posteriors(hmm.log_pi_K, hmm.log_A_KxK, lb, m, parallel)[:2])
  return post(log_B, mask)


@jax.jit
def viterbi(hmm: HMM, x: jax.Array | None, mask: jax.Array | None = None,
            states: jax.Array | None = None,
            log_B: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(z_BxT most probable paths, their log p(x, z) [B]); observed states are kept."""
  log_B, mask = _batch_inputs(hmm, x, mask, states, log_B)
  return jax.vmap(lambda lb, m: viterbi_one(hmm.log_pi_K, hmm.log_A_KxK, lb, m))(log_B, mask)


@functools.partial(jax.jit, static_argnames=("num", "length"))
def sample(key: jax.Array, hmm: HMM, num: int, length: int) -> tuple[jax.Array, jax.Array]:
  """(z_NxT, x_NxT[xD]): `num` independent sequences of `length` steps."""

  def one(key):
    k0, k_steps, k_x = jax.random.split(key, 3)
    z0 = jax.random.categorical(k0, hmm.log_pi_K)

    def step(z, k):
      z = jax.random.categorical(k, hmm.log_A_KxK[z])
      return z, z

    _, rest = jax.lax.scan(step, z0, jax.random.split(k_steps, length - 1))
    z = jnp.concatenate([z0[None], rest])
    x = jax.vmap(hmm.emission.sample)(jax.random.split(k_x, length), z)
    return z, x

  return jax.vmap(one)(jax.random.split(key, num))


# ---------------------------------------------------------------- learning


@flax.struct.dataclass
class Stats:
  """Expected sufficient statistics, additive over sequences."""

  init_K: jax.Array
  trans_KxK: jax.Array
  emission: object
  log_likelihood: jax.Array
  num_tokens: jax.Array


def _chunk_stats(hmm: HMM, x, mask, states, parallel: bool) -> Stats:
  log_B = clamp(log_emissions(hmm, x), states)
  ll, gamma, xi = jax.vmap(
      lambda lb, m: _posteriors(hmm.log_pi_K, hmm.log_A_KxK, lb, m, parallel))(log_B, mask)
  em = hmm.emission
  lead = mask.size
  x_flat = x.reshape(lead, *x.shape[mask.ndim:])
  return Stats(init_K=jnp.sum(gamma[:, 0], 0), trans_KxK=jnp.sum(xi, 0),
               emission=em.stats(x_flat, gamma.reshape(lead, -1)),
               log_likelihood=jnp.sum(ll), num_tokens=jnp.sum(mask))


def _chunked(a: jax.Array, chunk_size: int, fill) -> jax.Array:
  n = a.shape[0]
  pad = -n % chunk_size
  a = jnp.concatenate([a, jnp.full((pad, *a.shape[1:]), fill, a.dtype)])
  return a.reshape(-1, chunk_size, *a.shape[1:])


@functools.partial(jax.jit, static_argnames=("chunk_size", "parallel"))
def expected_stats(hmm: HMM, x: jax.Array, mask: jax.Array, states: jax.Array | None = None,
                   chunk_size: int = 256, parallel: bool = False) -> Stats:
  """E-step over padded sequences x_NxT[xD], mask_NxT: posterior-weighted sums.

  Sequences go through in chunks of `chunk_size` under lax.scan, so memory holds one chunk's
  posteriors (chunk_size x T x K) and one set of sums, however many sequences there are.
  """
  if states is None:
    states = jnp.full(mask.shape, -1, jnp.int32)
  xs = (_chunked(x, chunk_size, 0), _chunked(mask, chunk_size, False),
        _chunked(states, chunk_size, -1))
  zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(
      lambda: _chunk_stats(hmm, *(a[0] for a in xs), parallel)))

  def body(acc, chunk):
    return jax.tree.map(jnp.add, acc, _chunk_stats(hmm, *chunk, parallel)), None

  total, _ = jax.lax.scan(body, zero, xs)
  return total


def m_step(hmm: HMM, stats: Stats, pseudo_count: float = 0.0) -> HMM:
  """Maximum-likelihood parameters from (expected) counts, with add-k on pi and A."""

  def normalise(c):
    c = c + pseudo_count
    return jnp.log(c) - jnp.log(jnp.maximum(jnp.sum(c, -1, keepdims=True), 1e-30))

  return HMM(normalise(stats.init_K), normalise(stats.trans_KxK),
             hmm.emission.m_step(stats.emission))


def em_step(hmm: HMM, batches: Iterable[tuple], pseudo_count: float = 0.0,
            chunk_size: int = 256, parallel: bool = False) -> tuple[HMM, Stats]:
  """One Baum-Welch iteration over batches of (x, mask[, states]) (e.g. length buckets).

  Returns the new HMM and the statistics of the old one (whose log_likelihood is log p(data)
  under the old parameters, plus the log-probability of the clamped states).
  """
  total = None
  for batch in batches:
    s = expected_stats(hmm, *batch, chunk_size=chunk_size, parallel=parallel)
    total = s if total is None else jax.tree.map(jnp.add, total, s)
  return m_step(hmm, total, pseudo_count), total


def fit_em(hmm: HMM, batches: list[tuple], num_iters: int, pseudo_count: float = 0.0,
           chunk_size: int = 256, tol: float | None = None,
           callback=None) -> tuple[HMM, list[float]]:
  """Baum-Welch: up to `num_iters` EM iterations; stops when the per-token log-likelihood
  gains less than `tol`. Returns the fitted HMM and log p(data) before each M-step."""
  history = []
  for it in range(num_iters):
    hmm, stats = em_step(hmm, batches, pseudo_count, chunk_size)
    history.append(float(stats.log_likelihood))
    if callback is not None:
      callback(it, hmm, stats)
    if tol is not None and len(history) > 1:
      if (history[-1] - history[-2]) / float(stats.num_tokens) < tol:
        break
  return hmm, history


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def supervised_stats(emission, x: jax.Array, states: jax.Array, mask: jax.Array,
                     chunk_size: int = 1024) -> Stats:
  """Counts from fully labelled sequences: first states, state bigrams, emissions given states."""
  k = emission_num_states(emission)
  onehot = jax.nn.one_hot(states, k) * mask[..., None]
  trans = jnp.einsum("nti,ntj->ij", onehot[:, :-1], onehot[:, 1:])
  lead = mask.size
  em = emission.stats(x.reshape(lead, *x.shape[mask.ndim:]), onehot.reshape(lead, k))
  return Stats(init_K=jnp.sum(onehot[:, 0], 0), trans_KxK=trans, emission=em,
               log_likelihood=jnp.zeros(()), num_tokens=jnp.sum(mask))


def fit_supervised(emission, x: jax.Array, states: jax.Array, mask: jax.Array,
                   pseudo_count: float = 0.0) -> HMM:
  """Maximum likelihood from labelled sequences, add-`pseudo_count` smoothing on pi and A (the
  emission's own smoothing, e.g. `Categorical.pseudo_count`, applies to it)."""
  k = emission_num_states(emission)
  template = HMM(jnp.zeros(k), jnp.zeros((k, k)), emission)
  return m_step(template, supervised_stats(emission, x, states, mask), pseudo_count)


# ---------------------------------------------------------------- classifier


@flax.struct.dataclass
class HMMClassifier:
  """One HMM per class, stacked on a leading class axis, and log class priors log_prior_C."""

  hmms: HMM
  log_prior_C: jax.Array

  @classmethod
  def from_hmms(cls, hmms: list[HMM], class_counts=None) -> "HMMClassifier":
    counts = np.ones(len(hmms)) if class_counts is None else np.asarray(class_counts, float)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *hmms)
    return cls(stacked, jnp.log(jnp.asarray(counts / counts.sum(), jnp.float32)))


@jax.jit
def classifier_log_posterior(clf: HMMClassifier, x: jax.Array, mask: jax.Array) -> jax.Array:
  """log p(c | x) by Bayes' rule over the class HMMs' likelihoods: [B, C]."""
  ll_CxB = jax.vmap(lambda h: log_likelihood(h, x, mask))(clf.hmms)
  joint = ll_CxB.T + clf.log_prior_C
  return joint - jax.nn.logsumexp(joint, axis=1, keepdims=True)


def fit_classifier(hmms_init: list[HMM], batches_by_class: list[list[tuple]], num_iters: int,
                   pseudo_count: float = 0.0, chunk_size: int = 256) -> HMMClassifier:
  """EM-fit one HMM per class on its sequences; priors from the classes' sequence counts."""
  fitted = [fit_em(h, b, num_iters, pseudo_count, chunk_size)[0]
            for h, b in zip(hmms_init, batches_by_class, strict=True)]
  counts = [sum(int(np.asarray(bt[1]).shape[0]) for bt in b) for b in batches_by_class]
  return HMMClassifier.from_hmms(fitted, counts)
