"""Quadratic discriminant analysis: Gaussian classes, each with its own (shrunk) covariance."""

import functools

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from genjax.classical import bayes_rule, gda

# shrinkage towards (trace / D) I per class, see genjax.classical.gda; ridge: then added to
# every class's diagonal (the same for all classes, as scikit-learn's reg_param adds it).
HYPERPARAMETERS = {"shrinkage": 1e-2, "ridge": 0.0, "priors": None}

update_stats = gda.update_stats


def init_stats(num_features: int, num_classes: int) -> dict:
  """Empty statistics: counts [C], means [C, D], per-class scatter matrices [C, D, D]."""
  return gda.init_stats(num_features, num_classes, shared=False)


@functools.partial(jax.jit, static_argnames=("shrinkage", "ridge"))
def finalize(stats: dict, priors: jax.Array | None = None, shrinkage: float = 1e-2,
             ridge: float = 0.0) -> dict:
  """Parameters: means [C, D], Cholesky factors L_c of the covariances [C, D, D], their
  inverses [C, D, D] (so the likelihood is a matmul), log-determinants [C], log priors [C]."""
  count_C = stats["count_C"]
  cov_CxDxD = gda.symmetric(stats["scatter_CxDxD"] / jnp.maximum(count_C, 1.0)[:, None, None])
  eye_DxD = jnp.eye(cov_CxDxD.shape[-1], dtype=jnp.float32)
  shrunk_CxDxD = jax.vmap(gda.shrink, (0, None))(cov_CxDxD, shrinkage) + ridge * eye_DxD
  chol_CxDxD = jnp.linalg.cholesky(shrunk_CxDxD)
  inv_chol_CxDxD = jax.vmap(lambda c: solve_triangular(c, eye_DxD, lower=True))(chol_CxDxD)
  log_det_C = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_CxDxD, axis1=-2, axis2=-1)), -1)
  return {"mean_CxD": stats["mean_CxD"], "chol_CxDxD": chol_CxDxD,
          "inv_chol_CxDxD": inv_chol_CxDxD, "log_det_C": log_det_C,
          "log_prior_C": bayes_rule.log_prior(count_C, priors)}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        shrinkage: float = 1e-2, ridge: float = 0.0) -> dict:
  """Closed-form fit on rows x [N, D] and labels y [N] in 0..num_classes-1."""
  return _fit(x_NxD, y_N, num_classes, priors, shrinkage=shrinkage, ridge=ridge)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS)


@jax.jit
def joint_log_likelihood(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C]: log N(x; mu_c, Sigma_c) + log prior_c."""
  d = x_NxD.shape[-1]

  def one_class(args):
    mean_D, inv_chol_DxD = args
    z_NxD = (x_NxD - mean_D) @ inv_chol_DxD.T
    return jnp.sum(jnp.square(z_NxD), -1)

  # One class at a time: [N, D] per step instead of an [N, C, D] intermediate.
  sq_CxN = jax.lax.map(one_class, (params["mean_CxD"], params["inv_chol_CxDxD"]))
  log_norm_C = -0.5 * (params["log_det_C"] + d * jnp.log(2.0 * jnp.pi))
  return -0.5 * sq_CxN.T + log_norm_C + params["log_prior_C"]


log_proba, predict = bayes_rule.posterior(joint_log_likelihood)


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw x [N, D] ~ N(mu_y, Sigma_y) for the given classes y [N]."""
  chol_NxDxD = params["chol_CxDxD"][y_N]
  z_NxD = jax.random.normal(key, (y_N.shape[0], chol_NxDxD.shape[-1]))
  return params["mean_CxD"][y_N] + jnp.einsum("nde,ne->nd", chol_NxDxD, z_NxD)
