"""Exact k-nearest neighbours (L2 or cosine; uniform or distance weights), blocked over test and
training rows so memory stays bounded: one [test_block, train_block] distance tile at a time.

Distances come from one matmul per tile, |a|^2 - 2 a.b + |b|^2 (L2) or 1 - a.b on unit rows
(cosine); each tile's k best are merged with the running k best. Ties go to the lower
training index, as a stable sort would order them. Squared distances within float32 rounding
of zero (below 1e-6 of |a|^2 + |b|^2) count as exact zeros. `fit` stores the training set padded
to whole blocks (padding rows sit at infinite distance) and splits it into
`ceil(N / train_block)` blocks of equal size, so no block is mostly padding.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
from flax import struct

METRICS = ("l2", "cosine")
ZERO_TOLERANCE = 1e-6
WEIGHTS = ("uniform", "distance")


@struct.dataclass
class KNNParams:
  """The training set in blocks: rows x [B, T, D], offsets |b|^2 (L2; 0 for cosine) or +inf
  for padding [B, T], labels [B, T]; the voting smoothing; and the static settings."""

  x_blocks: jax.Array
  offsets: jax.Array
  y_blocks: jax.Array
  smoothing: jax.Array
  num_classes: int = struct.field(pytree_node=False)
  k: int = struct.field(pytree_node=False)
  metric: str = struct.field(pytree_node=False)
  weights: str = struct.field(pytree_node=False)
  test_block: int = struct.field(pytree_node=False)


def _unit_rows(x_NxD: jax.Array) -> jax.Array:
  norm = jnp.sqrt(jnp.sum(x_NxD**2, -1, keepdims=True))
  return x_NxD / jnp.where(norm > 0, norm, 1.0)


def _fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, *, k: int = 5,
         metric: str = "l2", weights: str = "uniform", train_block: int = 8192,
         test_block: int = 1024, smoothing: float = 1e-3) -> KNNParams:
  """Store the training set (features x_NxD, labels y_N) in blocks of at most `train_block`
  rows. `smoothing` alpha turns vote shares p into probabilities (p + alpha) / (1 + C alpha),
  so that log_proba stays finite where no neighbour has the label."""
  if metric not in METRICS:
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
  if weights not in WEIGHTS:
    raise ValueError(f"unknown weights {weights!r}; expected one of {WEIGHTS}")
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  n, d = x_NxD.shape
  if not 1 <= k <= n:
    raise ValueError(f"k must be in 1..{n} (the training set size), got {k}")
  num_blocks = -(-n // train_block)
  size = -(-n // num_blocks)
  pad = num_blocks * size - n
  if metric == "cosine":
    x_NxD = _unit_rows(x_NxD)
    offsets = jnp.zeros((n,), jnp.float32)
  else:
    offsets = jnp.sum(x_NxD**2, -1)
  offsets = jnp.concatenate([offsets, jnp.full((pad,), jnp.inf, jnp.float32)])
  x_pad = jnp.pad(x_NxD, ((0, pad), (0, 0)))
  y_pad = jnp.pad(jnp.asarray(y_N, jnp.int32), (0, pad))
  return KNNParams(x_blocks=x_pad.reshape(num_blocks, size, d),
                   offsets=offsets.reshape(num_blocks, size),
                   y_blocks=y_pad.reshape(num_blocks, size),
                   smoothing=jnp.asarray(smoothing, jnp.float32), num_classes=num_classes,
                   k=k, metric=metric, weights=weights, test_block=test_block)


STATIC = ("num_classes", "k", "metric", "weights", "train_block", "test_block")
fit = jax.jit(_fit, static_argnames=STATIC)
HYPERPARAMETERS = {name: p.default for name, p in inspect.signature(_fit).parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _tile_distances(params: KNNParams, q_BxD: jax.Array, x_TxD: jax.Array,
                    offset_T: jax.Array) -> jax.Array:
  """Squared L2 distances (or cosine distances) of a test tile to a training tile, [B, T]."""
  dot_BxT = jax.lax.dot_general(q_BxD, x_TxD, (((1,), (1,)), ((), ())))
  if params.metric == "cosine":
    q_B1, d_BxT = 1.0, 1.0 - dot_BxT + offset_T
  else:
    q_B1 = jnp.sum(q_BxD**2, -1, keepdims=True)
    d_BxT = q_B1 - 2.0 * dot_BxT + offset_T
  # float32 cancellation leaves an exact duplicate at a distance of the order of eps * |a|^2:
  # below ZERO_TOLERANCE of the norms, a distance counts as 0 (it decides distance weights).
  zero = (d_BxT <= ZERO_TOLERANCE * (q_B1 + offset_T)) & jnp.isfinite(offset_T)
  return jnp.where(zero, 0.0, d_BxT)


def _block_neighbours(params: KNNParams, q_BxD: jax.Array) -> tuple[jax.Array, jax.Array]:
  k, size = params.k, params.x_blocks.shape[1]
  b = q_BxD.shape[0]

  def merge(best, tile):
    best_d, best_i = best
    x_TxD, offset_T, start = tile
    neg_d, j = jax.lax.top_k(-_tile_distances(params, q_BxD, x_TxD, offset_T), k)
    # The running best come first, so equal distances keep the lower (earlier) index.
    cat_d = jnp.concatenate([best_d, -neg_d], -1)
    cat_i = jnp.concatenate([best_i, j + start], -1)
    neg_d, pos = jax.lax.top_k(-cat_d, k)
    return (-neg_d, jnp.take_along_axis(cat_i, pos, -1)), None

  starts = jnp.arange(params.x_blocks.shape[0], dtype=jnp.int32) * size
  init = (jnp.full((b, k), jnp.inf, jnp.float32), jnp.zeros((b, k), jnp.int32))
  (d, i), _ = jax.lax.scan(merge, init, (params.x_blocks, params.offsets, starts))
  return d, i


@jax.jit
def neighbours(params: KNNParams, x_NxD: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The k nearest training rows of each row of x: distances [N, k] (Euclidean, or cosine
  distance 1 - cos) in increasing order and their training indices [N, k]."""
  q_NxD = jnp.asarray(x_NxD, jnp.float32)
  if params.metric == "cosine":
    q_NxD = _unit_rows(q_NxD)
  n = q_NxD.shape[0]
  block = min(params.test_block, n)
  num_blocks = -(-n // block)
  q_pad = jnp.pad(q_NxD, ((0, num_blocks * block - n), (0, 0)))
  d, i = jax.lax.map(functools.partial(_block_neighbours, params),
                     q_pad.reshape(num_blocks, block, -1))
  d, i = d.reshape(-1, params.k)[:n], i.reshape(-1, params.k)[:n]
  d = jnp.maximum(d, 0.0)  # rounding of |a|^2 - 2ab + |b|^2 can dip below 0
  return (jnp.sqrt(d) if params.metric == "l2" else d), i


def _votes(params: KNNParams, x_NxD: jax.Array) -> jax.Array:
  d_NxK, i_NxK = neighbours(params, x_NxD)
  y_NxK = params.y_blocks.reshape(-1)[i_NxK]
  if params.weights == "uniform":
    w_NxK = jnp.ones_like(d_NxK)
  else:
    # 1 / distance; an exact match (distance 0) takes all the weight, as in scikit-learn.
    exact = d_NxK == 0
    w_NxK = jnp.where(jnp.any(exact, -1, keepdims=True), exact.astype(jnp.float32),
                      1.0 / jnp.where(exact, 1.0, d_NxK))
  return jnp.sum(w_NxK[..., None] * jax.nn.one_hot(y_NxK, params.num_classes), 1)


@jax.jit
def log_proba(params: KNNParams, x_NxD: jax.Array) -> jax.Array:
  """log((p + alpha) / (1 + C alpha)) of the (weighted) vote shares p, [N, C]."""
  v_NxC = _votes(params, x_NxD)
  p_NxC = v_NxC / jnp.sum(v_NxC, -1, keepdims=True)
  alpha = params.smoothing
  return jnp.log((p_NxC + alpha) / (1.0 + params.num_classes * alpha))


@jax.jit
def predict(params: KNNParams, x_NxD: jax.Array) -> jax.Array:
  """The (weighted) majority label among the k nearest, [N] int32; ties go to the lower class."""
  return jnp.argmax(_votes(params, x_NxD), -1).astype(jnp.int32)
