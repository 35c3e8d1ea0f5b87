"""Bernoulli naive Bayes: independent binary features per class, with Lidstone smoothing."""

import functools

import jax
import jax.numpy as jnp

from genjax.classical import bayes_rule
from genjax.classical import naive_bayes as nb

# binarize: features above it count as 1 (None: the features are already 0/1).
HYPERPARAMETERS = {"alpha": 1.0, "binarize": 0.0, "priors": None}


def _threshold(binarize: float | None) -> jax.Array:
  # NaN stands for "no thresholding" so that the threshold can live in the array pytree.
  return jnp.asarray(jnp.nan if binarize is None else binarize, jnp.float32)


def _binary(x_NxD: jax.Array, threshold: jax.Array) -> jax.Array:
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  return jnp.where(jnp.isnan(threshold), x_NxD, (x_NxD > threshold).astype(jnp.float32))


def init_stats(num_features: int, num_classes: int, binarize: float | None = 0.0) -> dict:
  """Empty statistics: class counts [C], per-class counts of ones [C, D], the threshold."""
  return {"count_C": jnp.zeros(num_classes, jnp.float32),
          "feature_count_CxD": jnp.zeros((num_classes, num_features), jnp.float32),
          "threshold": _threshold(binarize)}


def _update(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of rows x [N, D] with labels y [N] into the statistics."""
  onehot_NxC = nb.one_hot(y_N, stats["count_C"].shape[0])
  x_NxD = _binary(x_NxD, stats["threshold"])
  return {**stats, "count_C": stats["count_C"] + onehot_NxC.sum(0),
          "feature_count_CxD": stats["feature_count_CxD"] + onehot_NxC.T @ x_NxD}


@jax.jit
def update_stats(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of rows x [N, D] with labels y [N] into the statistics."""
  return nb.scan_rows(_update, stats, x_NxD, y_N)


@functools.partial(jax.jit, static_argnames=("alpha",))
def finalize(stats: dict, priors: jax.Array | None = None, alpha: float = 1.0) -> dict:
  """Parameters: log P(x_d = 1 | c) and log P(x_d = 0 | c) [C, D], log priors [C]."""
  count_C, fc_CxD = stats["count_C"], stats["feature_count_CxD"]
  log_denom_Cx1 = jnp.log(count_C + 2.0 * alpha)[:, None]
  return {"log_p_CxD": jnp.log(fc_CxD + alpha) - log_denom_Cx1,
          "log_q_CxD": jnp.log(count_C[:, None] - fc_CxD + alpha) - log_denom_Cx1,
          "log_prior_C": bayes_rule.log_prior(count_C, priors), "threshold": stats["threshold"]}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        alpha: float = 1.0, binarize: float | None = 0.0) -> dict:
  """Closed-form fit on rows x [N, D] and labels y [N] in 0..num_classes-1."""
  return _fit(x_NxD, y_N, num_classes, priors, alpha=alpha, binarize=binarize)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS,
                               init_keywords=("binarize",))


@jax.jit
def joint_log_likelihood(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C]: one matmul, x log p + (1 - x) log q summed over features."""
  x_NxD = _binary(x_NxD, params["threshold"])
  log_p_CxD, log_q_CxD = params["log_p_CxD"], params["log_q_CxD"]
  return x_NxD @ (log_p_CxD - log_q_CxD).T + log_q_CxD.sum(-1) + params["log_prior_C"]


log_proba, predict = bayes_rule.posterior(joint_log_likelihood)


def hybrid_start(x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
                 priors: jax.Array | None = None, alpha: float = 1.0,
                 binarize: float | None = 0.0) -> tuple[dict, dict, dict, jax.Array]:
  """The closed-form fit as genjax.classical.hybrid starts from it.

  Returns (params, u, const, phi_NxD): the closed form's params; its unconstrained form u,
  {"logit_CxD": log P(x_d = 1 | c) - log P(x_d = 0 | c)}; the constants `hybrid_terms` reads
  (the statistics and alpha); the binary features that `hybrid_linear`'s scores are linear in.
  """
  stats = update_stats(init_stats(x_NxD.shape[1], num_classes, binarize), x_NxD, y_N)
  params = finalize(stats, priors, alpha=alpha)
  u = {"logit_CxD": params["log_p_CxD"] - params["log_q_CxD"]}
  return params, u, {**stats, "alpha": jnp.float32(alpha)}, _binary(x_NxD, stats["threshold"])


def hybrid_terms(u: dict, const: dict, log_prior_C: jax.Array) -> tuple[dict, jax.Array,
                                                                        jax.Array]:
  """(params, the sum over the training rows of log P(x | y), the log prior) at u.

  The prior is Beta(alpha + 1, alpha + 1) on every P(x_d = 1 | c), as a density in that
  probability and without its normaliser: alpha (log p + log(1 - p)), whose MAP together with
  the likelihood is the closed form's (count + alpha) / (n + 2 alpha).
  """
  log_p_CxD = jax.nn.log_sigmoid(u["logit_CxD"])
  log_q_CxD = jax.nn.log_sigmoid(-u["logit_CxD"])
  fc_CxD, count_C = const["feature_count_CxD"], const["count_C"]
  joint = jnp.sum(fc_CxD * log_p_CxD + (count_C[:, None] - fc_CxD) * log_q_CxD)
  log_prior = const["alpha"] * jnp.sum(log_p_CxD + log_q_CxD)
  params = {"log_p_CxD": log_p_CxD, "log_q_CxD": log_q_CxD, "log_prior_C": log_prior_C,
            "threshold": const["threshold"]}
  return params, joint, log_prior


def hybrid_linear(params: dict) -> tuple[jax.Array, jax.Array]:
  """(w_DxC, b_C) with log P(x, y) = phi w + b on `hybrid_start`'s binary features phi."""
  log_p_CxD, log_q_CxD = params["log_p_CxD"], params["log_q_CxD"]
  return (log_p_CxD - log_q_CxD).T, log_q_CxD.sum(-1) + params["log_prior_C"]


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw binary x [N, D] (float32 0/1) from the fitted P(x | y) for classes y [N]."""
  p_NxD = jnp.exp(params["log_p_CxD"][y_N])
  return jax.random.bernoulli(key, p_NxD).astype(jnp.float32)
