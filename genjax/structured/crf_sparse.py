"""Linear-chain CRF with CRFsuite's sparse state features: one weight per (attribute, label) pair
seen in the training data, sentences packed end to end into rows, an explicit forward-backward
gradient.

The model and objective are genjax.structured.crf's (emission, transition, start and end
scores; sum NLL + l2 ||theta||^2), except that the emission weight of an (attribute, label) pair
that never occurs in the training labels is fixed at zero instead of being a free parameter
(CRFsuite's default, `feature.possible_states=0`): J weights (456,345 on CoNLL-2000) instead of
F x L (7.45M). The computation is laid out for a CPU:

* Packing: sentences are sorted by length and packed end to end into B rows of R = (longest
  sentence) positions (`pack`), time-major: position p = r * B + b. A forward/backward step
  restarts at each sentence's first (last) token, so one scan of R steps covers every sentence
  with little padding, no length buckets and no rematerialisation (the R x B x L tables of the
  whole training set are a few tens of MB).
* Emissions: the J weights go to a dense F x L table (zeros elsewhere) by one scatter, and each
  token's scores are one-dimensional row gathers, one per template slot. Slots whose joint
  values repeat across tokens are factored out (`context_slots`; on CoNLL the bias and the 9
  POS n-grams inside the window p[-1..2], 10 of 20 slots, with 38k distinct values for 212k
  tokens): their rows are summed once per distinct context, and each token adds its context's
  sum.
* Forward-backward in scaled probabilities (as CRFsuite): no log inside the scans, whose only
  R x B x L temporaries are the scores, the forward vectors and the marginals.
* Gradient: expected minus empirical counts, d/d theta_j = sum over tokens where attribute a_j
  fires of p(y_t = l_j) - count_j, a scatter-add of the marginals per template slot (of the
  contexts' summed marginals for the factored slots); the empirical counts and the gold
  sequences' scores are constants (the gold score is linear in the weights: counts . theta).
  `total_nll` is a `jax.custom_vjp` so that optax's line search can differentiate it.
"""

import dataclasses
import heapq
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from genjax.structured import crf
from genjax.structured.crf_features import NULL_FEATURE


@struct.dataclass
class SparseParams:
  """theta_J: the weights of the kept (attribute, label) pairs; transition_LxL [previous, next],
  start_L, end_L as in crf.CRFParams."""

  theta: jax.Array
  transition: jax.Array
  start: jax.Array
  end: jax.Array


@struct.dataclass
class PackedData:
  """The training set, packed (see the module docstring); every array lives on the device.

  ids_SxP: the attribute id of each template slot s outside `context_slots` at each packed
  position p = r * B + b (NULL_FEATURE at padding); context_ids_GxU: the attribute ids of the
  context slots of each distinct context u (the last, U - 1, all null: padding's);
  context_P: each position's context; first_RxB / last_RxB: a sentence's first / last token;
  mask_RxB: real tokens (the scans run through padding, whose values are finite and masked
  out); cell_of_pair_J: the cell attribute * L + label of each pair j in the dense F x L
  emission table (sorted); counts_J, transition_counts_LxL, start_counts_L, end_counts_L: the
  empirical counts of the gold label sequences; num_features: F (static).
  """

  ids: jax.Array
  context_ids: jax.Array
  context: jax.Array
  first: jax.Array
  last: jax.Array
  mask: jax.Array
  cell_of_pair: jax.Array
  counts: jax.Array
  transition_counts: jax.Array
  start_counts: jax.Array
  end_counts: jax.Array
  num_features: int = struct.field(pytree_node=False)


@dataclasses.dataclass(frozen=True)
class Packing:
  """Where each sentence went: row_N, offset_N (its first position in the row), rows B, length R."""

  row: np.ndarray
  offset: np.ndarray
  rows: int
  length: int


