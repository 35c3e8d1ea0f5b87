"""Tree-augmented naive Bayes (Friedman, Geiger & Goldszmidt 1997), with naive Bayes as the case
without tree edges.

Features are discrete: binary (thresholded), equal-frequency bins of real values, or already
integer-coded. TAN weights every feature pair by the class-conditional mutual information

  I(Xi; Xj | C) = sum_{c,a,b} P(a, b, c) log [P(a, b | c) / (P(a | c) P(b | c))]

(empirical frequencies), takes the maximum spanning tree (Chow & Liu 1968; Prim's algorithm),
roots it at `root`, and gives each feature the parents {C, its tree parent}. Every conditional
table is estimated with Lidstone smoothing (`alpha` = 1: Laplace). With `tree=False` no feature
has a tree parent: naive Bayes with the same discretisation and smoothing, so the two compare
like for like.

Contract of the classical modules: `fit(x_NxD, y_N, num_classes, **hyperparameters) -> params`,
`log_proba(params, x) -> log p(c | x)` (N, C), `predict`, `HYPERPARAMETERS`, plus
`sample(params, key, y_N)` by ancestral sampling (feature codes, in tree order).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

DISCRETIZE = ("quantile", "binary", "none")

HYPERPARAMETERS = {
    "tree": True,  # False: naive Bayes
    "discretize": "quantile",  # quantile (equal-frequency bins) | binary (x > threshold) | none
    "num_bins": 5,  # quantile
    "threshold": 0.5,  # binary
    "alpha": 1.0,  # Lidstone pseudo-count of every table cell (1: Laplace)
    "root": 0,  # the feature the tree is directed from
}


@struct.dataclass
class TANParams:
  """A fitted TAN (or naive Bayes) classifier.

  log_prior_C: log P(c). log_cpt_DxCxKxK: log P(x_i = a | c, x_parent(i) = p) at [i, c, p, a]
  (p = 0 for a feature without a tree parent). parents_D: the tree parent (-1: none).
  order_D: the features in an order where parents come first. edges_DxB: bin edges of the
  quantile discretisation (rows padded with +inf); threshold: the binary one.
  """

  log_prior_C: jax.Array
  log_cpt_DxCxKxK: jax.Array
  parents_D: jax.Array
  order_D: jax.Array
  edges_DxB: jax.Array
  threshold: jax.Array
  discretize: str = struct.field(pytree_node=False, default="quantile")


# ------------------------------------------------------------------------ discretisation


def quantile_edges(x_NxD: jax.Array, num_bins: int) -> jax.Array:
  """Equal-frequency bin edges of each column: its quantiles at 1/B, ..., (B-1)/B, (D, B-1)."""
  q = jnp.arange(1, num_bins) / num_bins
  return jnp.quantile(jnp.asarray(x_NxD, jnp.float32), q, axis=0).T


def discretize(params_or_edges, x_NxD: jax.Array) -> jax.Array:
  """Integer codes of real features under a fitted classifier's discretisation, (N, D) int32.

  A value takes the number of its column's edges it reaches: ties on an edge go up, repeated
  edges (many tied values) leave empty bins.
  """
  p = params_or_edges
  x = jnp.asarray(x_NxD)
  if p.discretize == "none":
    return x.astype(jnp.int32)
  if p.discretize == "binary":
    return (x > p.threshold).astype(jnp.int32)
  return jnp.sum(x[:, :, None] >= p.edges_DxB[None], axis=-1).astype(jnp.int32)


# ----------------------------------------------------------------- counts and information


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
  return [(s, min(s + size, n)) for s in range(0, n, size)]


@functools.partial(jax.jit, static_argnames=("num_classes", "num_values"))
def _pair_counts_block(x_NxD, y_N, num_classes: int, num_values: int):
  oh = jax.nn.one_hot(x_NxD, num_values, dtype=jnp.float32).reshape(x_NxD.shape[0], -1)
  ohy = jax.nn.one_hot(y_N, num_classes, dtype=jnp.float32)
  # One (DK x N) @ (N x DK) product per class: the class-conditional pair counts.
  return jax.vmap(lambda w: (oh * w[:, None]).T @ oh, in_axes=1)(ohy)


def pair_counts(x_NxD: np.ndarray, y_N: np.ndarray, num_classes: int, num_values: int,
                chunk: int = 4096) -> jax.Array:
  """N(c, x_i = a, x_j = b), shape (C, D, D, K, K) (row chunks bound the memory)."""
  n, d = x_NxD.shape
  total = jnp.zeros((num_classes, d * num_values, d * num_values), jnp.float32)
  for s, e in _chunks(n, chunk):
    total = total + _pair_counts_block(jnp.asarray(x_NxD[s:e]), jnp.asarray(y_N[s:e]),
                                       num_classes, num_values)
  return total.reshape(num_classes, d, num_values, d, num_values).transpose(0, 1, 3, 2, 4)


def conditional_mutual_information(counts_CxDxDxKxK: jax.Array) -> jax.Array:
  """I(Xi; Xj | C) in nats from pair counts (empirical frequencies), shape (D, D)."""
  n = jnp.sum(counts_CxDxDxKxK[:, 0, 0])
  p_abc = counts_CxDxDxKxK / n
  p_c = jnp.sum(p_abc, axis=(-2, -1), keepdims=True)
  p_ac = jnp.sum(p_abc, axis=-1, keepdims=True)
  p_bc = jnp.sum(p_abc, axis=-2, keepdims=True)
  ratio = p_abc * p_c / (p_ac * p_bc)
  terms = jnp.where(p_abc > 0, p_abc * jnp.log(jnp.where(p_abc > 0, ratio, 1.0)), 0.0)
  return jnp.sum(terms, axis=(0, -2, -1))


@functools.partial(jax.jit, static_argnames=("root",))
def maximum_spanning_tree(weights_DxD: jax.Array, root: int = 0) -> tuple[jax.Array, jax.Array]:
  """Prim's maximum spanning tree of a complete graph, directed away from `root`.

  Returns (parents_D with -1 at the root, order_D: the nodes in the order they joined the tree,
  so each node's parent comes before it).
  """
  d = weights_DxD.shape[0]
  w = jnp.asarray(weights_DxD, jnp.float32)
  in_tree = jnp.zeros((d,), bool).at[root].set(True)
  order = jnp.zeros((d,), jnp.int32).at[0].set(root)
  parent = jnp.full((d,), root, jnp.int32)

  def body(t, carry):
    in_tree, best, parent, order = carry
    j = jnp.argmax(jnp.where(in_tree, -jnp.inf, best))
    in_tree = in_tree.at[j].set(True)
    better = (w[j] > best) & ~in_tree
    return (in_tree, jnp.where(better, w[j], best), jnp.where(better, j, parent),
            order.at[t].set(j))

  _, _, parent, order = jax.lax.fori_loop(1, d, body, (in_tree, w[root], parent, order))
  return parent.at[root].set(-1), order


@functools.partial(jax.jit, static_argnames=("num_classes", "num_values"))
def _cpt_counts_block(x_NxD, y_N, parents_D, num_classes: int, num_values: int):
  n, d = x_NxD.shape
  k = num_values
  xp = jnp.where(parents_D[None] >= 0, x_NxD[:, jnp.maximum(parents_D, 0)], 0)
  ids = ((jnp.arange(d)[None] * num_classes + y_N[:, None]) * k + xp) * k + x_NxD
  return jax.ops.segment_sum(jnp.ones(ids.size, jnp.float32), ids.reshape(-1),
                             num_segments=d * num_classes * k * k)


def cpt_counts(x_NxD: np.ndarray, y_N: np.ndarray, parents_D: jax.Array, num_classes: int,
               num_values: int, chunk: int = 8192) -> jax.Array:
  """N(x_i = a, c, x_parent(i) = p) at [i, c, p, a], shape (D, C, K, K)."""
  n, d = x_NxD.shape
  total = jnp.zeros((d * num_classes * num_values * num_values,), jnp.float32)
  for s, e in _chunks(n, chunk):
    total = total + _cpt_counts_block(jnp.asarray(x_NxD[s:e]), jnp.asarray(y_N[s:e]),
                                      parents_D, num_classes, num_values)
  return total.reshape(d, num_classes, num_values, num_values)


# ---------------------------------------------------------------------------- the model


def fit(x_NxD, y_N, num_classes: int, **hyperparameters) -> TANParams:
  """Fit TAN (or naive Bayes with tree=False) to features x (N, D) and labels y in 0..C-1.

  Hyperparameters (defaults in HYPERPARAMETERS): tree, discretize, num_bins, threshold,
  alpha, root. Returns the classifier's parameters.
  """
  unknown = set(hyperparameters) - set(HYPERPARAMETERS)
  if unknown:
    raise ValueError(f"unknown hyperparameters {sorted(unknown)}; "
                     f"expected some of {sorted(HYPERPARAMETERS)}")
  hp = {**HYPERPARAMETERS, **hyperparameters}
  if hp["discretize"] not in DISCRETIZE:
    raise ValueError(f"unknown discretize {hp['discretize']!r}; expected one of {DISCRETIZE}")
  x = np.asarray(x_NxD)
  y = np.asarray(y_N, np.int32)
  d = x.shape[1]
  if hp["discretize"] == "quantile":
    edges, k = quantile_edges(x, hp["num_bins"]), hp["num_bins"]
  else:
    edges = jnp.full((d, 1), jnp.inf, jnp.float32)
    k = 2 if hp["discretize"] == "binary" else int(x.max()) + 1
  shell = TANParams(log_prior_C=None, log_cpt_DxCxKxK=None, parents_D=None, order_D=None,
                    edges_DxB=edges, threshold=jnp.float32(hp["threshold"]),
                    discretize=hp["discretize"])
  codes = np.asarray(discretize(shell, x))
  if codes.min() < 0:
    raise ValueError("integer-coded features (discretize='none') must be non-negative")

  if hp["tree"] and d > 1:
    cmi = conditional_mutual_information(pair_counts(codes, y, num_classes, k))
    parents, order = maximum_spanning_tree(cmi, hp["root"])
  else:
    parents, order = jnp.full((d,), -1, jnp.int32), jnp.arange(d, dtype=jnp.int32)
  counts = cpt_counts(codes, y, parents, num_classes, k)
  a = hp["alpha"]
  log_cpt = jnp.log(counts + a) - jnp.log(jnp.sum(counts, -1, keepdims=True) + k * a)
  class_counts = jnp.bincount(jnp.asarray(y), length=num_classes).astype(jnp.float32)
  log_prior = jnp.log(class_counts + a) - jnp.log(len(y) + num_classes * a)
  return shell.replace(log_prior_C=log_prior, log_cpt_DxCxKxK=log_cpt, parents_D=parents,
                       order_D=order)


@jax.jit
def log_joint_codes(params: TANParams, codes_NxD: jax.Array) -> jax.Array:
  """log p(c, x) of integer-coded features, (N, C)."""
  d = codes_NxD.shape[1]
  k = params.log_cpt_DxCxKxK.shape[-1]
  codes = jnp.clip(codes_NxD, 0, k - 1)  # values never seen in training share the top code
  xp = jnp.where(params.parents_D[None] >= 0, codes[:, jnp.maximum(params.parents_D, 0)], 0)

  def one(row_x, row_p):  # (D,), (D,) -> (C,)
    return jnp.sum(params.log_cpt_DxCxKxK[jnp.arange(d), :, row_p, row_x], axis=0)

  return params.log_prior_C + jax.lax.map(lambda r: one(*r), (codes, xp), batch_size=256)


def log_proba(params: TANParams, x_NxD) -> jax.Array:
  """log p(c | x) of raw features (discretised as at fit time), (N, C)."""
  lj = log_joint_codes(params, discretize(params, x_NxD))
  return lj - jax.nn.logsumexp(lj, axis=-1, keepdims=True)


def predict(params: TANParams, x_NxD) -> jax.Array:
  """The most probable class of each row, (N,) int32."""
  return jnp.argmax(log_proba(params, x_NxD), axis=-1).astype(jnp.int32)


@jax.jit
def sample(params: TANParams, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Integer-coded features drawn from p(x | c = y_n) by ancestral sampling along the tree,
  (N, D) int32 (bin indices; map them back with the params' edges where needed)."""
  n, d = y_N.shape[0], params.parents_D.shape[0]

  def body(x, t):
    i = params.order_D[t]
    p = params.parents_D[i]
    pv = jnp.where(p >= 0, x[:, jnp.maximum(p, 0)], 0)
    logits = params.log_cpt_DxCxKxK[i, y_N, pv]  # (N, K)
    xi = jax.random.categorical(jax.random.fold_in(key, t), logits)
    return x.at[:, i].set(xi.astype(jnp.int32)), None

  x, _ = jax.lax.scan(body, jnp.zeros((n, d), jnp.int32), jnp.arange(d))
  return x


def num_edges(params: TANParams) -> int:
  """How many features have a tree parent (D - 1 for TAN, 0 for naive Bayes)."""
  return int(jnp.sum(params.parents_D >= 0))
