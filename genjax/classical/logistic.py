"""Multinomial logistic regression with an L2 penalty: full-batch L-BFGS or mini-batch Adam/SGD.

The objective is the mean cross-entropy plus `l2 / 2 * |W|^2` (the bias is not penalised);
`l2 = 1 / (C * N)` matches scikit-learn's `LogisticRegression(C=C)`. `fit` is jitted with
the solver's structure static (`num_classes`, `solver`, `max_iter`, `memory_size`,
`batch_size`, `num_epochs`) and the numbers traced (`l2`, `tol`, `learning_rate`, `seed`), so
a sweep over `l2` or a `jax.vmap` over datasets reuses one compiled program.

`minimize_lbfgs` and `minimize_minibatch` are the solvers, shared with genjax.classical.svm, as
are `linear_loss` (a loss of linear scores with a matmul-shaped gradient) and `preconditioner`
(L-BFGS runs on v with W = P v, P from the features' covariance, which cuts its iterations on
ill-conditioned features such as pixels several-fold; the optimum is the same W).
"""

import functools
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

SOLVERS = ("lbfgs", "adam", "sgd")


def minimize_lbfgs(fun: Callable, params0, *, max_iter: int, tol: jax.Array,
                   memory_size: int = 10, max_linesearch_steps: int = 30,
                   grad_map: Callable | None = None):
  """Minimise a smooth `fun(params) -> scalar` by L-BFGS: the two-loop recursion over the last
  `memory_size` pairs, and a backtracking line search from the unit step (halving it until the
  Armijo or the approximate Wolfe conditions hold; a pair enters the memory only where
  s.y > 0).

  Runs in a `lax.while_loop` until the gradient norm is at most `tol`, `max_iter` iterations
  are done, or the line search finds no acceptable step in `max_linesearch_steps` halvings
  (the float precision of the objective is reached; that step is not taken). `grad_map` maps the gradient to
  the one whose norm is tested and reported (that of the original parameters, where `fun` is
  of preconditioned ones). Returns (params, info) with info {"num_iterations", "grad_norm",
  "loss"} as arrays. The loop works on one flat vector and compiles in a fraction of the
  time of optax's L-BFGS with its zoom line search (seconds on CPU, paid by every fit).
  """
  x0_P, unravel = ravel_pytree(params0)
  value_and_grad = jax.value_and_grad(lambda x_P: fun(unravel(x_P)))
  grad_norm = lambda g_P: optax.tree.norm((grad_map or (lambda g: g))(unravel(g_P)))
  m = memory_size

  def direction(g_P, s_MxP, y_MxP, rho_M, newest):
    """-H g by the two-loop recursion; empty slots have rho = 0 and change nothing."""
    def newest_first(i, carry):
      q_P, alpha_M = carry
      j = (newest - i) % m
      a = rho_M[j] * (s_MxP[j] @ q_P)
      return q_P - a * y_MxP[j], alpha_M.at[j].set(a)

    q_P, alpha_M = jax.lax.fori_loop(0, m, newest_first, (g_P, jnp.zeros(m, g_P.dtype)))
    sy, yy = s_MxP[newest] @ y_MxP[newest], y_MxP[newest] @ y_MxP[newest]
    # Initial Hessian gamma I: s.y / y.y from the newest pair, else a step of length <= 1.
    gamma = jnp.where(rho_M[newest] > 0, sy / jnp.where(yy > 0, yy, 1.0),
                      1.0 / jnp.maximum(jnp.linalg.norm(g_P), 1.0))

    def oldest_first(i, r_P):
      j = (newest + 1 + i) % m
      return r_P + s_MxP[j] * (alpha_M[j] - rho_M[j] * (y_MxP[j] @ r_P))

    return -jax.lax.fori_loop(0, m, oldest_first, gamma * q_P)

  def step(carry):
    x_P, value, g_P, s_MxP, y_MxP, rho_M, newest, count, _, evaluations = carry
    d_P = direction(g_P, s_MxP, y_MxP, rho_M, newest)
    slope = g_P @ d_P
    d_P, slope = jax.lax.cond(slope < 0, lambda: (d_P, slope), lambda: (-g_P, -(g_P @ g_P)))

    def accepted(t, v, g):
      # Armijo, or Hager and Zhang's approximate Wolfe conditions, which float32 can still
      # test where the decrease is below the objective's rounding.
      gd = g @ d_P
      return ((v <= value + 1e-4 * t * slope)
              | ((v <= value + 1e-6 * jnp.abs(value)) & (gd >= 0.9 * slope) & (gd <= -slope)))

    def search_on(c):
      t, v, g, i = c
      return (i < max_linesearch_steps) & ~accepted(t, v, g)

    def halve(c):
      t, _, _, i = c
      v, g = value_and_grad(x_P + 0.5 * t * d_P)
      return 0.5 * t, v, g, i + 1

    inf = jnp.asarray(jnp.inf, value.dtype)
    t, v, g_new, trials = jax.lax.while_loop(search_on, halve,
                                             (jnp.asarray(2.0, value.dtype), inf, g_P, 0))
    moved = accepted(t, v, g_new)
    s_P, y_P = t * d_P, g_new - g_P
    sy = s_P @ y_P
    keep = moved & (sy > 1e-10 * jnp.linalg.norm(s_P) * jnp.linalg.norm(y_P))
    slot = (newest + 1) % m
    new_memory = (s_MxP.at[slot].set(s_P), y_MxP.at[slot].set(y_P),
                  rho_M.at[slot].set(1.0 / jnp.where(keep, sy, 1.0)), slot)
    s_MxP, y_MxP, rho_M, newest = jax.lax.cond(keep, lambda: new_memory,
                                               lambda: (s_MxP, y_MxP, rho_M, newest))
    return (jnp.where(moved, x_P + s_P, x_P), jnp.where(moved, v, value),
            jnp.where(moved, g_new, g_P), s_MxP, y_MxP, rho_M, newest, count + 1, moved,
            evaluations + trials)

  def not_done(carry):
    g_P, count, moved = carry[2], carry[7], carry[8]
    return (count == 0) | ((count < max_iter) & (grad_norm(g_P) > tol) & moved)

  value0, g0_P = value_and_grad(x0_P)
  n = x0_P.shape[0]
  zeros = jnp.zeros((m, n), x0_P.dtype)
  carry = (x0_P, value0, g0_P, zeros, zeros, jnp.zeros(m, x0_P.dtype), 0, 0, True, 0)
  x_P, value, g_P, *_, count, _, evaluations = jax.lax.while_loop(not_done, step, carry)
  info = {"num_iterations": jnp.asarray(count, jnp.int32), "grad_norm": grad_norm(g_P),
          "loss": value, "num_evaluations": evaluations + 1}
  return unravel(x_P), info


