"""k-nearest neighbours against brute-force NumPy: ties, blocks that do not divide N, cosine,
distance weights, vote probabilities."""

import numpy as np
import pytest

from genjax.classical import knn


def brute_force(x_tr, y_tr, x_te, k, metric, weights, num_classes):
  """Neighbours by a stable sort of exact distances, then (weighted) votes."""
  x_tr, x_te = x_tr.astype(np.float64), x_te.astype(np.float64)
  if metric == "cosine":
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
    d = 1.0 - unit(x_te) @ unit(x_tr).T
  else:
    d = np.sqrt(((x_te[:, None, :] - x_tr[None, :, :]) ** 2).sum(-1))
  idx = np.argsort(d, axis=1, kind="stable")[:, :k]
  dk = np.take_along_axis(d, idx, 1)
  votes = np.zeros((len(x_te), num_classes))
  for r in range(len(x_te)):
    if weights == "uniform":
      w = np.ones(k)
    elif np.any(dk[r] == 0):
      w = (dk[r] == 0).astype(float)
    else:
      w = 1.0 / dk[r]
    np.add.at(votes[r], y_tr[idx[r]], w)
  return dk, idx, votes


@pytest.fixture(scope="module")
def integer_data():
  # Small integers: every distance is exact in float32, and many are tied.
  rng = np.random.default_rng(0)
  x_tr = rng.integers(0, 3, (37, 4)).astype(np.float32)
  y_tr = rng.integers(0, 3, 37).astype(np.int32)
  x_te = np.concatenate([rng.integers(0, 3, (10, 4)), x_tr[:3]]).astype(np.float32)
  return x_tr, y_tr, x_te


@pytest.mark.parametrize("train_block,test_block", [(10, 4), (37, 13), (8192, 1024)])
def test_l2_neighbours_with_ties_and_ragged_blocks(integer_data, train_block, test_block):
  x_tr, y_tr, x_te = integer_data
  params = knn.fit(x_tr, y_tr, 3, k=5, train_block=train_block, test_block=test_block)
  d, i = knn.neighbours(params, x_te)
  d_ref, i_ref, votes = brute_force(x_tr, y_tr, x_te, 5, "l2", "uniform", 3)
  np.testing.assert_array_equal(np.asarray(i), i_ref)
  np.testing.assert_allclose(np.asarray(d), d_ref, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(knn.predict(params, x_te)), np.argmax(votes, 1))


@pytest.mark.parametrize("metric,weights", [("l2", "distance"), ("cosine", "uniform"),
                                            ("cosine", "distance")])
def test_metrics_weights_and_probabilities(metric, weights):
  rng = np.random.default_rng(1)
  x_tr = rng.normal(size=(53, 6)).astype(np.float32)
  y_tr = rng.integers(0, 4, 53).astype(np.int32)
  x_te = np.concatenate([rng.normal(size=(20, 6)), x_tr[:2]]).astype(np.float32)
  params = knn.fit(x_tr, y_tr, 4, k=4, metric=metric, weights=weights, train_block=16,
                   test_block=7, smoothing=0.01)
  d, i = knn.neighbours(params, x_te)
  d_ref, i_ref, votes = brute_force(x_tr, y_tr, x_te, 4, metric, weights, 4)
  np.testing.assert_array_equal(np.asarray(i), i_ref)
  np.testing.assert_allclose(np.asarray(d), d_ref, atol=2e-3)
  share = votes / votes.sum(1, keepdims=True)
  np.testing.assert_allclose(np.exp(np.asarray(knn.log_proba(params, x_te))),
                             (share + 0.01) / (1 + 4 * 0.01), rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(knn.predict(params, x_te)), np.argmax(votes, 1))
  if weights == "distance":  # an exact training point is classified by its own label
    np.testing.assert_array_equal(np.asarray(knn.predict(params, x_te[-2:])), y_tr[:2])


def test_bad_settings_are_refused():
  x = np.zeros((5, 2), np.float32)
  with pytest.raises(ValueError, match="k must be"):
    knn.fit(x, np.zeros(5, np.int32), 2, k=6)
  with pytest.raises(ValueError, match="metric"):
    knn.fit(x, np.zeros(5, np.int32), 2, metric="l1")
