"""Linear and kernel (RBF through explicit features) support vector machines, multiclass.

The objective is the mean multiclass hinge loss plus `l2 / 2 * |W|^2` (bias unpenalised;
`l2 = 1 / (C * N)` matches scikit-learn's `LinearSVC(C=C)`):

- `multi_class="ovr"`: one-vs-rest, sum over classes of hinge(t_c s_c), t_c = +-1;
- `multi_class="crammer_singer"`: hinge(s_y - max_{c != y} s_c) (Crammer & Singer 2001);

with `loss="squared_hinge"` (max(0, 1 - m)^2, smooth: L-BFGS) or `loss="hinge"` (max(0, 1 - m),
non-smooth: solve it with `solver="adam"` or `"sgd"`; L-BFGS stops where its line search
stalls). `kernel="linear"` scores x W + b; `kernel="fourier"` and `kernel="nystroem"` score
phi(x) W + b with the RBF feature maps of genjax.classical.kernels (`gamma=0` means
scikit-learn's gamma="scale").

SVMs give scores, not probabilities. `log_proba` is `log_softmax(T * scores)` with one
temperature T > 0 fitted after training by minimising the training log-loss (a one-parameter
Platt-style calibration, Guo et al. 2017's temperature scaling on the training set, which is
overconfident where the training set is fitted more tightly than the test set).
"""

import functools
import inspect

import jax
import jax.numpy as jnp
from flax import struct

from genjax.classical import kernels, logistic

KERNELS = ("linear", "fourier", "nystroem")
MULTI_CLASS = ("ovr", "crammer_singer")
LOSSES = ("squared_hinge", "hinge")


@struct.dataclass
class SVMParams:
  """Weights w [F, C] and bias b [C] over the features, the feature map's parameters, the
  calibration temperature, and the solver's report; the kernel name is static."""

  w: jax.Array
  b: jax.Array
  features: dict
  temperature: jax.Array
  num_iterations: jax.Array
  loss: jax.Array
  grad_norm: jax.Array
  num_evaluations: jax.Array  # of the objective and its gradient
  kernel: str = struct.field(pytree_node=False, default="linear")


def _pre_features(kernel: str, features: dict, x_NxD: jax.Array) -> jax.Array:
  if kernel == "linear":
    return x_NxD
  if kernel == "fourier":
    return kernels.fourier_features(features, x_NxD)
  return kernels.nystroem_pre(features, x_NxD)


def _scores(kernel: str, features: dict, w: jax.Array, b: jax.Array,
            pre_NxF: jax.Array) -> jax.Array:
  # Nystroem: phi(x) W = k(x, L) (whiten W); the [m, m] x [m, C] product is the cheap one.
  if kernel == "nystroem":
    w = features["whiten"] @ w
  return pre_NxF @ w + b


def margin_losses(s_NxC: jax.Array, y_N: jax.Array, multi_class: str, loss: str) -> jax.Array:
  """Per-row multiclass hinge losses of scores s_NxC, [N] (see the module docstring)."""
  onehot = jax.nn.one_hot(y_N, s_NxC.shape[1], dtype=bool)
  if multi_class == "ovr":
    m_NxC = jnp.where(onehot, s_NxC, -s_NxC)
  elif multi_class == "crammer_singer":
    s_y = jnp.sum(jnp.where(onehot, s_NxC, 0.0), -1)
    m_NxC = (s_y - jnp.max(jnp.where(onehot, -jnp.inf, s_NxC), -1))[:, None]
  else:
    raise ValueError(f"unknown multi_class {multi_class!r}; expected one of {MULTI_CLASS}")
  h = jnp.maximum(1.0 - m_NxC, 0.0)
  if loss == "squared_hinge":
    h = h**2
  elif loss != "hinge":
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
  return jnp.sum(h, -1)


def mean_margin_loss(s_NxC: jax.Array, y_N: jax.Array, multi_class: str, loss: str) -> jax.Array:
  """The mean of `margin_losses` over the rows."""
  return jnp.mean(margin_losses(s_NxC, y_N, multi_class, loss))


def fit_temperature(s_NxC: jax.Array, y_N: jax.Array, iterations: int = 40) -> jax.Array:
  """The T > 0 minimising the mean log-loss of log_softmax(T s): the loss is convex in T, so
  its derivative E_p[s] - s_y is increasing and bisection on log T in [-7, 5] finds the root
  (T at most e^5: larger ones, reached on separable data, cost float32 logits their accuracy)."""
  s_y = jnp.take_along_axis(s_NxC, y_N[:, None], -1)[:, 0]

  def slope(log_t):
    p_NxC = jax.nn.softmax(jnp.exp(log_t) * s_NxC, -1)
    return jnp.mean(jnp.sum(p_NxC * s_NxC, -1) - s_y)

  def bisect(bounds, _):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    up = slope(mid) > 0
    return (jnp.where(up, lo, mid), jnp.where(up, mid, hi)), None

  (lo, hi), _ = jax.lax.scan(bisect, (jnp.float32(-7.0), jnp.float32(5.0)), None, iterations)
  return jnp.exp(0.5 * (lo + hi))