def minimize_minibatch(loss_fn: Callable, params0, x_NxD: jax.Array, y_N: jax.Array, *,
                       solver: str, learning_rate: jax.Array, batch_size: int, num_epochs: int,
                       key: jax.Array):
  """Minimise the mean of `loss_fn(params, x_BxD, y_B) -> scalar` over shuffled mini-batches.

  Adam, or SGD with Nesterov momentum 0.9, under a cosine-decayed learning rate; each epoch
  visits N // batch_size batches of a fresh permutation (a remainder rotates in next epoch).
  Returns (params, info) with info {"num_iterations", "loss"} (the last epoch's mean loss).
  """
  n = x_NxD.shape[0]
  batch_size = min(batch_size, n)
  num_batches = n // batch_size
  schedule = optax.cosine_decay_schedule(1.0, num_epochs * num_batches)
  scaled = lambda count: learning_rate * schedule(count)
  if solver == "adam":
    opt = optax.adam(scaled)
  elif solver == "sgd":
    opt = optax.sgd(scaled, momentum=0.9, nesterov=True)
  else:
    raise ValueError(f"unknown mini-batch solver {solver!r}; expected adam or sgd")

  def batch_step(carry, idx_B):
    params, state = carry
    loss, grad = jax.value_and_grad(loss_fn)(params, x_NxD[idx_B], y_N[idx_B])
    updates, state = opt.update(grad, state, params)
    return (optax.apply_updates(params, updates), state), loss

  def epoch(carry, key):
    order = jax.random.permutation(key, n)[:num_batches * batch_size]
    carry, losses = jax.lax.scan(batch_step, carry, order.reshape(num_batches, batch_size))
    return carry, jnp.mean(losses)

  (params, _), losses = jax.lax.scan(epoch, (params0, opt.init(params0)),
                                     jax.random.split(key, num_epochs))
  return params, {"num_iterations": jnp.asarray(num_epochs * num_batches, jnp.int32),
                  "loss": losses[-1]}


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def linear_loss(loss_fn: Callable, x_NxD: jax.Array, w_DxC: jax.Array, b_C: jax.Array,
                y_N: jax.Array) -> jax.Array:
  """`loss_fn(x W + b, y)`, differentiable in W and b, whose gradient is X^T r and sum(r) with
  r = d loss / d scores [N, C] materialised first: left to itself, XLA on CPU fuses the
  elementwise backward pass into the X^T r product, a loop about twice as slow as the library
  matmul. x and y get no gradient."""
  return loss_fn(x_NxD @ w_DxC + b_C, y_N)


