"""Hidden Markov models: forward-backward (scaled, log-space scan, associative scan), Viterbi,
sampling, EM.

An `HMM` holds log initial probabilities log_pi_K, log transitions log_A_KxK (row: from, column:
to) and an emission model from `hmm_emissions`. Sequences come right-padded in batches: x_BxT
(or x_BxTxD), mask_BxT (True on real tokens), and optionally states_BxT with -1 where a state is
unobserved: an observed state clamps the posterior to it (semi-supervised EM, constrained
decoding). Padded steps leave the messages unchanged, so a length-0 sequence has log-likelihood 0.

Forward-backward has three formulations (`method`):
- "scaled" (the default): the probability-space recursion of Rabiner (1989),
  alpha_t = normalise((alpha_t-1 A) * b_t), b_t the emission probabilities divided by their
  largest, so each step is one [B, K] x [K, K] matrix product; log p(x) is the sum of the logs
  of the normalisers and of the divisors. The pair marginals summed over time are one
  [K, B T] x [B T, K] product. Batched over sequences, time being the scan axis.
- "log": a log-space scan (a K x K log-sum-exp per step), one sequence per vmap lane.
- "parallel": a log-space associative scan, O(log T) depth (O(T K^3) work: for accelerators).
Viterbi is max-product in log space.

For EM on many sequences, `pack` lays them end to end in rows of a fixed length (a row holds
several sequences; `start` marks where each begins, and the recursion restarts there) and groups
the rows in chunks of one shape: `packed_em_step` is then one compiled program for the whole
corpus, its memory bounded by one chunk's posteriors.
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
  if hasattr(em, "log_prob_batch"):
    return em.log_prob_batch(x)
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


# ---------------------------------------------------------------- scaled probability space, batched


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
  # Full float32 products: an accelerator's default (TF32, bfloat16 passes) is too coarse here.
  return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _nonzero(c: jax.Array) -> jax.Array:
  return jnp.where(c > 0, c, 1.0)


def scaled_emissions(log_B: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(b, shift): b = exp(log_B - shift) with shift = max_k log_B, so that b's largest is 1
  (densities of any scale stay in float32 range); b = 1, shift = 0 at padding."""
  log_B = jnp.where(mask[..., None], log_B, 0.0)
  shift = jnp.max(log_B, axis=-1)
  shift = jnp.where(jnp.isfinite(shift), shift, 0.0)  # an impossible token: b = 0
  return jnp.exp(log_B - shift[..., None]), shift


