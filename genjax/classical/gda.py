"""Gaussian discriminant analysis: shared per-class moments (streaming) for LDA and QDA.

The models live in genjax.classical.lda (one covariance shared by all classes: a linear
decision rule) and genjax.classical.qda (a covariance per class: quadratic), each with the
classical-model contract. Covariances are maximum-likelihood (divided by the count) and
shrunk towards a multiple of the identity,

  Sigma <- (1 - shrinkage) Sigma + shrinkage * (trace(Sigma) / D) I,

which keeps them invertible where features are constant (MNIST's border pixels) or
outnumber the rows.
"""

import jax
import jax.numpy as jnp

from genjax.classical import naive_bayes as nb

VARIANTS = {"lda": "genjax.classical.lda", "qda": "genjax.classical.qda"}


def init_stats(num_features: int, num_classes: int, shared: bool) -> dict:
  """Empty statistics: counts [C], means [C, D] and centred scatter matrices, pooled over
  the classes ([D, D], enough for LDA) when `shared`, else one per class ([C, D, D])."""
  d = num_features
  scatter = ({"scatter_DxD": jnp.zeros((d, d), jnp.float32)} if shared else
             {"scatter_CxDxD": jnp.zeros((num_classes, d, d), jnp.float32)})
  return {"count_C": jnp.zeros(num_classes, jnp.float32),
          "mean_CxD": jnp.zeros((num_classes, d), jnp.float32), **scatter}


@jax.jit
def update_stats(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch into per-class means and scatter matrices (Chan et al.'s pairwise merge,
  the batch centred on its own class means first, so float32 keeps its precision)."""
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  onehot_NxC = nb.one_hot(y_N, stats["count_C"].shape[0])
  nb_C = onehot_NxC.sum(0)
  mb_CxD = onehot_NxC.T @ x_NxD / jnp.maximum(nb_C, 1.0)[:, None]
  xc_NxD = x_NxD - onehot_NxC @ mb_CxD
  na_C = stats["count_C"]
  n_C = na_C + nb_C
  delta_CxD = mb_CxD - stats["mean_CxD"]
  frac_C = nb_C / jnp.maximum(n_C, 1.0)
  weighted_CxD = delta_CxD * (na_C * frac_C)[:, None]
  new = {"count_C": n_C, "mean_CxD": stats["mean_CxD"] + delta_CxD * frac_C[:, None]}
  if "scatter_DxD" in stats:
    new["scatter_DxD"] = stats["scatter_DxD"] + xc_NxD.T @ xc_NxD + delta_CxD.T @ weighted_CxD
  else:
    sb_CxDxD = class_scatters(xc_NxD, y_N, nb_C)
    cross_CxDxD = jnp.einsum("cd,ce->cde", weighted_CxD, delta_CxD)
    new["scatter_CxDxD"] = stats["scatter_CxDxD"] + sb_CxDxD + cross_CxDxD
  return new


def class_scatters(xc_NxD: jax.Array, y_N: jax.Array, count_C: jax.Array,
                   block: int = 1024) -> jax.Array:
  """Per-class scatter matrices sum_{i in c} x_i x_i^T [C, D, D] of the rows xc_NxD.

  The rows are sorted by class, and each class's rows are taken in blocks of `block` rows
  (rows of other classes in its last block masked out): about N D^2 multiply-adds in all,
  where masking every row for every class would cost C times as many.
  """
  n, d = xc_NxD.shape
  block = min(block, n)
  order_N = jnp.argsort(y_N, stable=True)
  sorted_NxD = jnp.pad(xc_NxD[order_N], ((0, block), (0, 0)))  # a last block never overruns
  count_C = count_C.astype(jnp.int32)
  start_C = jnp.cumsum(count_C) - count_C

  def one_class(args):
    start, count = args

    def add(i, acc_DxD):
      rows_BxD = jax.lax.dynamic_slice_in_dim(sorted_NxD, start + i * block, block)
      inside_B = (i * block + jnp.arange(block)) < count
      rows_BxD = jnp.where(inside_B[:, None], rows_BxD, 0.0)
      return acc_DxD + rows_BxD.T @ rows_BxD

    return jax.lax.fori_loop(0, (count + block - 1) // block, add,
                             jnp.zeros((d, d), xc_NxD.dtype))

  return jax.lax.map(one_class, (start_C, count_C))


def shrink(cov_DxD: jax.Array, shrinkage: float) -> jax.Array:
  """(1 - shrinkage) cov + shrinkage * (trace(cov) / D) I."""
  d = cov_DxD.shape[-1]
  target = jnp.trace(cov_DxD) / d
  return (1.0 - shrinkage) * cov_DxD + shrinkage * target * jnp.eye(d, dtype=cov_DxD.dtype)


def symmetric(a_DxD: jax.Array) -> jax.Array:
  """The symmetric part, so that float32 round-off does not upset the Cholesky factor."""
  return 0.5 * (a_DxD + jnp.swapaxes(a_DxD, -1, -2))
