"""One model, two objectives: naive Bayes and LDA fitted to a blend of log p(x, y) and log p(y | x).

For a generative classifier of genjax.classical (`MODELS`: Bernoulli and Gaussian naive Bayes,
LDA) and a joint weight lambda in [0, 1], `fit` maximises the mean over the training rows of

  lambda log p(x, y) + (1 - lambda) log p(y | x)

plus log prior / N, the convex blend of Bouchard & Triggs (2004) (Bishop & Lasserre 2007):
lambda = 1 is the generative model, lambda = 0 the same parameters trained discriminatively.
The prior is the model's smoothing read as one (Lidstone alpha, variance smoothing, covariance
shrinkage; each module's `hybrid_terms` says which), at full weight for every lambda, so that
lambda = 1's optimum is the closed form and lambda = 0 stays finite on separable data. Given
class `priors` stay fixed; otherwise the priors are a softmax of free logits.

lambda = 1 returns the module's closed-form fit itself. Below 1, full-batch L-BFGS
(genjax.classical.logistic.minimize_lbfgs) runs on the unconstrained parameters from the closed
form, and the result maps back to the params the module's log_proba, predict and sample read.
log p(x, y) summed over the rows comes from the sufficient statistics; log p(y | x) from scores
linear in features of x (logistic.linear_loss), one matrix product per evaluation.

Each model module provides the hooks: `hybrid_start(x, y, num_classes, priors, **hp) -> (params,
u, const, phi)` (the closed form, its unconstrained form, constants, features), `hybrid_terms(u,
const, log_prior_C) -> (params, sum of log p(x | y), log prior)` and `hybrid_linear(params) ->
(w, b)` with log p(x, y) = phi w + b up to a term in x only.
"""

import functools
import importlib
import math
import numbers

import jax
import jax.numpy as jnp

from genjax import studies
from genjax.classical import logistic

MODELS = {"bernoulli_nb": "genjax.classical.bernoulli_nb",
          "gaussian_nb": "genjax.classical.gaussian_nb",
          "lda": "genjax.classical.lda"}
# The L-BFGS settings below lambda = 1: an iteration cap and the gradient norm (of the
# objective, a mean over rows, in the unconstrained parameters) at which it stops. On MNIST
# none of the three converges within the cap (an iteration is 0.3-1.5 s on 2 busy cores), so
# the cap keeps each fit to a few minutes: the configs' docstrings give what it reaches.
DEFAULT_MAX_ITER = 200
DEFAULT_TOL = 1e-5


def check_joint_weight(name: str, joint_weight) -> float:
  """`joint_weight` as a float, or a one-line ValueError: a model without a joint likelihood
  (not in MODELS), or a weight that is not a number in [0, 1]."""
  if name not in MODELS:
    raise ValueError(f"model.joint_weight: {name!r} has no joint likelihood p(x, y) to blend; "
                     f"it applies to {', '.join(MODELS)}")
  if isinstance(joint_weight, bool):  # float(True) would pass as 1
    raise ValueError(f"model.joint_weight: joint_weight must be a number in [0, 1], got "
                     f"{joint_weight!r}")
  return studies.check_joint_weight(joint_weight)


def check_max_iter(max_iter) -> int:
  """`max_iter` as an int, or a one-line ValueError unless it is a positive integer."""
  if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
    raise ValueError(f"model.max_iter must be a positive integer, got {max_iter!r}")
  return int(max_iter)


def module(name: str):
  """The core module of model `name` (one of MODELS)."""
  if name not in MODELS:
    raise ValueError(f"no blended objective for model {name!r}; expected one of {tuple(MODELS)}")
  return importlib.import_module(MODELS[name])


def start(name: str, x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
          priors: jax.Array | None = None, **hp) -> tuple[dict, dict, dict, jax.Array]:
  """(params0, u0, const, phi_NxF): the closed-form fit, its unconstrained form (with
  "prior_logit_C" unless `priors` are given), the constants of the objective and the
  features its scores are linear in."""
  params0, u0, const, phi_NxF = module(name).hybrid_start(
      x_NxD, jnp.asarray(y_N, jnp.int32), num_classes, priors, **hp)
  if priors is None:
    u0 = {**u0, "prior_logit_C": params0["log_prior_C"]}
  else:
    const = {**const, "log_prior_C": params0["log_prior_C"]}
  return params0, u0, const, phi_NxF