def pack(lengths: Sequence[int], length: int | None = None) -> Packing:
  """Sentences packed end to end into rows of `length` positions (default: the longest
  sentence), longest first, each into the row with the most room left (a new row when none has
  room): with about ceil(total / length) rows the padding is a few percent."""
  lengths = np.asarray(lengths, np.int64)
  length = max(int(lengths.max(initial=1)), 1) if length is None else length
  if lengths.max(initial=0) > length:
    raise ValueError(f"a sentence of {lengths.max()} tokens does not fit rows of {length}")
  rows = max(1, -(-int(lengths.sum()) // length))
  heap = [(-length, r) for r in range(rows)]  # (minus the room left, row)
  row, offset = np.zeros(len(lengths), np.int64), np.zeros(len(lengths), np.int64)
  for i in np.argsort(-lengths, kind="stable"):
    room, r = heap[0]
    if -room < lengths[i]:
      r, room = rows, -length
      rows += 1
      heapq.heappush(heap, (room, r))
    row[i], offset[i] = r, length + room
    heapq.heapreplace(heap, (room + lengths[i], r))
  return Packing(row, offset, rows, length)


def pairs(ids: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_labels: int) -> np.ndarray:
  """The sorted cells attribute * L + label of the (attribute, label) pairs seen in training
  (the null attribute excluded): CRFsuite's state features."""
  ids_NxF, labels_N = np.concatenate(ids), np.concatenate(labels)
  cells = ids_NxF.astype(np.int64) * num_labels + labels_N[:, None]
  return np.unique(cells[ids_NxF != NULL_FEATURE])


def context_slots(ids_NxS: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
  """The slots to factor out of the per-token gathers: (slots G, context_N: each token's
  context, values_UxG: each context's attribute ids).

  Slots join in order of increasing vocabulary while they pay: with U distinct contexts over G
  slots, an evaluation gathers (and scatters) U * G + N * (S - G + 1) rows; a slot joins when
  that count decreases. No slot is factored when the contexts would not save rows at all.
  """
  N, S = ids_NxS.shape
  vocab = [len(np.unique(ids_NxS[:, s])) for s in range(S)]
  chosen, context_N, count = [], np.zeros(N, np.int64), 1
  for s in sorted(range(S), key=lambda s: vocab[s]):
    keys = context_N * (int(ids_NxS[:, s].max(initial=0)) + 1) + ids_NxS[:, s]
    values, inverse = np.unique(keys, return_inverse=True)
    if len(values) * (len(chosen) + 1) - count * len(chosen) < N:
      chosen, context_N, count = chosen + [s], inverse.reshape(-1), len(values)
  if count * len(chosen) + N >= N * len(chosen):
    return [], np.zeros(N, np.int64), np.zeros((1, 0), np.int32)
  chosen = sorted(chosen)
  _, first = np.unique(context_N, return_index=True)
  return chosen, context_N, ids_NxS[first][:, chosen]


def packed_data(ids: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_features: int,
                num_labels: int, cells_J: np.ndarray | None = None,
                length: int | None = None, factor_contexts: bool = True) -> PackedData:
  """The packed training set of per-sentence ids_TxF and labels_T (crf_features.encode), with
  weights for `cells_J` (default: the pairs seen in these sentences, `pairs`); the slots of
  `context_slots` factored out unless `factor_contexts` is false."""
  L = num_labels
  cells_J = pairs(ids, labels, L) if cells_J is None else np.asarray(cells_J, np.int64)
  if np.any(np.diff(cells_J) <= 0):
    raise ValueError("cells_J must be strictly increasing (as `pairs` gives them)")
  packing = pack([len(x) for x in ids], length)
  R, B = packing.length, packing.rows
  slots = ids[0].shape[1] if len(ids) else 1
  ids_PxS = np.zeros((R * B, slots), np.int32)
  labels_P = np.zeros(R * B, np.int64)
  first, last, mask = (np.zeros(R * B, bool) for _ in range(3))
  for i, (x, y) in enumerate(zip(ids, labels, strict=True)):
    n = len(x)
    if not n:
      continue
    p = (packing.offset[i] + np.arange(n)) * B + packing.row[i]
    ids_PxS[p], labels_P[p], mask[p] = x, y, True
    first[p], last[p] = False, False
    first[p[0]], last[p[-1]] = True, True
  real = np.nonzero(mask)[0]
  shared, context_N, values_UxG = (context_slots(ids_PxS[real]) if factor_contexts else
                                   ([], np.zeros(len(real), np.int64), np.zeros((1, 0), np.int32)))
  context_P = np.full(R * B, len(values_UxG), np.int32)  # padding: the null context
  context_P[real] = context_N
  context_ids_GxU = np.concatenate(
      [values_UxG, np.full((1, len(shared)), NULL_FEATURE, np.int32)]).T.astype(np.int32)
  rest = [s for s in range(slots) if s not in shared]
  slot_of_cell = np.full(num_features * L, len(cells_J), np.int32)
  slot_of_cell[cells_J] = np.arange(len(cells_J))
  # Empirical counts: every (attribute, gold label) occurrence is a kept pair when cells_J are
  # this data's pairs; with other cells, occurrences of pairs without a weight are dropped.
  occurrences = (ids_PxS.astype(np.int64) * L + labels_P[:, None])[mask]
  occurrences = slot_of_cell[occurrences[ids_PxS[mask] != NULL_FEATURE]]
  counts = np.bincount(occurrences, minlength=len(cells_J) + 1)[:-1]
  y_RxB, m_RxB = labels_P.reshape(R, B), mask.reshape(R, B)
  f_RxB, l_RxB = first.reshape(R, B), last.reshape(R, B)
  inner = m_RxB[1:] & ~f_RxB[1:]
  transition_counts = np.zeros((L, L), np.int64)
  np.add.at(transition_counts, (y_RxB[:-1][inner], y_RxB[1:][inner]), 1)
  return PackedData(
      ids=jnp.asarray(ids_PxS[:, rest].T.copy()), context_ids=jnp.asarray(context_ids_GxU.copy()),
      context=jnp.asarray(context_P), first=jnp.asarray(f_RxB), last=jnp.asarray(l_RxB),
      mask=jnp.asarray(m_RxB),
      cell_of_pair=jnp.asarray(cells_J.astype(np.int32)),
      counts=jnp.asarray(counts, jnp.float32),
      transition_counts=jnp.asarray(transition_counts, jnp.float32),
      start_counts=jnp.asarray(np.bincount(y_RxB[f_RxB], minlength=L), jnp.float32),
      end_counts=jnp.asarray(np.bincount(y_RxB[l_RxB], minlength=L), jnp.float32),
      num_features=num_features)


def init_params(data: PackedData) -> SparseParams:
  """All-zero weights of the data's pairs."""
  L = data.start_counts.shape[0]
  zeros = jnp.zeros((L, L), jnp.float32)
  return SparseParams(jnp.zeros(data.counts.shape, jnp.float32), zeros, zeros[0], zeros[0])


def to_dense(params: SparseParams, data: PackedData) -> crf.CRFParams:
  """The same model as crf.CRFParams: theta in its cells of the F x L emission table, zeros
  elsewhere (crf.predict / crf.decode decode with it)."""
  L = params.transition.shape[0]
  return crf.CRFParams(dense_emission(params.theta, data).reshape(-1, L),
                       params.transition, params.start, params.end)


def from_dense(params: crf.CRFParams, data: PackedData) -> SparseParams:
  """The dense model's weights on the data's pairs (the others are dropped)."""
  return SparseParams(params.emission.reshape(-1)[data.cell_of_pair], params.transition,
                      params.start, params.end)


def dense_emission(theta_J: jax.Array, data: PackedData) -> jax.Array:
  """The flat F * L emission table: theta at the kept cells, zero elsewhere (a scatter of the J
  weights: 2-5x faster than a gather of the F * L cells)."""
  num_cells = data.num_features * data.start_counts.shape[0]
  return jnp.zeros(num_cells, theta_J.dtype).at[data.cell_of_pair].set(
      theta_J, indices_are_sorted=True, unique_indices=True)


def _gather_rows(table_FxL: jax.Array, ids_SxN: jax.Array,
                 init_NxL: jax.Array | None = None) -> jax.Array:
  """init + sum_s table[ids[s]]: one-dimensional row gathers (much faster on a CPU than one 2-D
  gather) in a loop over the slots, accumulated in place (unrolled, XLA materialises each slot's
  gathered rows and adds them again for every consumer: 3x slower)."""
  N, L = ids_SxN.shape[1], table_FxL.shape[1]
  init_NxL = jnp.zeros((N, L), table_FxL.dtype) if init_NxL is None else init_NxL
  if not ids_SxN.shape[0]:
    return init_NxL
  return jax.lax.fori_loop(0, ids_SxN.shape[0], lambda s, e: e + table_FxL[ids_SxN[s]],
                           init_NxL)


def _scatter_rows(grad_FxL: jax.Array, ids_SxN: jax.Array, rows_NxL: jax.Array) -> jax.Array:
  """grad with rows[n] added at row ids[s, n] for every slot s, in place."""
  if not ids_SxN.shape[0]:
    return grad_FxL
  return jax.lax.fori_loop(0, ids_SxN.shape[0], lambda s, g: g.at[ids_SxN[s]].add(rows_NxL),
                           grad_FxL)


def _forward_backward(params: SparseParams, data: PackedData):
  """(sum of log Z, emission gradient over the F x L cells, pairwise marginal sums LxL,
  first-token and last-token marginal sums L) of the packed sentences."""
  L = params.transition.shape[0]
  R, B = data.mask.shape
  # The barrier materialises the table: fused into the row gathers, its own gather would be
  # recomputed for every element they read (4x slower).
  table_FxL = jax.lax.optimization_barrier(
      dense_emission(params.theta, data).reshape(-1, L))
  context_UxL = _gather_rows(table_FxL, data.context_ids)
  emit_PxL = _gather_rows(table_FxL, data.ids, context_UxL[data.context])
  emit_RxBxL = emit_PxL.reshape(R, B, L)
  t_max, s_max, e_max = (jnp.max(x) for x in (params.transition, params.start, params.end))
  exp_t = jnp.exp(params.transition - t_max)
  exp_s, exp_e = jnp.exp(params.start - s_max), jnp.exp(params.end - e_max)
  tiny = jnp.finfo(jnp.float32).tiny
  mask, first, last = data.mask, data.first, data.last
  inner = mask & ~first

  # The scans take the emission scores and exponentiate them step by step (the backward scan
  # again), and the backward scan accumulates the pairwise and end marginals in its carry: no
  # R x B x L table besides the scores, the forward vectors and the marginals (each one is
  # ~20 MB on CoNLL, and every temporary megabyte costs page faults at every evaluation).
  def scaled_exp(emit_BxL):
    shift_B = jnp.max(emit_BxL, axis=-1)
    return jnp.exp(emit_BxL - shift_B[:, None]), shift_B

  def forward(a_BxL, inputs):  # a: the normalised forward vector of the previous position
    emit_BxL, first_B = inputs
    e_BxL, shift_B = scaled_exp(emit_BxL)
    a_BxL = jnp.where(first_B[:, None], exp_s[None], a_BxL @ exp_t) * e_BxL
    c_B = jnp.maximum(jnp.sum(a_BxL, axis=-1), tiny)
    a_BxL = a_BxL / c_B[:, None]
    return a_BxL, (a_BxL, c_B, shift_B)

  a0 = jnp.zeros((B, L), jnp.float32)
  _, (a_RxBxL, c_RxB, shift_RxB) = jax.lax.scan(forward, a0, (emit_RxBxL, first))
  z_end_RxB = jnp.maximum(a_RxBxL @ exp_e, tiny)
  log_z = (jnp.sum(jnp.where(mask, jnp.log(c_RxB) + shift_RxB, 0.0))
           + jnp.sum(jnp.where(last, jnp.log(z_end_RxB), 0.0))
           + t_max * jnp.sum(inner) + (s_max + e_max) * jnp.sum(last))

  def backward(carry, inputs):
    # u: w_{t+1} * b_{t+1} of the next position (zero unless it continues this sentence), with
    # w_t = e_t / c_t and b the backward vector scaled by the forward's c's and Z_end. Then
    # p(y_t = i, y_{t+1} = j) = a_t[i] exp_t[i, j] u[j] and p(y_t) = a_t * b_t.
    u_BxL, pair_LxL, first_L, last_L = carry
    emit_BxL, a_BxL, c_B, z_end_B, mask_B, first_B, last_B, inner_B = inputs
    pair_LxL = pair_LxL + a_BxL.T @ u_BxL
    b_BxL = jnp.where(last_B[:, None], exp_e[None] / z_end_B[:, None], u_BxL @ exp_t.T)
    p_BxL = jnp.where(mask_B[:, None], a_BxL * b_BxL, 0.0)
    first_L = first_L + jnp.sum(jnp.where(first_B[:, None], p_BxL, 0.0), axis=0)
    last_L = last_L + jnp.sum(jnp.where(last_B[:, None], p_BxL, 0.0), axis=0)
    u_BxL = jnp.where(inner_B[:, None], scaled_exp(emit_BxL)[0] / c_B[:, None] * b_BxL, 0.0)
    return (u_BxL, pair_LxL, first_L, last_L), p_BxL

  zeros_L = jnp.zeros((L,), jnp.float32)
  carry = (jnp.zeros((B, L), jnp.float32), jnp.zeros((L, L), jnp.float32), zeros_L, zeros_L)
  (_, pair_LxL, first_L, last_L), p_RxBxL = jax.lax.scan(
      backward, carry, (emit_RxBxL, a_RxBxL, c_RxB, z_end_RxB, mask, first, last, inner),
      reverse=True)
  pair_LxL = exp_t * pair_LxL
  p_PxL = p_RxBxL.reshape(R * B, L)
  # Padding adds zeros (to the null row, the null context).
  U = data.context_ids.shape[1]
  p_UxL = jnp.zeros((U, L), p_PxL.dtype).at[data.context].add(p_PxL)
  grad_FxL = _scatter_rows(_scatter_rows(jnp.zeros_like(table_FxL), data.ids, p_PxL),
                           data.context_ids, p_UxL)
  return log_z, grad_FxL.reshape(-1), pair_LxL, first_L, last_L


def nll_and_grad(params: SparseParams, data: PackedData) -> tuple[jax.Array, SparseParams]:
  """sum of the sentences' NLL and its gradient (expected minus empirical counts)."""
  log_z, grad_C, pair_LxL, first_L, last_L = _forward_backward(params, data)
  gold = (jnp.dot(data.counts, params.theta) + jnp.sum(data.transition_counts * params.transition)
          + jnp.dot(data.start_counts, params.start) + jnp.dot(data.end_counts, params.end))
  grad = SparseParams(grad_C[data.cell_of_pair] - data.counts, pair_LxL - data.transition_counts,
                      first_L - data.start_counts, last_L - data.end_counts)
  return log_z - gold, grad


@jax.custom_vjp
def total_nll(params: SparseParams, data: PackedData) -> jax.Array:
  """sum of every sentence's NLL, differentiable in params (by `nll_and_grad`)."""
  return nll_and_grad(params, data)[0]


def _total_nll_fwd(params, data):
  value, grad = nll_and_grad(params, data)
  return value, grad


def _total_nll_bwd(grad, cotangent):
  return jax.tree.map(lambda g: g * cotangent, grad), None


total_nll.defvjp(_total_nll_fwd, _total_nll_bwd)


def objective(params: SparseParams, data: PackedData, l2: float,
              num_sentences: int) -> jax.Array:
  """crf.objective's (sum_i NLL_i + l2 * ||theta||^2) / N on the sparse weights."""
  return (total_nll(params, data) + l2 * crf.squared_norm(params)) / num_sentences


def fit_lbfgs(ids: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_features: int,
              num_labels: int, l2: float, **options) -> tuple[crf.CRFParams, dict]:
  """crf.fit_lbfgs from zero weights on the sparse state features of encoded sentences
  (crf_features.encode; `options` go to fit_lbfgs): the dense parameters, zero off the kept
  pairs, and the fit's info with "features", the number of kept pairs."""
  data = packed_data(ids, labels, num_features, num_labels)
  params, info = crf.fit_lbfgs(init_params(data), data, len(ids), l2=l2, objective_fn=objective,
                               **options)
  return to_dense(params, data), {**info, "features": int(data.counts.shape[0])}