def _linear_loss_fwd(loss_fn, x_NxD, w_DxC, b_C, y_N):
  value, r_NxC = jax.value_and_grad(loss_fn)(x_NxD @ w_DxC + b_C, y_N)
  return value, (x_NxD, jax.lax.optimization_barrier(r_NxC))


def _linear_loss_bwd(loss_fn, residuals, g):
  del loss_fn
  x_NxD, r_NxC = residuals
  return None, g * (x_NxD.T @ r_NxC), g * jnp.sum(r_NxC, 0), None


linear_loss.defvjp(_linear_loss_fwd, _linear_loss_bwd)


def preconditioner(x_NxD: jax.Array, mean_D: jax.Array, l2: jax.Array, curvature: jax.Array,
                   rows: int = 8192) -> tuple[jax.Array, jax.Array]:
  """(P, L) with L L^T = l2 I + curvature * Cov(x) and P = L^-T, a model of the objective's
  Hessian in W (the loss's second derivative in the scores taken as `curvature`).

  Minimising over v with W = P v is the same problem with a Hessian near I where the model
  holds. The covariance comes from at most `rows` evenly spaced rows: P need only be a fair
  model, never exact, so a subsample saves most of an [N, D] x [N, D] product. A gradient g_v
  in v is L^-1 g_W, so g_W = L g_v.
  """
  stride = max(1, x_NxD.shape[0] // rows)
  sub_MxD = x_NxD[::stride] - mean_D
  d = x_NxD.shape[1]
  eye_DxD = jnp.eye(d, dtype=jnp.float32)
  cov_DxD = sub_MxD.T @ sub_MxD / sub_MxD.shape[0]
  chol_DxD = jnp.linalg.cholesky(l2 * eye_DxD + curvature * 0.5 * (cov_DxD + cov_DxD.T))
  return jax.scipy.linalg.solve_triangular(chol_DxD, eye_DxD, lower=True).T, chol_DxD


def cross_entropy(s_NxC: jax.Array, y_N: jax.Array) -> jax.Array:
  """Mean cross-entropy of labels y_N under logits s_NxC."""
  nll = jax.nn.logsumexp(s_NxC, axis=-1) - jnp.take_along_axis(s_NxC, y_N[:, None], -1)[:, 0]
  return jnp.mean(nll)


def scores(params: dict, x_NxD: jax.Array) -> jax.Array:
  """Logits s = x W + b, [N, C]."""
  return x_NxD @ params["w"] + params["b"]


def objective(params: dict, x_NxD: jax.Array, y_N: jax.Array, l2: jax.Array) -> jax.Array:
  """Mean cross-entropy of the labels plus l2 / 2 * |W|^2."""
  return cross_entropy(scores(params, x_NxD), y_N) + 0.5 * l2 * jnp.sum(params["w"] ** 2)


def _fit(x_NxD: jax.Array, y_N: jax.Array, num_classes: int, *, l2: float = 1e-4,
         solver: str = "lbfgs", max_iter: int = 1000, tol: float = 1e-5, memory_size: int = 10,
         precondition: float = 0.2, learning_rate: float = 1e-3, batch_size: int = 256,
         num_epochs: int = 20, seed: int = 0) -> dict:
  """Fit on features x_NxD and labels y_N in 0..num_classes-1.

  L-BFGS runs preconditioned (see `preconditioner`) with the loss's curvature taken as
  `precondition` (the softmax's p (1 - p), small once the training set is mostly fitted);
  `tol` bounds the norm of the gradient in the original W and b.

  Returns params {"w": [D, C], "b": [C], "num_iterations", "loss"} and, for L-BFGS,
  "grad_norm" (the final gradient norm of the objective).
  """
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  y_N = jnp.asarray(y_N, jnp.int32)
  params0 = {"w": jnp.zeros((x_NxD.shape[1], num_classes), jnp.float32),
             "b": jnp.zeros((num_classes,), jnp.float32)}
  # Solve on centred features (x - mu) W + b': the same optimum, since b is not penalised,
  # with b = b' - mu W, and far better conditioned for features such as [0, 1] pixels.
  mu_D = jnp.mean(x_NxD, 0)
  centred = lambda p, x, y: objective(p, x - mu_D, y, l2)
  if solver == "lbfgs":
    p_DxD, chol_DxD = preconditioner(x_NxD, mu_D, l2, precondition)

    def fun(v):
      w_DxC = p_DxD @ v["w"]
      return (linear_loss(cross_entropy, x_NxD, w_DxC, v["b"] - mu_D @ w_DxC, y_N)
              + 0.5 * l2 * jnp.sum(w_DxC**2))

    grad_map = lambda g: {"w": chol_DxD @ g["w"], "b": g["b"]}
    params, info = minimize_lbfgs(fun, params0, max_iter=max_iter, tol=tol,
                                  memory_size=memory_size, grad_map=grad_map)
    params = {"w": p_DxD @ params["w"], "b": params["b"]}
  elif solver in ("adam", "sgd"):
    params, info = minimize_minibatch(centred, params0, x_NxD, y_N, solver=solver,
                                      learning_rate=learning_rate, batch_size=batch_size,
                                      num_epochs=num_epochs, key=jax.random.key(seed))
  else:
    raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
  return {"w": params["w"], "b": params["b"] - mu_D @ params["w"], **info}


STATIC = ("num_classes", "solver", "max_iter", "memory_size", "batch_size", "num_epochs")
fit = jax.jit(_fit, static_argnames=STATIC)
HYPERPARAMETERS = {name: p.default for name, p in inspect.signature(_fit).parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}


@jax.jit
def log_proba(params: dict, x_NxD: jax.Array) -> jax.Array:
  """Normalised log-probabilities log P(y | x), [N, C]."""
  return jax.nn.log_softmax(scores(params, jnp.asarray(x_NxD, jnp.float32)), axis=-1)


@jax.jit
def decision_function(params: dict, x_NxD: jax.Array) -> jax.Array:
  """The logits, [N, C]."""
  return scores(params, jnp.asarray(x_NxD, jnp.float32))


@jax.jit
def predict(params: dict, x_NxD: jax.Array) -> jax.Array:
  """The most probable class of each row, [N] int32."""
  return jnp.argmax(scores(params, jnp.asarray(x_NxD, jnp.float32)), axis=-1).astype(jnp.int32)
