"""Tests of genjax.metrics.sample_quality against closed forms and brute-force NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.metrics import sample_quality as sq


def _relu_features(seed: int, n: int, d: int = 32, rank: int = 8) -> np.ndarray:
  """Classifier-like features: ReLU of a rank-`rank` projection (many near-zero directions)."""
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(rank, d)) / np.sqrt(rank)
  z = rng.normal(size=(n, rank))
  return np.maximum(z @ w + 0.3, 0.0).astype(np.float32)


def _sq_dist_matrix(a, b) -> np.ndarray:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)


def _brute_knn_radii(x, k: int) -> np.ndarray:
  sq = _sq_dist_matrix(x, x)
  np.fill_diagonal(sq, np.inf)
  return np.sqrt(np.sort(sq, axis=1)[:, k - 1])


def _random_rotation(rng, d: int) -> np.ndarray:
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  return q


# ----------------------------------------------------------------------------------------------
# Gaussian statistics and FID


def test_gaussian_stats_match_numpy_with_a_large_offset():
  # A mean 1000 times the spread: E[x x^T] - mu mu^T would lose every digit in float32.
  rng = np.random.default_rng(0)
  x = (1000.0 + rng.normal(size=(4000, 5)) @ rng.normal(size=(5, 5))).astype(np.float32)
  mean, cov = sq.gaussian_stats(x)
  x64 = x.astype(np.float64)
  # A float32 sum of 4000 values ~1e3: tens of ulps even summed blockwise (1e-6 is 8 ulps);
  # 64 ulps still sees a divide by N - 1 (2.5e-4).
  np.testing.assert_allclose(mean, x64.mean(axis=0), rtol=64 * np.finfo(np.float32).eps)
  np.testing.assert_allclose(cov, np.cov(x64, rowvar=False, ddof=1), rtol=2e-4, atol=2e-4)


def test_fid_of_a_set_against_itself_is_zero():
  x = _relu_features(1, 3000, d=64, rank=16)
  trace = np.trace(np.cov(x.astype(np.float64), rowvar=False))
  value = float(sq.fid(x, x))
  # Float64 leaves ~1e-14 of the trace; float32 eigendecompositions leave ~1e-6 of it.
  assert abs(value) < 1e-8 * trace, (value, trace)


def test_fid_is_symmetric_and_positive_between_different_sets():
  a, b = _relu_features(2, 2000), _relu_features(3, 1500)
  ab, ba = float(sq.fid(a, b)), float(sq.fid(b, a))
  assert ab > 0.01
  np.testing.assert_allclose(ab, ba, rtol=1e-5)


@pytest.mark.parametrize("rotated", [False, True])
def test_frechet_distance_closed_form_for_commuting_covariances(rotated):
  # C1 = Q diag(a) Q^T, C2 = Q diag(b) Q^T commute, so (C1 C2)^{1/2} = Q diag(sqrt(ab)) Q^T and
  # the distance is ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2.
  rng = np.random.default_rng(4)
  d = 7
  a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  q = _random_rotation(rng, d) if rotated else np.eye(d)
  cov1, cov2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(sq.frechet_distance(mu1, cov1, mu2, cov2), expected, rtol=1e-5)


def test_frechet_distance_trace_sqrt_matches_scipy_sqrtm():
  linalg = pytest.importorskip("scipy.linalg")
  rng = np.random.default_rng(5)
  d = 10
  m1, m2 = rng.normal(size=(d, 2 * d)), rng.normal(size=(d, 2 * d))
  cov1, cov2 = m1 @ m1.T / d, m2 @ m2.T / d  # generic: they do not commute
  cov1, cov2 = cov1.astype(np.float32).astype(np.float64), cov2.astype(np.float32).astype(
      np.float64)  # what frechet_distance sees
  mu = np.zeros(d)
  expected = np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(linalg.sqrtm(cov1 @ cov2)).real
  np.testing.assert_allclose(sq.frechet_distance(mu, cov1, mu, cov2), expected, rtol=1e-5)


def test_fid_of_large_gaussian_samples_converges_to_closed_form():
  rng = np.random.default_rng(6)
  d, n = 6, 50_000
  q = _random_rotation(rng, d)
  a, b = np.linspace(0.5, 2.0, d), np.linspace(1.5, 0.3, d)
  mu1, mu2 = np.zeros(d), np.full(d, 0.3)
  x = mu1 + (rng.normal(size=(n, d)) * np.sqrt(a)) @ q.T
  y = mu2 + (rng.normal(size=(n, d)) * np.sqrt(b)) @ q.T
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # 2.026
  # The estimate's sampling error is O(1/sqrt(n)): its standard deviation over 20 seeds at this
  # size and these parameters is 0.02 (bias ~d/n is far smaller), so 0.1 is a 5-sigma bound.
  # A wrong trace term (e.g. tr(C1 C2) for tr (C1 C2)^{1/2}) would be off by more than 1.
  np.testing.assert_allclose(sq.fid(x.astype(np.float32), y.astype(np.float32)), expected,
                             atol=0.1)


# ----------------------------------------------------------------------------------------------
# KID


def _brute_mmd2_unbiased(x, y) -> float:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  d = x.shape[1]
  kern = lambda u, v: (np.dot(u, v) / d + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(kern(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(kern(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(kern(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2.0 * xy


def test_mmd2_unbiased_matches_brute_force_double_loop():
  rng = np.random.default_rng(7)
  x = rng.normal(size=(7, 3)).astype(np.float32)
  y = (rng.normal(size=(6, 3)) + 0.4).astype(np.float32)  # set sizes may differ
  np.testing.assert_allclose(sq.polynomial_mmd2_unbiased(x, y), _brute_mmd2_unbiased(x, y),
                             rtol=1e-5, atol=1e-6)


def test_kid_with_subsets_as_large_as_the_sets_equals_the_full_estimate():
  # subset_size is clipped to 9, so every subset is the whole of both sets in some order (only
  # sampling without replacement gives that): every subset scores the same.
  rng = np.random.default_rng(8)
  x = rng.normal(size=(9, 4)).astype(np.float32)
  y = (rng.normal(size=(9, 4)) * 1.5).astype(np.float32)
  mean, std = sq.kid(x, y, jax.random.key(0), num_subsets=5, subset_size=1000)
  expected = _brute_mmd2_unbiased(x, y)
  np.testing.assert_allclose(mean, expected, rtol=1e-5)
  assert std < 1e-5 * abs(expected)


def _gaussian_shift_mmd2(d: int, delta: float) -> float:
  """Population MMD^2 of the cubic kernel between N(0, I) and N(delta 1, I) in d dimensions.

  With s = a.b / d: E k = E (1 + s)^3. For x, x' ~ N(0, I): E s = E s^3 = 0, E s^2 = 1/d.
  For x ~ N(0, I), y ~ N(mu, I): E s^2 = E|y|^2 / d^2 = (1 + delta^2) / d, odd moments 0.
  For y, y' ~ N(mu, I): s = delta^2 + w with E w^2 = (2 delta^2 + 1) / d, E w^3 = 6 delta^2/d^2.
  """
  c = 1.0 + delta**2
  k_xx = 1.0 + 3.0 / d
  k_yy = c**3 + 3.0 * c * (2.0 * delta**2 + 1.0) / d + 6.0 * delta**2 / d**2
  k_xy = 1.0 + 3.0 * c / d
  return k_xx + k_yy - 2.0 * k_xy


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_kid_estimates_the_population_mmd2_of_a_gaussian_shift(delta):
  d = 16
  key_x, key_y = jax.random.split(jax.random.key(9))
  x = jax.random.normal(key_x, (2000, d))
  y = jax.random.normal(key_y, (2000, d)) + delta
  mean, std = sq.kid(x, y, jax.random.key(1), num_subsets=50, subset_size=500)
  mean, std = float(mean), float(std)
  expected = _gaussian_shift_mmd2(d, delta)  # 0 and 1.029
  # std is one 500-row subset's spread; the mean pools 50 of them, so it is at least as tight.
  assert abs(mean - expected) < std, (mean, std, expected)
  if delta > 0:
    assert mean > 10.0 * std
  # A biased estimator (diagonal kernel terms kept) would sit ~2 (E k(x, x) - E k(x, x')) / 500
  # ~ 0.03 above zero for the same distribution, several subset stds.


# ----------------------------------------------------------------------------------------------
# Inception score


def test_is_of_confident_balanced_predictions_is_k():
  k = 7
  labels = np.arange(k * 30) % k  # each split of 21 consecutive rows holds every class 3 times
  probs = np.eye(k, dtype=np.float32)[labels]
  mean, std = sq.inception_score(probs, num_splits=10)
  np.testing.assert_allclose(mean, k, rtol=1e-5)
  assert std < 1e-4


def test_is_of_constant_predictions_is_one():
  row = jax.nn.softmax(jax.random.normal(jax.random.key(10), (10,)))
  mean, std = sq.inception_score(jnp.tile(row, (100, 1)), num_splits=5)
  np.testing.assert_allclose(mean, 1.0, atol=1e-5)
  assert std < 1e-5


def _reference_is(probs, num_splits: int) -> tuple[float, float]:
  scores = []
  for part in np.array_split(np.asarray(probs, np.float64), num_splits):
    marginal = part.mean(axis=0)
    scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("n,num_splits", [(1000, 10), (21, 2)])  # 21 rows: splits of 11 and 10
def test_is_of_random_softmax_matches_reference_and_is_bounded_by_k(n, num_splits):
  k = 10
  probs = jax.nn.softmax(3.0 * jax.random.normal(jax.random.key(11), (n, k)))
  mean, std = sq.inception_score(probs, num_splits=num_splits)
  expected_mean, expected_std = _reference_is(probs, num_splits)
  np.testing.assert_allclose(mean, expected_mean, rtol=1e-5)
  np.testing.assert_allclose(std, expected_std, rtol=1e-3, atol=1e-5)
  assert 1.0 < float(mean) <= k


def test_is_scores_splits_separately():
  # First half all class 0, second half all class 1: each half alone has one class (IS 1),
  # the whole set has two balanced classes (IS 2).
  probs = np.eye(2, dtype=np.float32)[np.repeat([0, 1], 50)]
  np.testing.assert_allclose(sq.inception_score(probs, num_splits=2), (1.0, 0.0), atol=1e-6)
  np.testing.assert_allclose(sq.inception_score(probs, num_splits=1), (2.0, 0.0), atol=1e-5)


# ----------------------------------------------------------------------------------------------
# k-NN radii, precision/recall, density/coverage


@pytest.mark.parametrize("k,block_size", [(1, 8), (3, 8), (5, 1024), (3, 37)])
def test_blocked_knn_radii_match_brute_force(k, block_size):
  # 37 rows: blocks of 8 leave a padded last block of 5 rows.
  x = np.random.default_rng(12).normal(size=(37, 5)).astype(np.float32)
  x[12] = x[5]  # a duplicate: it is the other's nearest neighbour, at distance 0
  np.testing.assert_allclose(sq.knn_radii(x, k=k, block_size=block_size),
                             _brute_knn_radii(x, k), rtol=1e-5, atol=1e-5)
  if k == 1:
    assert float(sq.knn_radii(x, k=1, block_size=block_size)[5]) < 1e-3


def test_identical_sets_have_full_precision_recall_and_coverage():
  x = _relu_features(13, 500, d=16, rank=16)
  np.testing.assert_allclose(sq.precision_recall(x, x, k=3, block_size=128), (1.0, 1.0))
  _, coverage = sq.density_coverage(x, x, k=3, block_size=128)
  np.testing.assert_allclose(coverage, 1.0)


def test_far_away_fakes_have_zero_precision_recall_density_and_coverage():
  x = np.random.default_rng(14).normal(size=(300, 8)).astype(np.float32)
  fake = x[:200] + 100.0
  np.testing.assert_allclose(sq.precision_recall(x, fake), (0.0, 0.0))
  np.testing.assert_allclose(sq.density_coverage(x, fake), (0.0, 0.0))


def _column(values) -> np.ndarray:
  return np.asarray(values, np.float32)[:, None]


def test_precision_recall_hand_computed_1d():
  # k = 1 radii: reals 0, 1, 2, 3 -> 1 and 10 -> 7; fakes 0.5 -> 2.1, 2.6 -> 2.1, 5.5 -> 2.9,
  # 18.5 -> 1, 19.5 -> 1.
  real = _column([0.0, 1.0, 2.0, 3.0, 10.0])
  fake = _column([0.5, 2.6, 5.5, 18.5, 19.5])
  # Fakes in a real ball: 0.5 (of 0), 2.6 (of 2), 5.5 (of 10, 4.5 <= 7); not 18.5, 19.5 -> 3/5.
  # Reals in a fake ball: 0, 1 (of 0.5), 2, 3 (of 2.6); 10 is 4.5 > 2.9 from 5.5 -> 4/5.
  np.testing.assert_allclose(sq.precision_recall(real, fake, k=1), (0.6, 0.8), rtol=1e-6)


def test_density_coverage_hand_computed_1d():
  # Real balls (k = 1): [-1, 1], [0, 2], [1, 3], [2, 4], [3, 17].
  real = _column([0.0, 1.0, 2.0, 3.0, 10.0])
  fake = _column([0.5, 1.2, 18.5])
  # Memberships: 0.5 in 2 balls, 1.2 in 2, 18.5 in none -> density 4 / (1 * 3).
  # Nearest fakes: 0 -> 0.5, 1 -> 0.2, 2 -> 0.8 within radius 1; 3 -> 1.8 > 1; 10 -> 8.5 > 7.
  np.testing.assert_allclose(sq.density_coverage(real, fake, k=1), (4.0 / 3.0, 0.6), rtol=1e-6)


def test_manifold_metrics_hand_computed_2d():
  # k = 2. Reals: unit-square corners (2nd-NN radius 1) and (5, 5) (radius sqrt(41) = 6.40).
  real = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [5, 5]], np.float32)
  # Fakes: A in all four corner balls (at most 0.85 away), outside (5, 5)'s (6.51 > 6.40);
  # B in (5, 5)'s ball only (2.83); C is 6.50 from (5, 5) and 1.80 from (1, 0): in none; D far.
  fake = np.array([[0.4, 0.4], [3, 3], [2.5, -1], [-3, -3]], np.float32)
  # Fake radii (2nd NN among fakes): A 3.68, B 4.03, C 4.03, D 5.85. Every corner is within
  # 0.85 of A and (5, 5) is 2.83 from B, so recall is 1.
  np.testing.assert_allclose(sq.precision_recall(real, fake, k=2), (0.5, 1.0), rtol=1e-6)
  # Density (4 + 1) / (2 * 4); coverage: every real has a fake in its ball.
  np.testing.assert_allclose(sq.density_coverage(real, fake, k=2), (0.625, 1.0), rtol=1e-6)


def test_manifold_metrics_match_brute_force_numpy():
  rng = np.random.default_rng(15)
  k = 3
  real = rng.normal(size=(40, 4)).astype(np.float32)
  fake = (rng.normal(size=(30, 4)) * 1.3 + 0.3).astype(np.float32)
  real_radii, fake_radii = _brute_knn_radii(real, k), _brute_knn_radii(fake, k)
  dist = np.sqrt(_sq_dist_matrix(real, fake))  # (real, fake)
  in_real_ball = dist <= real_radii[:, None]
  in_fake_ball = dist <= fake_radii[None, :]
  expected = {
      "precision": in_real_ball.any(axis=0).mean(),
      "recall": in_fake_ball.any(axis=1).mean(),
      "density": in_real_ball.sum() / (k * len(fake)),
      "coverage": in_real_ball.any(axis=1).mean(),
  }
  assert 0.0 < expected["precision"] < 1.0 and 0.0 < expected["coverage"] < 1.0
  # Blocks of 16 divide neither 40 nor 30.
  precision, recall = sq.precision_recall(real, fake, k=k, block_size=16)
  density, coverage = sq.density_coverage(real, fake, k=k, block_size=16)
  got = {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, err_msg=name)


def test_all_metrics_agrees_with_the_individual_metrics():
  rng = np.random.default_rng(16)
  real, fake = _relu_features(17, 300, d=8), _relu_features(18, 250, d=8)
  real_probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(300, 5)), jnp.float32))
  fake_probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(250, 5)), jnp.float32))
  key = jax.random.key(19)
  got = sq.all_metrics(real, real_probs, fake, fake_probs, key, num_subsets=10, subset_size=100,
                       num_splits=5, block_size=64)
  assert set(got) == {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
                      "coverage"}
  assert all(type(value) is float for value in got.values())
  kid_mean, kid_std = sq.kid(real, fake, key, num_subsets=10, subset_size=100)
  is_mean, is_std = sq.inception_score(fake_probs, num_splits=5)
  precision, recall = sq.precision_recall(real, fake, block_size=64)
  density, coverage = sq.density_coverage(real, fake, block_size=64)
  expected = {"fid": sq.fid(real, fake), "kid": kid_mean, "kid_std": kid_std, "is": is_mean,
              "is_std": is_std, "precision": precision, "recall": recall, "density": density,
              "coverage": coverage}
  for name, value in expected.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-6, err_msg=name)
  assert got["fid"] > 0.0 and 0.0 < got["precision"] < 1.0


def test_all_metrics_rejects_mismatched_shapes():
  x = np.zeros((10, 4), np.float32)
  probs = np.full((10, 3), 1.0 / 3.0, np.float32)
  with pytest.raises(ValueError, match="feature sizes"):
    sq.all_metrics(x, probs, np.zeros((10, 5), np.float32), probs, jax.random.key(0))
  with pytest.raises(ValueError, match="probabilities"):
    sq.all_metrics(x, probs, x, np.full((10, 2), 0.5, np.float32), jax.random.key(0))


def test_block_helper_pads_and_trims():
  # Every block sees its own first-row offset, and padded rows never reach the output.
  rows = jnp.arange(11, dtype=jnp.float32)[:, None]
  out = sq._map_row_blocks(lambda b, first: b[:, 0] * 0 + first, rows, block_size=4)
  np.testing.assert_array_equal(out, [0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8])