def terms(name: str, u: dict, const: dict, phi_NxF: jax.Array, y_N: jax.Array) -> dict:
  """The objective's parts at unconstrained u: {"params" (the module's), "joint": mean over
  the rows of log p(x, y), "conditional": mean of log p(y | x), "log_prior"} (log prior not
  divided by N)."""
  log_prior_C = (jax.nn.log_softmax(u["prior_logit_C"]) if "prior_logit_C" in u
                 else const["log_prior_C"])
  core = module(name)
  params, joint_x, log_prior = core.hybrid_terms(u, const, log_prior_C)
  n = phi_NxF.shape[0]
  joint = (joint_x + const["count_C"] @ log_prior_C) / n
  w_FxC, b_C = core.hybrid_linear(params)
  conditional = -logistic.linear_loss(logistic.cross_entropy, phi_NxF, w_FxC, b_C, y_N)
  return {"params": params, "joint": joint, "conditional": conditional, "log_prior": log_prior}


def objective(name: str, u: dict, const: dict, phi_NxF: jax.Array, y_N: jax.Array,
              joint_weight: jax.Array) -> jax.Array:
  """-(lambda mean log p(x, y) + (1 - lambda) mean log p(y | x) + log prior / N), the scalar
  L-BFGS minimises."""
  t = terms(name, u, const, phi_NxF, y_N)
  blend = joint_weight * t["joint"] + (1.0 - joint_weight) * t["conditional"]
  return -(blend + t["log_prior"] / phi_NxF.shape[0])


@functools.partial(jax.jit, static_argnames=("name", "num_classes", "max_iter", "memory_size",
                                             "hp"))
def _fit_lbfgs(name, x_NxD, y_N, num_classes, priors, joint_weight, tol, u_start, *, max_iter,
               memory_size, hp):
  _, u0, const, phi_NxF = start(name, x_NxD, y_N, num_classes, priors, **dict(hp))
  y_N = jnp.asarray(y_N, jnp.int32)
  fun = lambda u: objective(name, u, const, phi_NxF, y_N, joint_weight)
  u, info = logistic.minimize_lbfgs(fun, u0 if u_start is None else u_start, max_iter=max_iter,
                                    tol=tol, memory_size=memory_size)
  return {**terms(name, u, const, phi_NxF, y_N)["params"], **info}


def fit_lbfgs(name: str, x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
              priors: jax.Array | None = None, *, joint_weight: float = 1.0,
              max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, memory_size: int = 10,
              u_start: dict | None = None, **hp) -> dict:
  """The blended objective's optimum by L-BFGS for any lambda, 1 included (a check on the
  closed form), from `u_start` (unconstrained params as `start` gives them) or else the closed
  form. `hp` are the module's hyper-parameters. Returns the module's params plus the solver's
  {"num_iterations", "grad_norm", "loss", "num_evaluations"}.

  One program for every lambda and tol (traced) per model, shape and hyper-parameters.
  """
  return _fit_lbfgs(name, x_NxD, y_N, num_classes, priors, jnp.float32(joint_weight),
                    jnp.float32(tol), u_start, max_iter=max_iter, memory_size=memory_size,
                    hp=tuple(sorted(hp.items())))


def fit(name: str, x_NxD: jax.Array, y_N: jax.Array, num_classes: int,
        priors: jax.Array | None = None, *, joint_weight: float = 1.0,
        max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, **hp) -> dict:
  """Model `name` fitted on rows x [N, D], labels y [N] to the blend of weight `joint_weight`:
  at 1 the module's closed-form `fit` (its very params), below 1 `fit_lbfgs` from there.

  Raises ValueError (before anything compiles) for a model not in MODELS, a weight outside
  [0, 1] or a max_iter that is not a positive integer.
  """
  joint_weight = check_joint_weight(name, joint_weight)
  max_iter = check_max_iter(max_iter)
  if joint_weight == 1.0:
    return module(name).fit(x_NxD, y_N, num_classes, priors, **hp)
  if not (isinstance(tol, numbers.Real) and math.isfinite(tol) and tol >= 0):
    raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
  return fit_lbfgs(name, x_NxD, y_N, num_classes, priors, joint_weight=joint_weight,
                   max_iter=max_iter, tol=tol, **hp)