def scaled_forward(pi_K: jax.Array, A_KxK: jax.Array, b_TxBxK: jax.Array,
                   reset_TxB: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(alpha_TxBxK, c_TxB), time-major: alpha_t = normalise(where(reset_t, pi, alpha_t-1 A) * b_t)
  and c_t its normaliser, so that sum_t log c_t = log p(x) - sum_t shift_t. Lane b restarts at
  every reset (a sequence's first token; padding, whose b = 1, gives c = 1). A zero c (an
  impossible token) gives log p(x) = -inf and zero messages, not NaN."""

  def step(alpha, inputs):
    b, reset = inputs
    a = jnp.where(reset[:, None], pi_K, _matmul(alpha, A_KxK)) * b
    c = jnp.sum(a, axis=-1)
    a = a * (1.0 / _nonzero(c))[:, None]
    return a, (a, c)

  reset_TxB = reset_TxB.at[0].set(True)
  _, (alpha, c) = jax.lax.scan(step, jnp.zeros_like(b_TxBxK[0]), (b_TxBxK, reset_TxB))
  return alpha, c


def scaled_backward(A_KxK: jax.Array, b_TxBxK: jax.Array, c_TxB: jax.Array,
                    reset_TxB: jax.Array) -> jax.Array:
  """beta_TxBxK scaled by the forward normalisers: beta_t = A (b_t+1 * beta_t+1) / c_t+1, and 1
  at the last step of each sequence (before a reset), so that alpha_t * beta_t = p(z_t | x)."""

  def step(beta, inputs):
    b, c, reset = inputs  # of step t+1
    w = b * beta * (1.0 / _nonzero(c))[:, None]
    beta = jnp.where(reset[:, None], 1.0, _matmul(w, A_KxK.T))
    return beta, beta

  ones = jnp.ones_like(b_TxBxK[0])
  _, rest = jax.lax.scan(step, ones, (b_TxBxK[1:], c_TxB[1:], reset_TxB[1:]), reverse=True)
  return jnp.concatenate([rest, ones[None]])


def _scaled_log_likelihood(c_TxB, shift_TxB, mask_TxB):
  return jnp.sum(jnp.where(mask_TxB, jnp.log(c_TxB) + shift_TxB, 0.0), axis=0)


def _scaled_posteriors(log_pi_K, log_A_KxK, log_B_TxBxK, mask_TxB, reset_TxB):
  """(log p(x) per lane [B], gamma_TxBxK, xi_KxK), time-major; every lane may hold several
  sequences (reset at each one's first token), and log p(x) is the sum over a lane's."""
  A = jnp.exp(log_A_KxK)
  reset_TxB = reset_TxB | ~mask_TxB
  b, shift = scaled_emissions(log_B_TxBxK, mask_TxB)
  alpha, c = scaled_forward(jnp.exp(log_pi_K), A, b, reset_TxB)
  beta = scaled_backward(A, b, c, reset_TxB)
  gamma = alpha * beta  # sums to 1 up to rounding: renormalised
  gamma = gamma / _nonzero(jnp.sum(gamma, -1, keepdims=True))
  gamma = jnp.where(mask_TxB[..., None], gamma, 0.0)
  # xi_t(i, j) = alpha_t(i) A_ij w_t+1(j), w = b beta / c: summed over pairs within a sequence.
  w = b[1:] * beta[1:] / _nonzero(c[1:])[..., None]
  w = jnp.where(reset_TxB[1:, :, None], 0.0, w)
  k = A.shape[0]
  xi = A * _matmul(alpha[:-1].reshape(-1, k).T, w.reshape(-1, k))
  return _scaled_log_likelihood(c, shift, mask_TxB), gamma, xi


# ---------------------------------------------------------------- log space, one sequence


def _log_posteriors(log_pi_K, log_A_KxK, log_B_TxK, mask_T, parallel: bool):
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

METHODS = ("scaled", "log", "parallel")


def _check_method(method: str) -> str:
  if method not in METHODS:
    raise ValueError(f"unknown forward-backward method {method!r}; expected one of {METHODS}")
  return method


def _batch_inputs(hmm: HMM, x, mask, states, log_B):
  if log_B is None:
    log_B = log_emissions(hmm, x)
  if mask is None:
    mask = jnp.ones(log_B.shape[:-1], bool)
  return clamp(log_B, states), mask


def _first_steps(mask_BxT: jax.Array) -> jax.Array:
  """reset_TxB of right-padded sequences, one per lane: each starts at step 0."""
  return jnp.broadcast_to((jnp.arange(mask_BxT.shape[1]) == 0)[:, None], mask_BxT.T.shape)


@functools.partial(jax.jit, static_argnames="method")
def log_likelihood(hmm: HMM, x: jax.Array | None, mask: jax.Array | None = None,
                   states: jax.Array | None = None, log_B: jax.Array | None = None,
                   method: str = "scaled") -> jax.Array:
  """log p(x_b[, observed states_b]) per sequence: [B]. Give `log_B` [B, T, K] to skip x.
  `method`: "scaled", "log" or "parallel" (the module's docstring)."""
  log_B, mask = _batch_inputs(hmm, x, mask, states, log_B)
  if _check_method(method) == "scaled":
    mask_T = mask.T
    b, shift = scaled_emissions(jnp.swapaxes(log_B, 0, 1), mask_T)
    _, c = scaled_forward(jnp.exp(hmm.log_pi_K), jnp.exp(hmm.log_A_KxK), b,
                          _first_steps(mask) | ~mask_T)
    return _scaled_log_likelihood(c, shift, mask_T)
  fwd = forward_parallel if method == "parallel" else forward
  return jax.vmap(lambda lb, m: fwd(hmm.log_pi_K, hmm.log_A_KxK, lb, m)[0])(log_B, mask)


@functools.partial(jax.jit, static_argnames="method")
def posterior_marginals(hmm: HMM, x: jax.Array | None, mask: jax.Array | None = None,
                        states: jax.Array | None = None, log_B: jax.Array | None = None,
                        method: str = "scaled") -> tuple[jax.Array, jax.Array]:
  """(log p(x) [B], gamma_BxTxK = p(z_t = k | x)), gamma 0 at padding; `method` as in
  `log_likelihood`."""
  log_B, mask = _batch_inputs(hmm, x, mask, states, log_B)
  if _check_method(method) == "scaled":
    ll, gamma, _ = _scaled_posteriors(hmm.log_pi_K, hmm.log_A_KxK, jnp.swapaxes(log_B, 0, 1),
                                      mask.T, _first_steps(mask))
    return ll, jnp.swapaxes(gamma, 0, 1)
  post = jax.vmap(lambda lb, m: _log_posteriors(hmm.log_pi_K, hmm.log_A_KxK, lb, m,
                                                method == "parallel")[:2])
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


# ---------------------------------------------------------------- packing sequences into chunks


@flax.struct.dataclass
class Packed:
  """Sequences laid end to end in rows of T steps, the rows grouped in C chunks of R rows:
  x_CxRxT[xD], mask_CxRxT (True on tokens), start_CxRxT (True at each sequence's first token)
  and states_CxRxT (-1 where unobserved) or None. Built by `pack` / `pack_batches`."""

  x: jax.Array
  mask: jax.Array
  start: jax.Array
  states: jax.Array | None = None

  @property
  def num_sequences(self) -> int:
    return int(np.sum(np.asarray(self.start)))

  @property
  def num_tokens(self) -> int:
    return int(np.sum(np.asarray(self.mask)))


def _best_fit_rows(lengths: np.ndarray, row_length: int) -> tuple[np.ndarray, np.ndarray, int]:
  """Best-fit decreasing bin packing: (row, offset) of each sequence and the number of rows.
  Longest first, each into the fullest row it fits in; a row of sentence-length sequences is
  left a few percent empty at most."""
  row_of = np.full(len(lengths), -1, np.int64)
  offset_of = np.zeros(len(lengths), np.int64)
  by_space = [[] for _ in range(row_length + 1)]  # rows by their free steps
  used = []
  for i in np.argsort(-lengths, kind="stable"):
    n = int(lengths[i])
    if n == 0:
      continue
    row = next((by_space[s].pop() for s in range(n, row_length + 1) if by_space[s]), None)
    if row is None:
      row = len(used)
      used.append(0)
    row_of[i], offset_of[i] = row, used[row]
    used[row] += n
    if used[row] < row_length:
      by_space[row_length - used[row]].append(row)
  return row_of, offset_of, len(used)


def pack(sequences, states=None, row_length: int | None = None,
         chunk_tokens: int = 1 << 15) -> Packed:
  """Packs sequences (arrays of [n] symbol ids or [n, D] vectors; `states`: their observed
  states, -1 where unobserved) into rows of `row_length` steps (default: the longest sequence,
  at least 64, rounded up to 8), in as few chunks of at most about `chunk_tokens` steps as hold
  them, every chunk of one shape. Host-side (numpy); runs once per data set."""
  seqs = [np.asarray(s) for s in sequences]
  lengths = np.array([len(s) for s in seqs], np.int64)
  longest = int(lengths.max(initial=1))
  if row_length is None:
    row_length = -(-max(longest, 64) // 8) * 8
  if longest > row_length:
    raise ValueError(f"a sequence of {longest} steps does not fit rows of {row_length}")
  row_of, offset_of, num_rows = _best_fit_rows(lengths, row_length)
  num_rows = max(num_rows, 1)
  num_chunks = max(1, -(-num_rows * row_length // chunk_tokens))
  rows = -(-num_rows // num_chunks)
  rows = -(-rows // 8) * 8 if rows > 8 else rows
  num_chunks = -(-num_rows // rows)
  size = num_chunks * rows * row_length

  kept = lengths > 0
  first = row_of[kept] * row_length + offset_of[kept]  # flat index of each sequence's start
  step_in_seq = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
  where = np.repeat(row_of * row_length + offset_of, lengths) + step_in_seq
  tokens = [s for s in seqs if len(s)]
  trailing = tokens[0].shape[1:] if tokens else ()
  dtype = tokens[0].dtype if tokens else np.int32
  x = np.zeros((size, *trailing), dtype)
  mask = np.zeros(size, bool)
  start = np.zeros(size, bool)
  if tokens:
    x[where] = np.concatenate(tokens)
  mask[where] = True
  start[first] = True
  shape = (num_chunks, rows, row_length)
  out_states = None
  if states is not None:
    out_states = np.full(size, -1, np.int32)
    st = [np.asarray(z, np.int32) for z, n in zip(states, lengths, strict=True) if n]
    if st:
      out_states[where] = np.concatenate(st)
    out_states = jnp.asarray(out_states.reshape(shape))
  return Packed(jnp.asarray(x.reshape(*shape, *trailing)), jnp.asarray(mask.reshape(shape)),
                jnp.asarray(start.reshape(shape)), out_states)


def pack_batches(batches: Iterable[tuple], row_length: int | None = None,
                 chunk_tokens: int = 1 << 15) -> Packed:
  """`pack` of right-padded batches (x, mask[, states]) (e.g. `tagger.bucketed`'s)."""
  seqs, states, any_states = [], [], False
  for batch in batches:
    x, mask = np.asarray(batch[0]), np.asarray(batch[1])
    z = np.asarray(batch[2]) if len(batch) > 2 and batch[2] is not None else None
    any_states |= z is not None
    for i, n in enumerate(mask.sum(1)):
      seqs.append(x[i, :n])
      states.append(z[i, :n] if z is not None else np.full(n, -1, np.int32))
  return pack(seqs, states if any_states else None, row_length, chunk_tokens)


def packed_log_likelihood(hmm: HMM, data: Packed) -> jax.Array:
  """log p(x) summed over `pack`ed sequences (and their observed states, where `data.states`
  has them): the scaled forward recursion, one chunk at a time under lax.scan. Not jitted, so
  that it can sit inside a caller's objective; jax.grad differentiates through the recursion."""
  pi_K, A_KxK = jnp.exp(hmm.log_pi_K), jnp.exp(hmm.log_A_KxK)

  def chunk_ll(total, chunk):
    x, mask, start, states = chunk
    # Time-major, as in _chunk_stats: the scan runs over the rows' steps.
    x, mask, start = jnp.swapaxes(x, 0, 1), mask.T, start.T
    log_B = clamp(log_emissions(hmm, x), None if states is None else states.T)
    b, shift = scaled_emissions(log_B, mask)
    _, c = scaled_forward(pi_K, A_KxK, b, start | ~mask)
    return total + jnp.sum(_scaled_log_likelihood(c, shift, mask)), None

  total, _ = jax.lax.scan(chunk_ll, jnp.zeros((), pi_K.dtype),
                          (data.x, data.mask, data.start, data.states))
  return total


# ---------------------------------------------------------------- learning


@flax.struct.dataclass
class Stats:
  """Expected sufficient statistics, additive over sequences."""

  init_K: jax.Array
  trans_KxK: jax.Array
  emission: object
  log_likelihood: jax.Array
  num_tokens: jax.Array


def _chunk_stats(hmm: HMM, x, mask, start, states, method: str) -> Stats:
  """Stats of rows x_RxT[xD] (mask_RxT, start_RxT, states_RxT or None). Several sequences per
  row need the scaled method; the log-space ones take one per row (start at step 0 only)."""
  if method == "scaled":
    # Time-major throughout: the scan's axis leads, and nothing of [T, R, K] is transposed.
    x, mask, start = jnp.swapaxes(x, 0, 1), mask.T, start.T
    states = None if states is None else states.T
    log_B = clamp(log_emissions(hmm, x), states)
    ll, gamma, xi = _scaled_posteriors(hmm.log_pi_K, hmm.log_A_KxK, log_B, mask, start)
  else:
    log_B = clamp(log_emissions(hmm, x), states)
    ll, gamma, xi = jax.vmap(lambda lb, m: _log_posteriors(
        hmm.log_pi_K, hmm.log_A_KxK, lb, m, method == "parallel"))(log_B, mask)
    xi = jnp.sum(xi, axis=0)
  first = (start & mask)[..., None]
  k = gamma.shape[-1]
  init = jnp.sum(jnp.where(first, gamma, 0.0).reshape(-1, k), axis=0)
  x_flat = x.reshape(mask.size, *x.shape[mask.ndim:])
  return Stats(init_K=init, trans_KxK=xi,
               emission=hmm.emission.stats(x_flat, gamma.reshape(mask.size, k)),
               log_likelihood=jnp.sum(ll), num_tokens=jnp.sum(mask))


def _sum_stats(hmm: HMM, chunks: tuple, method: str) -> Stats:
  """Stats summed over the leading (chunk) axis of `chunks`, one chunk at a time (lax.scan)."""
  zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(
      lambda: _chunk_stats(hmm, *jax.tree.map(lambda a: a[0], chunks), method)))

  def body(acc, chunk):
    return jax.tree.map(jnp.add, acc, _chunk_stats(hmm, *chunk, method)), None

  total, _ = jax.lax.scan(body, zero, chunks)
  return total


def _chunked(a: jax.Array, chunk_size: int, fill) -> jax.Array:
  n = a.shape[0]
  pad = -n % chunk_size
  a = jnp.concatenate([a, jnp.full((pad, *a.shape[1:]), fill, a.dtype)])
  return a.reshape(-1, chunk_size, *a.shape[1:])


@functools.partial(jax.jit, static_argnames=("chunk_size", "method"))
def expected_stats(hmm: HMM, x: jax.Array, mask: jax.Array, states: jax.Array | None = None,
                   chunk_size: int = 256, method: str = "scaled") -> Stats:
  """E-step over padded sequences x_NxT[xD], mask_NxT: posterior-weighted sums.

  Sequences go through in chunks of `chunk_size` under lax.scan, so memory holds one chunk's
  posteriors (chunk_size x T x K) and one set of sums, however many sequences there are; one
  program per shape of x (per length bucket): `pack` and `packed_stats` make it one in all.
  """
  _check_method(method)
  start = jnp.broadcast_to(jnp.arange(mask.shape[1]) == 0, mask.shape)
  chunks = (_chunked(x, chunk_size, 0), _chunked(mask, chunk_size, False),
            _chunked(start, chunk_size, False),
            None if states is None else _chunked(states, chunk_size, -1))
  return _sum_stats(hmm, chunks, method)


@jax.jit
def packed_stats(hmm: HMM, data: Packed) -> Stats:
  """E-step over `pack`ed sequences (scaled forward-backward), one chunk at a time."""
  return _sum_stats(hmm, (data.x, data.mask, data.start, data.states), "scaled")


def m_step(hmm: HMM, stats: Stats, pseudo_count: float = 0.0) -> HMM:
  """Maximum-likelihood parameters from (expected) counts, with add-k on pi and A."""

  def normalise(c):
    c = c + pseudo_count
    return jnp.log(c) - jnp.log(jnp.maximum(jnp.sum(c, -1, keepdims=True), 1e-30))

  return HMM(normalise(stats.init_K), normalise(stats.trans_KxK),
             hmm.emission.m_step(stats.emission))


@jax.jit
def packed_em_step(hmm: HMM, data: Packed, pseudo_count: float = 0.0) -> tuple[HMM, Stats]:
  """One Baum-Welch iteration on `pack`ed sequences: E-step and M-step in one program."""
  stats = packed_stats(hmm, data)
  return m_step(hmm, stats, pseudo_count), stats


def em_step(hmm: HMM, batches: Iterable[tuple] | Packed, pseudo_count: float = 0.0,
            chunk_size: int = 256, method: str = "scaled") -> tuple[HMM, Stats]:
  """One Baum-Welch iteration over batches of (x, mask[, states]) (e.g. length buckets, one
  program each) or over `pack`ed sequences (one program; the scaled method).

  Returns the new HMM and the statistics of the old one (whose log_likelihood is log p(data)
  under the old parameters, plus the log-probability of the clamped states).
  """
  if isinstance(batches, Packed):
    if method != "scaled":
      raise ValueError("packed sequences (several per row) need method='scaled'")
    return packed_em_step(hmm, batches, pseudo_count)
  total = None
  for batch in batches:
    s = expected_stats(hmm, *batch, chunk_size=chunk_size, method=method)
    total = s if total is None else jax.tree.map(jnp.add, total, s)
  return m_step(hmm, total, pseudo_count), total


def fit_em(hmm: HMM, batches: list[tuple] | Packed, num_iters: int, pseudo_count: float = 0.0,
           chunk_size: int = 256, tol: float | None = None, callback=None,
           method: str = "scaled") -> tuple[HMM, list[float]]:
  """Baum-Welch: up to `num_iters` EM iterations; stops when the per-token log-likelihood
  gains less than `tol`. Returns the fitted HMM and log p(data) before each M-step."""
  history = []
  for it in range(num_iters):
    hmm, stats = em_step(hmm, batches, pseudo_count, chunk_size, method)
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


def _num_sequences(batches: list[tuple] | Packed) -> int:
  if isinstance(batches, Packed):
    return batches.num_sequences
  return sum(int(np.asarray(bt[1]).shape[0]) for bt in batches)


def fit_classifier(hmms_init: list[HMM], batches_by_class: list[list[tuple] | Packed],
                   num_iters: int, pseudo_count: float = 0.0,
                   chunk_size: int = 256) -> HMMClassifier:
  """EM-fit one HMM per class on its sequences (padded batches or `pack`ed); priors from the
  classes' sequence counts."""
  fitted = [fit_em(h, b, num_iters, pseudo_count, chunk_size)[0]
            for h, b in zip(hmms_init, batches_by_class, strict=True)]
  counts = [_num_sequences(b) for b in batches_by_class]
  return HMMClassifier.from_hmms(fitted, counts)
