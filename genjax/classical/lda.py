"""Linear discriminant analysis: Gaussian classes with one shared covariance (generative)."""

import functools

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular

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
  return discriminant_params(mean_CxD, chol_DxD, bayes_rule.log_prior(count_C, priors))


def discriminant_params(mean_CxD: jax.Array, chol_DxD: jax.Array,
                        log_prior_C: jax.Array) -> dict:
  """The params `finalize` returns, from means [C, D], the shared covariance's Cholesky factor
  [D, D] and log priors [C]: those three and the linear discriminant's weights and biases."""
  weight_CxD = cho_solve((chol_DxD, True), mean_CxD.T).T
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


def hybrid_start(x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
                 priors: jax.Array | None = None,
                 shrinkage: float = 1e-3) -> tuple[dict, dict, dict, jax.Array]:
  """The closed-form fit as genjax.classical.hybrid starts from it.

  Returns (params, u, const, x_NxD): the closed form's params; its unconstrained form u,
  measured from the closed form's Cholesky factor L0: {"whitened_mean_CxD": L0^-1 mu_c,
  "chol_factor_DxD": M, lower triangular with its diagonal as logs}, the covariance's factor
  being L = L0 M (zeros at the closed form; the Hessian of the objective is then about n_c / N
  in the means and O(1) in M, where in the means themselves it is n_c / N Sigma^-1); the
  constants `hybrid_terms` reads; the features (x itself).

  The shrinkage s is a prior (see `hybrid_terms`) of weight a = s N / (1 - s), so s < 1.
  """
  if not 0.0 <= shrinkage < 1.0:
    raise ValueError(f"lda's shrinkage (model.hp.shrinkage) must be in [0, 1) for a "
                     f"joint_weight below 1, got {shrinkage}")
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  d = x_NxD.shape[1]
  stats = update_stats(init_stats(d, num_classes), x_NxD, y_N)
  params = finalize(stats, priors, shrinkage=shrinkage)
  n = jnp.sum(stats["count_C"])
  scatter_DxD = gda.symmetric(stats["scatter_DxD"])
  inv0_DxD = solve_triangular(params["chol_DxD"], jnp.eye(d, dtype=jnp.float32), lower=True)
  const = {**stats, "chol0_DxD": params["chol_DxD"], "inv0_DxD": inv0_DxD,
           "whitened_scatter_DxD": inv0_DxD @ scatter_DxD @ inv0_DxD.T,
           "whitened_class_mean_DxC": inv0_DxD @ stats["mean_CxD"].T,
           "tau": jnp.trace(scatter_DxD) / (n * d),
           "prior_weight": shrinkage * n / (1.0 - shrinkage)}
  u = {"whitened_mean_CxD": const["whitened_class_mean_DxC"].T,
       "chol_factor_DxD": jnp.zeros((d, d), jnp.float32)}
  return params, u, const, x_NxD


def hybrid_terms(u: dict, const: dict, log_prior_C: jax.Array) -> tuple[dict, jax.Array,
                                                                        jax.Array]:
  """(params, the sum over the training rows of log P(x | y), the log prior) at u.

  The prior is the inverse-Wishart-like -(a / 2) (log |Sigma| + tau tr(Sigma^-1)), with
  tau = trace(S) / D of the within-class covariance S and a = s N / (1 - s): with the
  likelihood, -(1 / 2) (N log |Sigma| + N tr(Sigma^-1 S)) at the class means, its MAP is
  (N S + a tau I) / (N + a) = (1 - s) S + s tau I, the closed form's shrunk covariance.
  """
  d = u["chol_factor_DxD"].shape[0]
  raw_DxD = u["chol_factor_DxD"]
  m_DxD = jnp.tril(raw_DxD, -1) + jnp.diag(jnp.exp(jnp.diag(raw_DxD)))
  minv_DxD = solve_triangular(m_DxD, jnp.eye(d, dtype=raw_DxD.dtype), lower=True)
  count_C = const["count_C"]
  n = jnp.sum(count_C)
  log_det = 2.0 * (jnp.sum(jnp.log(jnp.diag(const["chol0_DxD"]))) + jnp.trace(raw_DxD))
  # sum_n (x_n - mu_y)' Sigma^-1 (x_n - mu_y): the within-class scatter and each class mean's
  # shift, both whitened by L0 so that only M^-1 is left to apply.
  shift_DxC = minv_DxD @ (const["whitened_class_mean_DxC"] - u["whitened_mean_CxD"].T)
  quad = (jnp.sum(minv_DxD * (minv_DxD @ const["whitened_scatter_DxD"]))
          + jnp.sum(count_C * jnp.sum(jnp.square(shift_DxC), 0)))
  joint = -0.5 * (n * log_det + quad + n * d * jnp.log(2.0 * jnp.pi))
  trace_precision = jnp.sum(jnp.square(minv_DxD @ const["inv0_DxD"]))
  log_prior = -0.5 * const["prior_weight"] * (log_det + const["tau"] * trace_precision)
  chol_DxD = const["chol0_DxD"] @ m_DxD
  mean_CxD = u["whitened_mean_CxD"] @ const["chol0_DxD"].T
  return discriminant_params(mean_CxD, chol_DxD, log_prior_C), joint, log_prior


def hybrid_linear(params: dict) -> tuple[jax.Array, jax.Array]:
  """(w_DxC, b_C) with log P(x, y) = x w + b up to a term in x only."""
  return params["weight_CxD"].T, params["bias_C"]


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw x [N, D] ~ N(mu_y, Sigma) for the given classes y [N]."""
  z_NxD = jax.random.normal(key, (y_N.shape[0], params["chol_DxD"].shape[0]))
  return params["mean_CxD"][y_N] + z_NxD @ params["chol_DxD"].T
