"""Linear-chain CRF: log-space forward algorithm, Viterbi, forward-backward marginals, L-BFGS/Adam.

A sentence of T tokens with label sequence y scores

    s(y) = start[y_0] + sum_t emit[t, y_t] + sum_{t>0} transition[y_{t-1}, y_t] + end[y_{T-1}],

with emit_TxL = sum over the token's active feature ids f of emission[f] (sparse features, see
genjax.structured.crf_features; id 0 is the null feature and contributes nothing), and
p(y | x) = exp(s(y) - log Z). Everything is batched over right-padded sentences: arrays are
BxT(xL) with mask_BxT true on real tokens; a padded step carries the forward/Viterbi state through
unchanged. The training objective is CRFsuite's: (sum_i NLL_i + l2 * ||theta||^2) / N.
"""

import functools
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from genjax.structured.crf_features import NULL_FEATURE, Bucket, bucketize


@struct.dataclass
class CRFParams:
  """emission_FxL (row 0 is the null feature), transition_LxL [previous, next], start_L, end_L."""

  emission: jax.Array
  transition: jax.Array
  start: jax.Array
  end: jax.Array


def init_params(num_features: int, num_labels: int) -> CRFParams:
  """All-zero parameters (the CRF objective is convex, so zeros are a fine start)."""
  zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
  return CRFParams(zeros((num_features, num_labels)), zeros((num_labels, num_labels)),
                   zeros(num_labels), zeros(num_labels))


def emission_scores(emission_FxL: jax.Array, ids_BxTxF: jax.Array) -> jax.Array:
  """emit_BxTxL: the sum of the weight rows of each token's active feature ids."""
  rows_BxTxFxL = jnp.take(emission_FxL, ids_BxTxF, axis=0)
  active = (ids_BxTxF != NULL_FEATURE)[..., None]
  return jnp.sum(jnp.where(active, rows_BxTxFxL, 0.0), axis=-2)


def _logsumexp_step(alpha_BxL: jax.Array, transition_LxL: jax.Array) -> jax.Array:
  """log sum_i exp(alpha[b, i] + transition[i, j]) over an explicit BxLxL tensor."""
  return jax.nn.logsumexp(alpha_BxL[:, :, None] + transition_LxL[None], axis=1)


def _matmul_step(alpha_BxL: jax.Array, transition_LxL: jax.Array) -> jax.Array:
  """The same as `_logsumexp_step` as one matrix product of exponentials, shifted by the maxima
  of alpha's rows and of the transitions so the exponentials cannot overflow. It needs L exps per
  token instead of L^2 and is exact unless transitions span more than ~80 nats (float32
  underflow), which L2-regularised weights never do."""
  a_max = jnp.max(alpha_BxL, axis=1, keepdims=True)
  t_max = jnp.max(transition_LxL)
  product = jnp.exp(alpha_BxL - a_max) @ jnp.exp(transition_LxL - t_max)
  return jnp.log(jnp.maximum(product, jnp.finfo(product.dtype).tiny)) + a_max + t_max


def _forward(emit_BxTxL: jax.Array, mask_BxT: jax.Array, params: CRFParams,
             step: Callable = _logsumexp_step) -> jax.Array:
  """alpha_TxBxL: log forward scores; padded steps repeat the last real step's alpha."""
  alpha0_BxL = params.start[None] + emit_BxTxL[:, 0]

  def body(alpha_BxL, inputs):
    emit_t_BxL, mask_t_B = inputs
    nxt_BxL = step(alpha_BxL, params.transition) + emit_t_BxL
    alpha_BxL = jnp.where(mask_t_B[:, None], nxt_BxL, alpha_BxL)
    return alpha_BxL, alpha_BxL

  xs = (jnp.swapaxes(emit_BxTxL[:, 1:], 0, 1), jnp.swapaxes(mask_BxT[:, 1:], 0, 1))
  _, alphas = jax.lax.scan(body, alpha0_BxL, xs)
  return jnp.concatenate([alpha0_BxL[None], alphas], axis=0)


