"""Multinomial naive Bayes: count features drawn from one multinomial per class (Lidstone)."""

import functools

import jax
import jax.numpy as jnp

from genjax.classical import bayes_rule
from genjax.classical import naive_bayes as nb

HYPERPARAMETERS = {"alpha": 1.0, "priors": None}


def init_stats(num_features: int, num_classes: int) -> dict:
  """Empty statistics: class counts [C] and per-class feature totals [C, D]."""
  return {"count_C": jnp.zeros(num_classes, jnp.float32),
          "feature_count_CxD": jnp.zeros((num_classes, num_features), jnp.float32)}


def _update(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of non-negative counts x [N, D] with labels y [N] into the statistics."""
  onehot_NxC = nb.one_hot(y_N, stats["count_C"].shape[0])
  return {"count_C": stats["count_C"] + onehot_NxC.sum(0),
          "feature_count_CxD": stats["feature_count_CxD"]
          + onehot_NxC.T @ jnp.asarray(x_NxD, jnp.float32)}


@jax.jit
def update_stats(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of non-negative counts x [N, D] with labels y [N] into the statistics."""
  return nb.scan_rows(_update, stats, x_NxD, y_N)


@functools.partial(jax.jit, static_argnames=("alpha",))
def finalize(stats: dict, priors: jax.Array | None = None, alpha: float = 1.0) -> dict:
  """Parameters: log feature probabilities [C, D], log priors [C], mean row totals [C]."""
  count_C, fc_CxD = stats["count_C"], stats["feature_count_CxD"]
  smoothed_CxD = fc_CxD + alpha
  return {"log_p_CxD": jnp.log(smoothed_CxD) - jnp.log(smoothed_CxD.sum(-1, keepdims=True)),
          "log_prior_C": bayes_rule.log_prior(count_C, priors),
          # Not part of the classifier: the number of trials `sample` draws per class.
          "mean_total_C": fc_CxD.sum(-1) / jnp.maximum(count_C, 1.0)}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        alpha: float = 1.0) -> dict:
  """Closed-form fit on count rows x [N, D] and labels y [N] in 0..num_classes-1."""
  return _fit(x_NxD, y_N, num_classes, priors, alpha=alpha)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS)


@jax.jit
def joint_log_likelihood(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C] up to the multinomial coefficient, which is the same for every class."""
  return jnp.asarray(x_NxD, jnp.float32) @ params["log_p_CxD"].T + params["log_prior_C"]


log_proba, predict = bayes_rule.posterior(joint_log_likelihood)


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw counts x [N, D] from the fitted P(x | y): a multinomial per row with the class's
  mean row total (rounded) as its number of trials."""
  n_N = jnp.round(params["mean_total_C"][y_N])
  return jax.random.multinomial(key, n_N, jnp.exp(params["log_p_CxD"][y_N]))
