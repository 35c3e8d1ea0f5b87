"""SVMs: hard-margin geometry on separable toy data (one-vs-rest and Crammer-Singer), RBF feature
maps against the exact kernel, a kernel SVM where a linear one cannot work, calibration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.classical import kernels, svm


@pytest.fixture(scope="module")
def slab():
  """Two classes split by the plane x1 = 0 with a gap of half-width 1: support vectors at
  x1 = +-1, the rest further out. The hard-margin SVM is w = (1, 0), b = 0."""
  rng = np.random.default_rng(0)
  x1 = np.concatenate([-1 - rng.exponential(1.0, 30), 1 + rng.exponential(1.0, 30)])
  x1[[0, 1, 30, 31]] = [-1, -1, 1, 1]
  x = np.stack([x1, rng.uniform(-3, 3, 60)], 1).astype(np.float32)
  return x, (x1 > 0).astype(np.int32)


def test_one_vs_rest_margins_on_separable_data(slab):
  x, y = slab
  params = svm.fit(x, y, 2, l2=1e-5, tol=1e-6)
  w, b = np.asarray(params.w), np.asarray(params.b)
  # Class 1's column is the max-margin separator, class 0's its mirror image.
  np.testing.assert_allclose(w[:, 1], [1.0, 0.0], atol=0.03)
  np.testing.assert_allclose(w[:, 0], -w[:, 1], atol=1e-3)
  assert abs(b[1]) < 0.03
  t = 2 * y - 1
  m = t * np.asarray(svm.decision_function(params, x))[:, 1]
  assert m.min() > 0.97  # every point on or outside the margin (up to the l2 slack)
  np.testing.assert_allclose(m[[0, 1, 30, 31]], 1.0, atol=0.03)  # the support vectors
  assert 1 / np.linalg.norm(w[:, 1]) == pytest.approx(1.0, abs=0.03)  # geometric margin
  np.testing.assert_array_equal(np.asarray(svm.predict(params, x)), y)


def triangle():
  """Three classes at the corners of a triangle, each a tight cluster: separable."""
  rng = np.random.default_rng(1)
  centres = np.array([[0.0, 3.0], [-3.0, -2.0], [3.0, -2.0]])
  y = np.repeat(np.arange(3), 20).astype(np.int32)
  return (centres[y] + 0.5 * rng.normal(size=(60, 2))).astype(np.float32), y


def test_crammer_singer_margins_on_separable_data():
  x, y = triangle()
  params = svm.fit(x, y, 3, l2=1e-5, tol=1e-6, multi_class="crammer_singer")
  s = np.asarray(svm.decision_function(params, x))
  others = np.where(np.eye(3, dtype=bool)[y], -np.inf, s).max(1)
  margin = s[np.arange(60), y] - others
  assert margin.min() > 0.97 and margin.min() < 1.03  # the closest points sit on the margin
  np.testing.assert_array_equal(np.asarray(svm.predict(params, x)), y)


@pytest.mark.slow
def test_hinge_through_adam_separates():
  x, y = triangle()
  params = svm.fit(x, y, 3, l2=1e-4, multi_class="crammer_singer", loss="hinge",
                   solver="adam", learning_rate=0.05, batch_size=20, num_epochs=100)
  np.testing.assert_array_equal(np.asarray(svm.predict(params, x)), y)


def test_feature_maps_against_the_exact_kernel():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(12, 3)).astype(np.float32)
  exact = np.exp(-0.3 * ((x[:, None] - x[None]) ** 2).sum(-1))
  np.testing.assert_allclose(np.asarray(kernels.rbf(x, x, 0.3)), exact, atol=1e-5)
  # Nystroem with every row a landmark reproduces the kernel on those rows.
  fp = kernels.nystroem_init(jax.random.key(0), jnp.asarray(x), 12, 0.3, jitter=1e-6)
  phi = np.asarray(kernels.nystroem_features(fp, x), np.float64)
  np.testing.assert_allclose(phi @ phi.T, exact, atol=1e-3)
  # Random Fourier features are unbiased; with F features the error is O(1 / sqrt(F)).
  fp = kernels.fourier_init(jax.random.key(1), 3, 20000, 0.3)
  phi = np.asarray(kernels.fourier_features(fp, x), np.float64)
  assert np.abs(phi @ phi.T - exact).max() < 0.05


def test_kernel_svm_separates_rings_and_blocks_predictions():
  rng = np.random.default_rng(3)
  radius = np.concatenate([rng.uniform(0, 1, 100), rng.uniform(2, 3, 100)])
  angle = rng.uniform(0, 2 * np.pi, 200)
  x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1).astype(np.float32)
  y = (radius > 1.5).astype(np.int32)
  linear = svm.fit(x, y, 2, l2=1e-4)
  assert np.mean(np.asarray(svm.predict(linear, x)) == y) < 0.8
  params = svm.fit(x, y, 2, l2=1e-4, kernel="nystroem", num_features=64, gamma=1.0)
  np.testing.assert_array_equal(np.asarray(svm.predict(params, x)), y)
  blocked = svm.decision_function(params, x, block_size=48)  # 200 rows: ragged last block
  # Two compiled float32 paths of k(x, L) (M W) + b, m = 64 landmarks: each is within ~2 m ulps
  # of S = |k| |M| |W| + |b| (two length-m products, Higham's gamma_m), which reaches ~2e3 where
  # |s| < 2 (the terms cancel), so tol = 4 m eps S (<= 0.06). A blocking bug moves scores by O(1).
  fp = params.features
  s_bound = (np.abs(np.asarray(kernels.nystroem_pre(fp, x), np.float64))
             @ np.abs(np.asarray(fp["whiten"], np.float64)) @ np.abs(np.asarray(params.w))
             + np.abs(np.asarray(params.b)))
  tol = 4 * 64 * np.finfo(np.float32).eps * s_bound
  np.testing.assert_array_less(
      np.abs(np.asarray(blocked) - np.asarray(svm.decision_function(params, x))), tol)
  lp = np.asarray(svm.log_proba(params, x))
  np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)


def test_temperature_minimises_the_log_loss():
  rng = np.random.default_rng(4)
  s = rng.normal(size=(300, 4)).astype(np.float32)
  y = np.where(rng.uniform(size=300) < 0.7, s.argmax(1), rng.integers(0, 4, 300)).astype(np.int32)
  t = float(svm.fit_temperature(jnp.asarray(s), jnp.asarray(y)))
  grid = np.linspace(0.05, 10, 4000)
  nll = [np.mean(np.log(np.exp(g * s).sum(1)) - g * s[np.arange(300), y]) for g in grid]
  assert t == pytest.approx(grid[int(np.argmin(nll))], abs=5e-3)


def test_one_vs_rest_with_penalised_bias_is_liblinears_optimum():
  """penalize_bias=True is LinearSVC's objective (C = 1 / (l2 N)): the same optimum."""
  sklearn_svm = pytest.importorskip("sklearn.svm")
  x, y = triangle()
  l2 = 1e-2
  params = svm.fit(x, y, 3, l2=l2, tol=1e-6, penalize_bias=True)
  peer = sklearn_svm.LinearSVC(C=1.0 / (l2 * len(x)), dual=False, tol=1e-10,
                               max_iter=100000).fit(x, y)
  # The objective is l2-strongly convex, so |W - W*| <= |grad| / l2: float32 stops the
  # gradient near eps * |x| |W| ~ 1e-5 (tol 1e-6 may not be reached), hence 1e-5 / l2 = 1e-3.
  np.testing.assert_allclose(np.asarray(params.w), peer.coef_.T, atol=2e-3)
  np.testing.assert_allclose(np.asarray(params.b), peer.intercept_, atol=2e-3)