def log_partition(emit_BxTxL: jax.Array, mask_BxT: jax.Array, params: CRFParams,
                  method: str = "logsumexp") -> jax.Array:
  """log Z_B by the forward algorithm (0 for an empty sentence).

  method: "logsumexp" (explicit BxLxL log-sum-exp per step) or "matmul" (a product of
  exponentials per step: faster, the one training uses; see `_matmul_step`).
  """
  step = {"logsumexp": _logsumexp_step, "matmul": _matmul_step}[method]
  alpha_BxL = _forward(emit_BxTxL, mask_BxT, params, step)[-1]
  log_z_B = jax.nn.logsumexp(alpha_BxL + params.end[None], axis=-1)
  return jnp.where(jnp.any(mask_BxT, axis=1), log_z_B, 0.0)


def sequence_score(emit_BxTxL: jax.Array, labels_BxT: jax.Array, mask_BxT: jax.Array,
                   params: CRFParams) -> jax.Array:
  """s(y)_B: the unnormalised log score of each sentence's label sequence."""
  m = mask_BxT.astype(emit_BxTxL.dtype)
  emit_B = jnp.sum(jnp.take_along_axis(emit_BxTxL, labels_BxT[..., None], -1)[..., 0] * m, 1)
  trans_B = jnp.sum(params.transition[labels_BxT[:, :-1], labels_BxT[:, 1:]] * m[:, 1:], 1)
  last_B = jnp.maximum(jnp.sum(mask_BxT, axis=1) - 1, 0)
  y_last_B = jnp.take_along_axis(labels_BxT, last_B[:, None], 1)[:, 0]
  ends_B = (params.start[labels_BxT[:, 0]] + params.end[y_last_B]) * m[:, 0]
  return emit_B + trans_B + ends_B


def nll(params: CRFParams, ids_BxTxF: jax.Array, labels_BxT: jax.Array, mask_BxT: jax.Array,
        method: str = "logsumexp") -> jax.Array:
  """Negative log-likelihood -log p(y | x) of each sentence, shape B (0 for padding rows)."""
  emit_BxTxL = emission_scores(params.emission, ids_BxTxF)
  return (log_partition(emit_BxTxL, mask_BxT, params, method)
          - sequence_score(emit_BxTxL, labels_BxT, mask_BxT, params))


def marginals(emit_BxTxL: jax.Array, mask_BxT: jax.Array,
              params: CRFParams) -> tuple[jax.Array, jax.Array]:
  """Posterior marginals by forward-backward: (p(y_t = j)_BxTxL, p(y_{t-1} = i, y_t = j)_BxTxLxL).

  The pairwise entry at t = 0 and every entry at a padded position is 0.
  """
  alphas_TxBxL = _forward(emit_BxTxL, mask_BxT, params)
  log_z_B = jax.nn.logsumexp(alphas_TxBxL[-1] + params.end[None], axis=-1)

  def body(beta_BxL, inputs):
    emit_t_BxL, mask_t_B = inputs  # of position t + 1; beta_BxL is beta_{t+1}
    nxt_BxL = jax.nn.logsumexp(
        params.transition[None] + (emit_t_BxL + beta_BxL)[:, None, :], axis=-1)
    beta_BxL = jnp.where(mask_t_B[:, None], nxt_BxL, params.end[None])
    return beta_BxL, beta_BxL

  end_BxL = jnp.broadcast_to(params.end[None], emit_BxTxL[:, 0].shape)
  xs = (jnp.swapaxes(emit_BxTxL[:, 1:], 0, 1), jnp.swapaxes(mask_BxT[:, 1:], 0, 1))
  _, betas = jax.lax.scan(body, end_BxL, xs, reverse=True)
  betas_TxBxL = jnp.concatenate([betas, end_BxL[None]], axis=0)
  alpha_BxTxL = jnp.swapaxes(alphas_TxBxL, 0, 1)
  beta_BxTxL = jnp.swapaxes(betas_TxBxL, 0, 1)
  m_BxT = mask_BxT.astype(emit_BxTxL.dtype)
  unary = jnp.exp(alpha_BxTxL + beta_BxTxL - log_z_B[:, None, None]) * m_BxT[..., None]
  pair = jnp.exp(alpha_BxTxL[:, :-1, :, None] + params.transition[None, None]
                 + (emit_BxTxL[:, 1:] + beta_BxTxL[:, 1:])[:, :, None, :]
                 - log_z_B[:, None, None, None]) * m_BxT[:, 1:, None, None]
  pair = jnp.concatenate([jnp.zeros_like(pair[:, :1]), pair], axis=1)
  return unary, pair


