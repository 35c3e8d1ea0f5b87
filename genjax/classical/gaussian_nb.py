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
  epsilon = smoothing(stats, var_smoothing)
  var_CxD = m2_CxD / jnp.maximum(count_C, 1.0)[:, None] + epsilon
  return {"mean_CxD": mean_CxD, "var_CxD": var_CxD,
          "log_prior_C": bayes_rule.log_prior(count_C, priors)}


def smoothing(stats: dict, var_smoothing: float) -> jax.Array:
  """The variance epsilon added to every class variance: var_smoothing times the largest
  variance of any feature over all rows."""
  return var_smoothing * jnp.max(nb.pooled_variance(stats["count_C"], stats["mean_CxD"],
                                                    stats["m2_CxD"]))


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


def hybrid_start(x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
                 priors: jax.Array | None = None,
                 var_smoothing: float = 1e-9) -> tuple[dict, dict, dict, jax.Array]:
  """The closed-form fit as genjax.classical.hybrid starts from it.

  Returns (params, u, const, phi_NxF): the closed form's params; its unconstrained form u,
  {"scaled_mean_CxD": means in units of the closed form's standard deviations, "log_var_CxD"}
  (the scale makes the Hessian in the means about n_c / N, where in the means themselves it is
  n_c / (N var), 1e9 apart between MNIST's constant and varying pixels); the constants
  `hybrid_terms` reads; the features [x, x^2], shape [N, 2D], that `hybrid_linear`'s scores are
  linear in.
  """
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  stats = update_stats(init_stats(x_NxD.shape[1], num_classes), x_NxD, y_N)
  params = finalize(stats, priors, var_smoothing=var_smoothing)
  sd_CxD = jnp.sqrt(params["var_CxD"])
  u = {"scaled_mean_CxD": params["mean_CxD"] / sd_CxD, "log_var_CxD": jnp.log(params["var_CxD"])}
  const = {**stats, "sd_CxD": sd_CxD, "epsilon": smoothing(stats, var_smoothing)}
  return params, u, const, jnp.concatenate([x_NxD, jnp.square(x_NxD)], axis=1)


def hybrid_terms(u: dict, const: dict, log_prior_C: jax.Array) -> tuple[dict, jax.Array,
                                                                        jax.Array]:
  """(params, the sum over the training rows of log P(x | y), the log prior) at u.

  The prior adds -n_c epsilon / (2 var) for every class and feature (an inverse-gamma-like
  prior on the variance without its normaliser): with the likelihood its MAP is the closed
  form's M2 / n_c + epsilon.
  """
  count_Cx1 = const["count_C"][:, None]
  mean_CxD = u["scaled_mean_CxD"] * const["sd_CxD"]
  var_CxD = jnp.exp(u["log_var_CxD"])
  # sum over a class's rows of (x - mean)^2: the centred squares plus the shift of the mean.
  sq_CxD = const["m2_CxD"] + count_Cx1 * jnp.square(const["mean_CxD"] - mean_CxD)
  joint = -0.5 * jnp.sum(count_Cx1 * jnp.log(2.0 * jnp.pi * var_CxD) + sq_CxD / var_CxD)
  log_prior = -0.5 * const["epsilon"] * jnp.sum(count_Cx1 / var_CxD)
  return {"mean_CxD": mean_CxD, "var_CxD": var_CxD, "log_prior_C": log_prior_C}, joint, log_prior


def hybrid_linear(params: dict) -> tuple[jax.Array, jax.Array]:
  """(w_FxC, b_C) with log P(x, y) = [x, x^2] w + b (F = 2D).

  The expanded quadratic cancels where a variance is tiny and x and the mean both far from 0;
  on MNIST such variances are those of pixels constant at 0 in a class, where x = mean = 0 and
  nothing cancels (`joint_log_likelihood` keeps the direct form for evaluation).
  """
  precision_CxD = 1.0 / params["var_CxD"]
  mean_CxD = params["mean_CxD"]
  w_FxC = jnp.concatenate([mean_CxD * precision_CxD, -0.5 * precision_CxD], axis=1).T
  b_C = params["log_prior_C"] - 0.5 * jnp.sum(
      jnp.square(mean_CxD) * precision_CxD + jnp.log(2.0 * jnp.pi * params["var_CxD"]), axis=-1)
  return w_FxC, b_C


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw x [N, D] from the fitted P(x | y) for the given classes y [N]."""
  mean_NxD, var_NxD = params["mean_CxD"][y_N], params["var_CxD"][y_N]
  return mean_NxD + jnp.sqrt(var_NxD) * jax.random.normal(key, mean_NxD.shape)
