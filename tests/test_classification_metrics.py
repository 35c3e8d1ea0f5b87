"""genjax.metrics.classification against hand computations."""

import numpy as np

from genjax.metrics import classification


def test_accuracy_log_loss_and_ece_by_hand():
  p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
  y = np.array([0, 1, 1, 0])
  lp = np.log(p)
  m = classification.summary(lp, y, num_bins=10)
  assert m["accuracy"] == 0.75
  np.testing.assert_allclose(m["log_loss"], -np.mean(np.log([0.9, 0.4, 0.7, 0.55])), rtol=1e-6)
  # Bins by top confidence: 0.9 -> (0.8, 0.9]; 0.6 and 0.55 -> (0.5, 0.6]; 0.7 -> (0.6, 0.7].
  # |1 - 0.9| * 1/4 + |0.5 - 0.575| * 2/4 + |1 - 0.7| * 1/4
  np.testing.assert_allclose(m["ece"], 0.1 / 4 + 0.075 / 2 + 0.3 / 4, rtol=1e-5)


def test_ece_is_zero_when_confidence_matches_accuracy():
  # Eight rows at confidence 0.75, six of them right.
  lp = np.log(np.tile([[0.75, 0.25]], (8, 1)))
  y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
  assert abs(float(classification.expected_calibration_error(lp, y))) < 1e-6