def viterbi(emit_BxTxL: jax.Array, mask_BxT: jax.Array,
            params: CRFParams) -> tuple[jax.Array, jax.Array]:
  """(labels_BxT, score_B): the highest-scoring label sequence of each sentence and its score.

  Padded positions get label 0.
  """
  num_labels = emit_BxTxL.shape[-1]
  delta0_BxL = params.start[None] + emit_BxTxL[:, 0]
  identity_BxL = jnp.broadcast_to(jnp.arange(num_labels), delta0_BxL.shape)

  def forward(delta_BxL, inputs):
    emit_t_BxL, mask_t_B = inputs
    scores_BxLxL = delta_BxL[:, :, None] + params.transition[None]
    back_BxL = jnp.argmax(scores_BxLxL, axis=1)
    nxt_BxL = jnp.max(scores_BxLxL, axis=1) + emit_t_BxL
    keep = mask_t_B[:, None]
    # Padded steps point each label to itself, so backtracking passes through them unchanged.
    return jnp.where(keep, nxt_BxL, delta_BxL), jnp.where(keep, back_BxL, identity_BxL)

  xs = (jnp.swapaxes(emit_BxTxL[:, 1:], 0, 1), jnp.swapaxes(mask_BxT[:, 1:], 0, 1))
  delta_BxL, backs_TxBxL = jax.lax.scan(forward, delta0_BxL, xs)
  final_BxL = delta_BxL + params.end[None]
  y_last_B = jnp.argmax(final_BxL, axis=-1)

  def backward(y_B, back_BxL):
    return jnp.take_along_axis(back_BxL, y_B[:, None], 1)[:, 0], y_B

  y0_B, ys = jax.lax.scan(backward, y_last_B, backs_TxBxL, reverse=True)
  labels_BxT = jnp.concatenate([y0_B[None], ys], axis=0).T
  return jnp.where(mask_BxT, labels_BxT, 0), jnp.max(final_BxL, axis=-1)


@jax.jit
def predict(params: CRFParams, ids_BxTxF: jax.Array, mask_BxT: jax.Array) -> jax.Array:
  """Viterbi labels_BxT of a batch of feature-id sentences."""
  return viterbi(emission_scores(params.emission, ids_BxTxF), mask_BxT, params)[0]


# ---------------------------------------------------------------- training objective

Data = list[tuple[jax.Array, jax.Array, jax.Array]]  # per bucket: ids_NxCxTxF, labels, mask


def device_data(buckets: Sequence[Bucket]) -> Data:
  """The buckets' (ids, labels, mask) arrays on the device, the form `objective` takes."""
  return [(jnp.asarray(b.ids), jnp.asarray(b.labels), jnp.asarray(b.mask)) for b in buckets]


def total_nll(params: CRFParams, data: Data, method: str = "matmul") -> jax.Array:
  """sum of every sentence's NLL. Chunks of sentences go through a scan, each rematerialised in
  the backward pass, so memory is bounded by one chunk (not the data set) under autodiff."""
  chunk_nll = jax.checkpoint(lambda p, ids, labels, mask: jnp.sum(nll(p, ids, labels, mask,
                                                                       method)))
  total = jnp.zeros((), jnp.float32)
  for ids, labels, mask in data:  # a few length buckets (distinct shapes), not sentences
    def body(acc, chunk):
      return acc + chunk_nll(params, *chunk), None
    total = total + jax.lax.scan(body, jnp.zeros((), jnp.float32), (ids, labels, mask))[0]
  return total


