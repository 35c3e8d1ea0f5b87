"""Bayes' rule for the generative classifiers (the naive Bayes variants, LDA and QDA).

Each such module keeps only what is its own: its sufficient statistics (`init_stats`,
`update_stats`), its `finalize` (statistics to parameters) and its joint log-likelihood
log P(x, y). What follows from those is built here:

- `compiled_fit`: the closed-form fit finalize(update_stats(init_stats(...), x, y)) as one
  compiled program;
- `posterior`: `log_proba` (log P(y | x), normalised over the classes) and `predict` (the
  most probable class) from the joint log-likelihood;
- `log_prior` and `normalise`, the prior and the normalisation of Bayes' rule.
"""

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp


def log_prior(count_C: jax.Array, priors: jax.Array | None) -> jax.Array:
  """Log class priors [C]: the class frequencies when `priors` is None, else log(priors)."""
  if priors is None:
    return jnp.log(count_C) - jnp.log(jnp.sum(count_C))
  priors_C = jnp.asarray(priors, jnp.float32)
  if priors_C.shape != count_C.shape:
    raise ValueError(f"priors has shape {priors_C.shape}, expected {count_C.shape}")
  return jnp.log(priors_C)


def normalise(jll_NxC: jax.Array) -> jax.Array:
  """Joint log-likelihoods log P(x, y) to log posteriors log P(y | x) (rows sum to 1)."""
  return jll_NxC - jax.nn.logsumexp(jll_NxC, axis=-1, keepdims=True)


def compiled_fit(init_stats: Callable, update_stats: Callable, finalize: Callable,
                 hyperparameters: Mapping, init_keywords: tuple[str, ...] = ()) -> Callable:
  """The jitted closed-form fit of a generative classifier,

    fit(x_NxD, y_N, num_classes, priors, **hyperparameters)
      = finalize(update_stats(init_stats(D, num_classes, **some), x_NxD, y_N), priors, **rest),

  where `some` are the hyper-parameters named in `init_keywords` and `rest` the others.
  `num_classes` and the hyper-parameters (the names of `hyperparameters`, the module's
  HYPERPARAMETERS, but for the array `priors`) are static: one program for each of their
  values. Pass the hyper-parameters by keyword.
  """
  static = tuple(name for name in hyperparameters if name != "priors")

  def fit(x_NxD, y_N, num_classes, priors, **hp):
    init_hp = {name: hp.pop(name) for name in init_keywords}
    stats = update_stats(init_stats(x_NxD.shape[1], num_classes, **init_hp), x_NxD, y_N)
    return finalize(stats, priors, **hp)

  return jax.jit(fit, static_argnums=2, static_argnames=static)


def posterior(joint_log_likelihood: Callable) -> tuple[Callable, Callable]:
  """The jitted (log_proba, predict) of a classifier whose log P(x, y) [N, C] (up to a term
  that is the same for every class) is `joint_log_likelihood(params, x_NxD)`."""

  @jax.jit
  def log_proba(params: dict, x_NxD: jax.Array) -> jax.Array:
    """Normalised log posteriors log P(y | x) [N, C] by Bayes' rule."""
    return normalise(joint_log_likelihood(params, x_NxD))

  @jax.jit
  def predict(params: dict, x_NxD: jax.Array) -> jax.Array:
    """The most probable class [N] (int32)."""
    return jnp.argmax(joint_log_likelihood(params, x_NxD), axis=-1).astype(jnp.int32)

  return log_proba, predict
