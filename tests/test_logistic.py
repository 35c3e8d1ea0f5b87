"""Logistic regression: gradients against finite differences and the closed form, the optimum's
first-order conditions, vmap over datasets, and the mini-batch solvers near the optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.classical import logistic

N, D, C = 60, 5, 3


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  y = rng.integers(0, C, N).astype(np.int32)
  means = rng.normal(size=(C, D)) * 1.5
  x = (means[y] + rng.normal(size=(N, D))).astype(np.float32)
  return x, y


@pytest.fixture(scope="module")
def fitted(data):
  x, y = data
  return logistic.fit(x, y, C, l2=1e-2, tol=1e-5)


def closed_form_gradient(params, x, y, l2):
  """d/dW = X^T (P - Y) / N + l2 W, d/db = sum(P - Y) / N."""
  s = x @ params["w"] + params["b"]
  p = np.exp(s - s.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  r = (p - np.eye(C)[y]) / len(y)
  return {"w": x.T @ r + l2 * params["w"], "b": r.sum(0)}


def test_gradient_against_finite_differences(data):
  x, y = data
  rng = np.random.default_rng(1)
  params = {"w": rng.normal(size=(D, C)) * 0.3, "b": rng.normal(size=(C,))}
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x64, y64 = jnp.asarray(x, jnp.float64), jnp.asarray(y)
    fun = lambda p: logistic.objective(p, x64, y64, 0.1)
    grad = jax.grad(fun)(p64)
    eps = 1e-6
    for name in ("w", "b"):
      flat = np.asarray(p64[name]).ravel()
      numeric = np.zeros_like(flat)
      for j in range(flat.size):
        step = np.zeros_like(flat)
        step[j] = eps
        up = {**p64, name: jnp.asarray((flat + step).reshape(p64[name].shape))}
        down = {**p64, name: jnp.asarray((flat - step).reshape(p64[name].shape))}
        numeric[j] = (float(fun(up)) - float(fun(down))) / (2 * eps)
      np.testing.assert_allclose(np.asarray(grad[name]).ravel(), numeric, rtol=1e-6, atol=1e-9)
  closed = closed_form_gradient(params, x.astype(np.float64), y, 0.1)
  for name in ("w", "b"):
    np.testing.assert_allclose(np.asarray(grad[name]), closed[name], rtol=1e-8, atol=1e-12)


def test_optimum_satisfies_first_order_conditions(data, fitted):
  x, y = data
  params = {k: np.asarray(fitted[k], np.float64) for k in ("w", "b")}
  g = closed_form_gradient(params, x.astype(np.float64), y, 1e-2)
  # Stationarity: X^T (P - Y) / N = -l2 W and the residuals sum to 0 per class.
  assert np.abs(g["w"]).max() < 1e-4 and np.abs(g["b"]).max() < 1e-4
  assert float(fitted["grad_norm"]) <= 1e-4
  assert 0 < int(fitted["num_iterations"]) < 1000
  # A better point would contradict optimality: nudging along any direction does not help.
  f = lambda p: float(logistic.objective(p, x, y, 1e-2))
  best = f(fitted)
  rng = np.random.default_rng(2)
  for _ in range(5):
    nudged = {k: fitted[k] + 1e-2 * rng.normal(size=fitted[k].shape) for k in ("w", "b")}
    assert f(nudged) > best
  lp = np.asarray(logistic.log_proba(fitted, x))
  np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(logistic.predict(fitted, x)), lp.argmax(1))


def test_vmap_over_datasets_matches_separate_fits(data, fitted):
  x, y = data
  rng = np.random.default_rng(3)
  x2 = x[rng.permutation(N)] + rng.normal(size=x.shape).astype(np.float32) * 0.1
  xs, ys = np.stack([x, x2]), np.stack([y, y])
  batched = jax.vmap(lambda a, b: logistic.fit(a, b, C, l2=1e-2, tol=1e-5))(xs, ys)
  np.testing.assert_allclose(np.asarray(batched["w"][0]), np.asarray(fitted["w"]), atol=2e-3)
  single = logistic.fit(x2, y, C, l2=1e-2, tol=1e-5)
  np.testing.assert_allclose(np.asarray(batched["w"][1]), np.asarray(single["w"]), atol=2e-3)


@pytest.mark.parametrize("solver,learning_rate", [
    ("adam", 0.3), pytest.param("sgd", 0.2, marks=pytest.mark.slow)])
def test_minibatch_solvers_approach_the_optimum(data, fitted, solver, learning_rate):
  x, y = data
  params = logistic.fit(x, y, C, l2=1e-2, solver=solver, learning_rate=learning_rate,
                        batch_size=16, num_epochs=60)
  f = lambda p: float(logistic.objective(p, x, y, 1e-2))
  assert f(params) - f(fitted) < 2e-3
  assert int(params["num_iterations"]) == 60 * (N // 16)


def test_optimum_is_scikit_learns(data):
  """The preconditioned L-BFGS fit against LogisticRegression(C) at a tight tolerance, whose
  objective is the same (l2 = 1 / (C N), bias unpenalised)."""
  linear_model = pytest.importorskip("sklearn.linear_model")
  x, y = data
  l2 = 1e-2
  params = logistic.fit(x, y, C, l2=l2, tol=1e-6)
  peer = linear_model.LogisticRegression(C=1.0 / (l2 * N), tol=1e-12, max_iter=10000).fit(x, y)
  # Softmax scores only see differences between classes: compare column-centred weights and
  # biases. l2-strong convexity in W: |W - W*| <= |grad| / l2, with the float32 gradient floor
  # ~1e-5, so 1e-3.
  centre = lambda a: a - a.mean(-1, keepdims=True)
  np.testing.assert_allclose(centre(np.asarray(params["w"])), centre(peer.coef_.T), atol=2e-3)
  np.testing.assert_allclose(centre(np.asarray(params["b"])), centre(peer.intercept_), atol=2e-3)