def test_crammer_singer_squared_hinge_optimum_against_float64():
  """The squared-hinge Crammer-Singer fit against scipy's float64 L-BFGS on the same objective
  (on overlapping classes, so that many margins are active at the optimum)."""
  optimize = pytest.importorskip("scipy.optimize")
  rng = np.random.default_rng(5)
  y = rng.integers(0, 3, 90).astype(np.int32)
  x = (np.array([[0.0, 1.0], [-1.0, -0.5], [1.0, -0.5]])[y]
       + 0.8 * rng.normal(size=(90, 2))).astype(np.float32)
  l2 = 1e-2

  def objective64(theta):
    w, b = theta[:6].reshape(2, 3), theta[6:]
    s = x.astype(np.float64) @ w + b
    other = np.where(np.eye(3, dtype=bool)[y], -np.inf, s)
    j = other.argmax(1)
    h = np.maximum(1.0 - (s[np.arange(90), y] - other.max(1)), 0.0)
    r = np.zeros_like(s)
    r[np.arange(90), y] -= 2 * h / 90
    r[np.arange(90), j] += 2 * h / 90
    grad = np.concatenate([(x.T @ r + l2 * w).ravel(), r.sum(0)])
    return np.mean(h**2) + 0.5 * l2 * np.sum(w**2), grad

  best = optimize.minimize(objective64, np.zeros(9), jac=True, method="L-BFGS-B",
                           options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
  params = svm.fit(x, y, 3, l2=l2, tol=1e-6, multi_class="crammer_singer")
  # Scores are invariant to adding a constant to every class's bias (only differences of
  # scores enter): compare the centred biases. Strong convexity in W: |W - W*| <= |g| / l2,
  # g at float32's floor ~1e-5, so 1e-3; the float64 objective agrees to second order.
  w_star, b_star = best.x[:6].reshape(2, 3), best.x[6:]
  np.testing.assert_allclose(np.asarray(params.w), w_star, atol=2e-3)
  b = np.asarray(params.b, np.float64)
  np.testing.assert_allclose(b - b.mean(), b_star - b_star.mean(), atol=2e-3)
  theta = np.concatenate([np.asarray(params.w, np.float64).ravel(), b])
  assert objective64(theta)[0] == pytest.approx(best.fun, rel=1e-6)


def test_linear_loss_gradient_is_autodiffs():
  from genjax.classical import logistic
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.normal(size=(40, 5)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, 40), jnp.int32)
  w = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  b = jnp.asarray(rng.normal(size=3), jnp.float32)
  for fn in (logistic.cross_entropy,
             lambda s, y: svm.mean_margin_loss(s, y, "crammer_singer", "squared_hinge")):
    custom = jax.grad(lambda w, b: logistic.linear_loss(fn, x, w, b, y), (0, 1))(w, b)
    plain = jax.grad(lambda w, b: fn(x @ w + b, y), (0, 1))(w, b)
    # The same float32 sums in another order: a few ulps of |x| |r| N ~ 40 * 4 * eps.
    for a, e in zip(custom, plain):
      np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=1e-5)