def _fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, *, l2: float = 1e-4,
         multi_class: str = "ovr", loss: str = "squared_hinge", kernel: str = "linear",
         num_features: int = 2000, gamma: float = 0.0, solver: str = "lbfgs",
         max_iter: int = 1000, tol: float = 1e-4, memory_size: int = 10,
         precondition: float = 0.5, penalize_bias: bool = False, learning_rate: float = 1e-2, batch_size: int = 256,
         num_epochs: int = 20, seed: int = 0) -> SVMParams:
  """Fit on features x_NxD and labels y_N in 0..num_classes-1; returns SVMParams.

  The linear kernel's L-BFGS runs preconditioned (genjax.classical.logistic.preconditioner)
  with the squared hinge's curvature 2 per active margin taken as `precondition` (a share of
  the rows stays active); `tol` bounds the norm of the gradient in the original W and b.
  `penalize_bias` adds l2 / 2 * |b|^2, the objective of liblinear (scikit-learn's LinearSVC),
  whose bias is the weight of a constant feature 1 (intercept_scaling=1).
  """
  if kernel not in KERNELS:
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  y_N = jnp.asarray(y_N, jnp.int32)
  key_features, key_batches = jax.random.split(jax.random.key(seed))
  gamma = jnp.where(gamma > 0, gamma, kernels.scale_gamma(x_NxD))
  if kernel == "fourier":
    features = kernels.fourier_init(key_features, x_NxD.shape[1], num_features, gamma)
  elif kernel == "nystroem":  # at most N landmarks
    features = kernels.nystroem_init(key_features, x_NxD, min(num_features, x_NxD.shape[0]),
                                     gamma)
  else:
    features = {}
  pre_NxF = _pre_features(kernel, features, x_NxD)
  params0 = {"w": jnp.zeros((pre_NxF.shape[1], num_classes), jnp.float32),
             "b": jnp.zeros((num_classes,), jnp.float32)}

  # Centred features (see genjax.classical.logistic): the bias absorbs mean_F . (M W), so
  # scores are pre (M W) - mean_F (M W) + b' without a centred copy of pre.
  mean_F = jnp.mean(pre_NxF, 0)

  mean_loss = functools.partial(mean_margin_loss, multi_class=multi_class, loss=loss)

  def objective(p, pre, y):
    # Nystroem scores pre (whiten W): the same linear loss in whiten W.
    w_eff = features["whiten"] @ p["w"] if kernel == "nystroem" else p["w"]
    b = p["b"] - mean_F @ w_eff
    return (logistic.linear_loss(mean_loss, pre, w_eff, b, y) + 0.5 * l2 * jnp.sum(p["w"] ** 2)
            + 0.5 * l2 * penalize_bias * jnp.sum(b**2))

  if solver == "lbfgs" and kernel == "linear":
    p_FxF, chol_FxF = logistic.preconditioner(pre_NxF, mean_F, l2, precondition)
    fun = lambda v: objective({"w": p_FxF @ v["w"], "b": v["b"]}, pre_NxF, y_N)
    grad_map = lambda g: {"w": chol_FxF @ g["w"], "b": g["b"]}
    params, info = logistic.minimize_lbfgs(fun, params0, max_iter=max_iter, tol=tol,
                                  memory_size=memory_size, grad_map=grad_map)
    params = {"w": p_FxF @ params["w"], "b": params["b"]}
  elif solver == "lbfgs":
    fun = functools.partial(objective, pre=pre_NxF, y=y_N)
    params, info = logistic.minimize_lbfgs(fun, params0, max_iter=max_iter, tol=tol,
                                  memory_size=memory_size)
  else:
    params, info = logistic.minimize_minibatch(objective, params0, pre_NxF, y_N, solver=solver,
                                      learning_rate=learning_rate, batch_size=batch_size,
                                      num_epochs=num_epochs, key=key_batches)
    info["grad_norm"] = jnp.float32(jnp.nan)  # not tracked by the mini-batch solvers
    info["num_evaluations"] = info["num_iterations"]
  b = params["b"] - _scores(kernel, features, params["w"], 0.0, mean_F[None])[0]
  s_NxC = _scores(kernel, features, params["w"], b, pre_NxF)
  return SVMParams(w=params["w"], b=b, features=features,
                   temperature=fit_temperature(s_NxC, y_N), kernel=kernel, **info)


STATIC = ("num_classes", "multi_class", "loss", "kernel", "num_features", "solver", "max_iter",
          "memory_size", "batch_size", "num_epochs")
fit = jax.jit(_fit, static_argnames=STATIC)
HYPERPARAMETERS = {name: p.default for name, p in inspect.signature(_fit).parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}


@functools.partial(jax.jit, static_argnames="block_size")
def decision_function(params: SVMParams, x_NxD: jax.Array, block_size: int = 4096) -> jax.Array:
  """Scores phi(x) W + b, [N, C], computed in blocks of rows (bounded memory for kernels)."""
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  n = x_NxD.shape[0]
  score = lambda x: _scores(params.kernel, params.features, params.w, params.b,
                            _pre_features(params.kernel, params.features, x))
  if n <= block_size or params.kernel == "linear":
    return score(x_NxD)
  num_blocks = -(-n // block_size)
  padded = jnp.pad(x_NxD, ((0, num_blocks * block_size - n), (0, 0)))
  s = jax.lax.map(score, padded.reshape(num_blocks, block_size, -1))
  return s.reshape(num_blocks * block_size, -1)[:n]


@jax.jit
def log_proba(params: SVMParams, x_NxD: jax.Array) -> jax.Array:
  """log_softmax(T * scores), [N, C]: temperature-scaled scores (see the module docstring)."""
  return jax.nn.log_softmax(params.temperature * decision_function(params, x_NxD), -1)


@jax.jit
def predict(params: SVMParams, x_NxD: jax.Array) -> jax.Array:
  """The highest-scoring class of each row, [N] int32."""
  return jnp.argmax(decision_function(params, x_NxD), -1).astype(jnp.int32)
