"""Gaussian naive Bayes: independent normal features per class, with variance smoothing."""

import functools

import jax
import jax.numpy as jnp

from genjax.classical import bayes_rule
from genjax.classical import naive_bayes as nb

# var_smoothing: scikit-learn's, a share of the largest feature variance added to every
# class variance (keeps constant features, such as MNIST's border pixels, finite).
HYPERPARAMETERS = {"var_smoothing": 1e-9, "priors": None}


def init_stats(num_features: int, num_classes: int) -> dict:
  """Empty sufficient statistics: per-class counts, means and centred sums of squares."""
  return nb.moments_init(num_features, num_classes)


@jax.jit
def update_stats(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of rows x [N, D] with labels y [N] into the statistics."""
  return nb.scan_rows(nb.moments_update, stats, jnp.asarray(x_NxD, jnp.float32), y_N)


@functools.partial(jax.jit, static_argnames=("var_smoothing",))
def finalize(stats: dict, priors: jax.Array | None = None, var_smoothing: float = 1e-9) -> dict:
  """Parameters from statistics: means [C, D], smoothed variances [C, D], log priors [C].

  The smoothing is var_smoothing times the largest variance of any feature over all rows,
  as in scikit-learn's GaussianNB (there from the first batch; here from all of them).
  """
  count_C, mean_CxD, m2_CxD = stats["count_C"], stats["mean_CxD"], stats["m2_CxD"]
  epsilon = var_smoothing * jnp.max(nb.pooled_variance(count_C, mean_CxD, m2_CxD))
  var_CxD = m2_CxD / jnp.maximum(count_C, 1.0)[:, None] + epsilon
  return {"mean_CxD": mean_CxD, "var_CxD": var_CxD,
          "log_prior_C": bayes_rule.log_prior(count_C, priors)}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        var_smoothing: float = 1e-9) -> dict:
  """Closed-form fit on rows x [N, D] and labels y [N] in 0..num_classes-1."""
  return _fit(x_NxD, y_N, num_classes, priors, var_smoothing=var_smoothing)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS)


@jax.jit
def joint_log_likelihood(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C] for every class."""
  mean_CxD, var_CxD = params["mean_CxD"], params["var_CxD"]
  # The direct (x - mean)^2 / var rather than an expanded matmul: smoothed variances of
  # constant features are ~1e-10, and the expansion would cancel terms of size 1e10.
  sq_NxC = jnp.sum(jnp.square(x_NxD[:, None, :] - mean_CxD) / var_CxD, axis=-1)
  log_norm_C = -0.5 * jnp.sum(jnp.log(2.0 * jnp.pi * var_CxD), axis=-1)
  return params["log_prior_C"] + log_norm_C - 0.5 * sq_NxC


log_proba, predict = bayes_rule.posterior(joint_log_likelihood)


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw x [N, D] from the fitted P(x | y) for the given classes y [N]."""
  mean_NxD, var_NxD = params["mean_CxD"][y_N], params["var_CxD"][y_N]
  return mean_NxD + jnp.sqrt(var_NxD) * jax.random.normal(key, mean_NxD.shape)
