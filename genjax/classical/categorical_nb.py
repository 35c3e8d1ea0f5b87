"""Categorical naive Bayes: each feature an integer category 0..K-1 per class (Lidstone)."""

import functools

import jax
import jax.numpy as jnp

from genjax.classical import bayes_rule
from genjax.classical import naive_bayes as nb

# num_categories: K, the same for every feature (a feature with fewer simply never shows the
# higher ones); None in `fit` reads it off the data as max + 1.
HYPERPARAMETERS = {"alpha": 1.0, "num_categories": None, "priors": None}


def init_stats(num_features: int, num_classes: int, num_categories: int) -> dict:
  """Empty statistics: class counts [C] and category counts [C, D, K]."""
  return {"count_C": jnp.zeros(num_classes, jnp.float32),
          "category_count_CxDxK": jnp.zeros((num_classes, num_features, num_categories),
                                            jnp.float32)}


def _update(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of integer rows x [N, D] (values in 0..K-1) with labels y [N]."""
  c, d, k = stats["category_count_CxDxK"].shape
  x_NxD = jnp.asarray(x_NxD).astype(jnp.int32)
  # One scatter-add of flat (class, feature, category) indices: no [N, D, K] one-hot.
  flat_NxD = (y_N[:, None] * d + jnp.arange(d)) * k + x_NxD
  counts = jnp.zeros(c * d * k, jnp.float32).at[flat_NxD.ravel()].add(1.0)
  return {"count_C": stats["count_C"] + nb.one_hot(y_N, c).sum(0),
          "category_count_CxDxK": stats["category_count_CxDxK"] + counts.reshape(c, d, k)}


@jax.jit
def update_stats(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch of integer rows x [N, D] (values in 0..K-1) with labels y [N]."""
  return nb.scan_rows(_update, stats, x_NxD, y_N)


@functools.partial(jax.jit, static_argnames=("alpha",))
def finalize(stats: dict, priors: jax.Array | None = None, alpha: float = 1.0) -> dict:
  """Parameters: log P(x_d = k | c) [C, D, K] and log priors [C]."""
  smoothed = stats["category_count_CxDxK"] + alpha
  return {"log_p_CxDxK": jnp.log(smoothed) - jnp.log(smoothed.sum(-1, keepdims=True)),
          "log_prior_C": bayes_rule.log_prior(stats["count_C"], priors)}


def fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, priors: jax.Array | None = None,
        alpha: float = 1.0, num_categories: int | None = None) -> dict:
  """Closed-form fit on integer rows x [N, D] and labels y [N] in 0..num_classes-1."""
  if num_categories is None:
    num_categories = int(jnp.max(x_NxD)) + 1
  return _fit(x_NxD, y_N, num_classes, priors, alpha=alpha, num_categories=num_categories)


_fit = bayes_rule.compiled_fit(init_stats, update_stats, finalize, HYPERPARAMETERS,
                               init_keywords=("num_categories",))


@jax.jit
def joint_log_likelihood(params: dict, x_NxD: jax.Array) -> jax.Array:
  """log P(x, y) [N, C]: each row's categories looked up in every class's table."""
  log_p_CxDxK = params["log_p_CxDxK"]
  d, k = log_p_CxDxK.shape[1:]
  # Categories never seen in training (>= K) get no evidence from that feature.
  x_NxD = jnp.asarray(x_NxD).astype(jnp.int32)
  seen_NxD = x_NxD < k
  idx_NxD = jnp.arange(d) * k + jnp.clip(x_NxD, 0, k - 1)
  log_p_CxNxD = log_p_CxDxK.reshape(log_p_CxDxK.shape[0], d * k)[:, idx_NxD]
  return jnp.sum(jnp.where(seen_NxD, log_p_CxNxD, 0.0), -1).T + params["log_prior_C"]


log_proba, predict = bayes_rule.posterior(joint_log_likelihood)


@jax.jit
def sample(params: dict, key: jax.Array, y_N: jax.Array) -> jax.Array:
  """Draw integer categories x [N, D] (int32) from the fitted P(x | y) for classes y [N]."""
  return jax.random.categorical(key, params["log_p_CxDxK"][y_N]).astype(jnp.int32)
