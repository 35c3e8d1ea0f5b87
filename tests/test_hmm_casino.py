"""experiments/hmm_casino.py: fitted states matched to the true ones, finished results read back
only under the same settings."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def casino(experiment_script):
  return experiment_script("hmm_casino")


def test_the_fitted_states_are_relabelled_to_the_closest_true_rows(casino):
  B_true = np.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
  B_fit = B_true[[1, 0]] + np.random.default_rng(0).uniform(-0.02, 0.02, B_true.shape)
  assert casino.best_permutation(B_fit, B_true) == (1, 0)
  assert casino.best_permutation(B_true, B_true) == (0, 1)


def test_results_are_read_back_only_under_the_same_settings(casino, tmp_path):
  settings = {"num_sequences": 3, "length": 50, "restarts": 1, "iters": 5, "tol": 1e-7,
              "seed": 0}
  assert set(settings) == set(casino.SETTINGS)
  assert casino.finished(str(tmp_path), settings) is None  # nothing there yet
  results = {**settings, "max_abs_error_emission": 0.1}
  (tmp_path / "results.json").write_text(json.dumps(results))
  assert casino.finished(str(tmp_path), settings) == results
  assert casino.finished(str(tmp_path), {**settings, "seed": 1}) is None
