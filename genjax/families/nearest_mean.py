"""Nearest class mean: the smallest fit family, and the template for one.

A Gaussian class-conditional model with a shared identity covariance: log p(x, y) =
log pi_y - ||x - mu_y||^2 / 2 + const, so `log_proba` is Bayes' rule over those terms.
`fit` is one closed-form pass over the training split (per-class means and frequencies).
It works on any split with features `x` [N, D] (the UCI sets) or `image` (flattened).
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from genjax.data.rows import features, num_features

DEFAULT_EVALS = {"classification": {}}


def experiment_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config of the nearest class mean (genjax.config's idiom) on the dataset that `arg`
  names (`iris`, the default, or any genjax.data.splits reads), optionally followed by `,smoke`
  (the same fit: it takes seconds)."""
  from genjax import config as gconfig
  dataset, _ = gconfig.parse_dataset_arg(arg, default="iris")
  return gconfig.fit_config("nearest_mean", gconfig.dataset(dataset))


@struct.dataclass
class NearestMeanState:
  mean_CxD: jax.Array
  log_prior_C: jax.Array


def create_state(key: jax.Array, config: ml_collections.ConfigDict, train) -> NearestMeanState:
  """Zeros of the fitted shapes (the checkpoint's structure)."""
  del key, config
  d = num_features(train)
  return NearestMeanState(jnp.zeros((train.num_classes, d)), jnp.zeros(train.num_classes))


@jax.jit
def _fit(x_NxD: jax.Array, y_N: jax.Array, state: NearestMeanState) -> NearestMeanState:
  onehot_NxC = jax.nn.one_hot(y_N, state.log_prior_C.shape[0], dtype=jnp.float32)
  count_C = onehot_NxC.sum(0)
  return NearestMeanState(onehot_NxC.T @ x_NxD / jnp.maximum(count_C, 1.0)[:, None],
                          jnp.log(count_C / count_C.sum()))


def fit(state: NearestMeanState, train, key: jax.Array, log=None) -> NearestMeanState:
  """Class means and log frequencies of the training split."""
  del key, log
  batch = train.inputs()
  return _fit(features(batch), jnp.asarray(batch["label"]), state)


def log_proba(state: NearestMeanState, batch: dict) -> jax.Array:
  """log P(y | x) [B, C] by Bayes' rule."""
  x_BxD = features(batch)
  jll_BxC = state.log_prior_C - 0.5 * jnp.sum(
      jnp.square(x_BxD[:, None, :] - state.mean_CxD[None]), axis=-1)
  return jax.nn.log_softmax(jll_BxC, axis=-1)