def squared_norm(params: CRFParams) -> jax.Array:
  return sum(jnp.sum(x**2) for x in jax.tree.leaves(params))


def objective(params: CRFParams, data: Data, l2: float, num_sentences: int) -> jax.Array:
  """CRFsuite's L2-regularised objective divided by the number of sentences N:
  (sum_i NLL_i + l2 * ||theta||^2) / N."""
  return (total_nll(params, data) + l2 * squared_norm(params)) / num_sentences


def fit_lbfgs(params: CRFParams, data: Data, num_sentences: int, l2: float = 1.0,
              max_iterations: int = 500, delta: float = 1e-5, period: int = 10,
              gtol: float = 1e-5, memory_size: int = 10, max_seconds: float = float("inf"),
              log: Callable[[dict], None] | None = None,
              objective_fn: Callable | None = None) -> tuple[CRFParams, dict]:
  """Full-batch L-BFGS (optax.lbfgs, zoom line search) on `objective`, a Python loop of one
  jitted iteration at a time. `objective_fn(params, data, l2, num_sentences)` replaces
  `objective` for another parametrisation (genjax.structured.crf_sparse.objective).

  Stops as CRFsuite does: when the objective improved by less than a fraction `delta` over the
  last `period` iterations, when ||grad|| / max(1, ||theta||) < gtol, or after
  `max_iterations` or `max_seconds` of wall time (a budget, reason "time"), or when a line
  search ends without decrease (float32's resolution is reached, reason "no_decrease"). Returns the
  parameters and {"iterations", "evaluations" (objective and gradient evaluations, line search
  included), "seconds" (wall time of the loop, compilation included), "compile_seconds",
  "cpu_seconds" (CPU time of all threads: steadier than wall time on a shared machine),
  "objective", "converged", "reason"}. `log` gets one dict per iteration.
  """
  value_fn = functools.partial(objective_fn or objective, l2=l2, num_sentences=num_sentences)
  optimizer = optax.lbfgs(memory_size=memory_size)
  value_and_grad = optax.value_and_grad_from_state(value_fn)

  @jax.jit
  def iteration(params, state, data):
    value, grad = value_and_grad(params, state=state, data=data)
    updates, state = optimizer.update(grad, state, params, value=value, grad=grad,
                                      value_fn=value_fn, data=data)
    params = optax.apply_updates(params, updates)
    new_value = optax.tree.get(state, "value")
    new_grad = optax.tree.get(state, "grad")
    steps = optax.tree.get(state, "num_linesearch_steps")
    ratio = optax.tree.norm(new_grad) / jnp.maximum(1.0, optax.tree.norm(params))
    return params, state, new_value, ratio, steps

  state = optimizer.init(params)
  start, cpu_start = time.perf_counter(), time.process_time()
  compiled = iteration.lower(params, state, data).compile()
  compile_seconds = time.perf_counter() - start
  history, evaluations, reason = [], 1, "max_iterations"
  for k in range(1, max_iterations + 1):
    params, state, value, ratio, steps = compiled(params, state, data)
    value, ratio, steps = float(value), float(ratio), int(steps)
    if not np.isfinite(value):
      raise FloatingPointError(f"L-BFGS objective is {value} at iteration {k}")
    history.append(value)
    evaluations += steps
    if log is not None:
      log({"iteration": k, "objective": value, "grad_ratio": ratio, "linesearch_steps": steps,
           "seconds": time.perf_counter() - start})
    if ratio < gtol:
      reason = "gradient"
      break
    if k > period and (history[-period - 1] - value) / abs(value) < delta:
      reason = "delta"
      break
    if len(history) > 1 and value >= history[-2]:
      # The line search found no decrease: float32 cannot resolve a smaller improvement of the
      # objective (libLBFGS's rounding-error stop, which CRFsuite also ends on).
      reason = "no_decrease"
      break
    if time.perf_counter() - start > max_seconds:
      reason = "time"
      break
  return params, {"iterations": k, "evaluations": evaluations,
                  "seconds": time.perf_counter() - start, "compile_seconds": compile_seconds,
                  "cpu_seconds": time.process_time() - cpu_start,
                  "objective": history[-1],
                  "converged": reason in ("gradient", "delta", "no_decrease"),
                  "reason": reason}


