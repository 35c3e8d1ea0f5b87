"""Linear discriminant analysis: Gaussian classes with one shared covariance (generative)."""

import functools

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from genjax.classical import bayes_rule, gda

# shrinkage towards (trace / D) I, see genjax.classical.gda; the default keeps MNIST's
# constant pixels from making the covariance singular.
HYPERPARAMETERS = {"shrinkage": 1e-3, "priors": None}

update_stats = gda.update_stats


def init_stats(num_features: int, num_classes: int) -> dict:
  """Empty statistics: counts [C], means [C, D], the pooled within-class scatter [D, D]."""
  return gda.init_stats(num_features, num_classes, shared=True)


@functools.partial(jax.jit, static_argnames=("shrinkage",))
def finalize(stats: dict, priors: jax.Array | None = None, shrinkage: float = 1e-3) -> dict:
  """Parameters from statistics.

  Returns means [C, D], the Cholesky factor of the shared covariance [D, D], log priors [C],
  and the linear discriminant: weights Sigma^-1 mu_c [C, D] and biases
  -mu_c' Sigma^-1 mu_c / 2 + log prior_c [C] (log P(x, c) = w_c' x + b_c + a term in x only).
  """
  count_C, mean_CxD = stats["count_C"], stats["mean_CxD"]
  cov_DxD = gda.symmetric(stats["scatter_DxD"] / jnp.sum(count_C))
  chol_DxD = jnp.linalg.cholesky(gda.shrink(cov_DxD, shrinkage))
  weight_CxD = cho_solve((chol_DxD, True), mean_CxD.T).T
  log_prior_C = bayes_rule.log_prior(count_C, priors)
  bias_C = -0.5 * jnp.sum(weight_CxD * mean_CxD, -1) + log_prior_C
  return {"mean_CxD": mean_CxD, "chol_DxD": chol_DxD, "log_prior_C": log_prior_C,
          "weight_CxD": weight_CxD, "bias_C": bias_C}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        shrinkage: float = 1e-3) -> dict:
  """Closed-form fit on rows x [N, D] and labels y [N] in 0..num_classes-1."""
  return _fit(x_NxD, y_N, num_classes, priors, shrinkage=shrinkage)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS)


def linear_discriminant(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C] up to a term in x only: the quadratic term x' Sigma^-1 x is the same
  for every class, which leaves one matmul."""
  return x_NxD @ params["weight_CxD"].T + params["bias_C"]


log_proba, predict = bayes_rule.posterior(linear_discriminant)


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw x [N, D] ~ N(mu_y, Sigma) for the given classes y [N]."""
  z_NxD = jax.random.normal(key, (y_N.shape[0], params["chol_DxD"].shape[0]))
  return params["mean_CxD"][y_N] + z_NxD @ params["chol_DxD"].T