def soft_threshold(x: jax.Array, threshold: jax.Array) -> jax.Array:
  """The proximal map of threshold * |x|_1: sign(x) * max(|x| - threshold, 0)."""
  return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def fit_adam(params: CRFParams, data: Data, num_sentences: int, key: jax.Array,
             learning_rate: float = 0.05, epochs: int = 10, l2: float = 1.0, l1: float = 0.0,
             log: Callable[[dict], None] | None = None) -> tuple[CRFParams, dict]:
  """Mini-batch Adam, one chunk of sentences per step, chunks in a fresh random order per epoch.

  A step minimises sum_chunk NLL / C + l2 ||theta||^2 / N (C sentences per chunk, N in all: an
  unbiased estimate of `objective`), then applies the proximal step of (l1 / N) * ||theta||_1
  with the learning rate (soft thresholding), which sets weights exactly to zero. Returns the
  parameters and {"steps", "epochs", "seconds", "objective" (the full L2 objective at the end)}.
  """
  optimizer = optax.adam(learning_rate)

  @jax.jit
  def step(params, opt_state, ids, labels, mask):
    def loss_fn(p):
      return (jnp.mean(nll(p, ids, labels, mask, "matmul"))
              + l2 * squared_norm(p) / num_sentences)
    loss, grad = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grad, opt_state, params)
    params = optax.apply_updates(params, updates)
    if l1 > 0:
      params = jax.tree.map(lambda x: soft_threshold(x, learning_rate * l1 / num_sentences),
                            params)
    return params, opt_state, loss

  opt_state = optimizer.init(params)
  order = [(b, c) for b, (ids, _, _) in enumerate(data) for c in range(ids.shape[0])]
  start, steps = time.perf_counter(), 0
  for epoch in range(epochs):
    permutation = jax.random.permutation(jax.random.fold_in(key, epoch), len(order))
    losses = []
    for i in np.asarray(permutation):
      b, c = order[int(i)]
      ids, labels, mask = data[b]
      params, opt_state, loss = step(params, opt_state, ids[c], labels[c], mask[c])
      losses.append(loss)
      steps += 1
    if log is not None:
      log({"epoch": epoch + 1, "step": steps, "loss": float(jnp.mean(jnp.stack(losses))),
           "seconds": time.perf_counter() - start})
  value = float(jax.jit(objective, static_argnums=(2, 3))(params, data, l2, num_sentences))
  return params, {"steps": steps, "epochs": epochs, "seconds": time.perf_counter() - start,
                  "objective": value}


def decode(params: CRFParams, buckets: Sequence[Bucket], num_sentences: int) -> list[np.ndarray]:
  """Viterbi label ids of every sentence of `buckets`, back in input order (one array each)."""
  out: list[np.ndarray | None] = [None] * num_sentences
  for b in buckets:
    labels = np.asarray(jax.lax.map(lambda chunk: predict(params, *chunk),
                                    (jnp.asarray(b.ids), jnp.asarray(b.mask))))
    for row_labels, row_mask, i in zip(labels.reshape(-1, labels.shape[-1]),
                                       b.mask.reshape(-1, b.mask.shape[-1]), b.order.reshape(-1),
                                       strict=True):
      if i >= 0:
        out[i] = row_labels[row_mask]
  return out


def predict_ids(params: CRFParams, ids: Sequence[np.ndarray], num_buckets: int = 4,
                chunk_tokens: int = 16384) -> list[np.ndarray]:
  """Viterbi label ids of sentences given by their feature ids (crf_features), one array each,
  in input order. Tagging needs no labels: a tag absent from training cannot be predicted."""
  buckets = bucketize(ids, [np.zeros(len(x), np.int32) for x in ids], num_buckets, chunk_tokens)
  return decode(params, buckets, len(ids))

