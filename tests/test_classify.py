"""experiments/classify.py: results.json against the metrics recomputed by hand, preprocessing,
hyper-parameter parsing, errors, and the command line on MNIST's raw IDX files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "classify.py"
IDX_DIR = ROOT.parent / "shared" / "data" / "mnist"

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def classify(experiment_script):
  return experiment_script("classify")


def test_parse_hyperparameters(classify):
  assert classify.parse_hyperparameters("l2=1e-4, kernel=nystroem,k=3,priors=None") == {
      "l2": 1e-4, "kernel": "nystroem", "k": 3, "priors": None}
  assert classify.parse_hyperparameters("") == {}
  with pytest.raises(ValueError, match="name=value"):
    classify.parse_hyperparameters("l2")


def test_preprocessing_uses_training_statistics(classify):
  x_tr = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]], np.float32)
  x_te = np.array([[6.0, 7.0]], np.float32)
  a, b = classify.preprocess(x_tr, x_te, "standardize", False)
  np.testing.assert_allclose(a[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
  np.testing.assert_allclose(b, [[2.4494898, 2.0]], rtol=1e-6)  # constant feature: centred only
  a, b = classify.preprocess(x_tr, x_te, "unit", False)
  np.testing.assert_allclose(a[:, 0], [0.0, 0.5, 1.0])
  np.testing.assert_allclose(b, [[1.5, 2.0]])
  a, _ = classify.preprocess(np.array([[0.0], [255.0]]), x_te[:, :1], "quantize", True)
  np.testing.assert_array_equal(a[:, 0], [0, 3])


def test_results_match_metrics_recomputed_by_hand(classify, tmp_path):
  results = classify.run("knn", "wine", str(tmp_path), {"k": 4, "smoothing": 0.05},
                         test_fraction=0.3, seed=3)
  assert json.loads((tmp_path / "results.json").read_text()) == results
  assert results["preprocess"] == "standardize" and results["hyperparameters"]["k"] == 4
  # Recompute from the same split with scikit-learn's kNN (same neighbours, same votes).
  from sklearn.neighbors import KNeighborsClassifier
  x_tr, y_tr, x_te, y_te, _ = classify.load_dataset("wine", 0.3, 3)
  x_tr, x_te = classify.preprocess(x_tr, x_te, "standardize", False)
  assert results["num_train"] == len(y_tr) == 125 and results["num_test"] == len(y_te) == 53
  share = KNeighborsClassifier(4).fit(x_tr, y_tr).predict_proba(x_te)
  p = (share + 0.05) / (1 + 3 * 0.05)
  assert results["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y_te))
  assert results["log_loss"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y_te)), y_te])),
                                              rel=1e-5)
  assert 0 <= results["ece"] <= 1 and results["fit_seconds"] > 0


def test_unknown_names_fail_before_loading_data(classify, tmp_path):
  with pytest.raises(ValueError, match="unknown model"):
    classify.run("svm_rbf", "mnist", str(tmp_path), {})
  with pytest.raises(ValueError, match="no hyper-parameters"):
    classify.run("logistic", "mnist", str(tmp_path), {"C": 1.0})


@pytest.mark.skipif(not IDX_DIR.is_dir(), reason="needs ../shared/data/mnist")
def test_command_line_on_mnist(tmp_path, subprocess_env):
  proc = subprocess.run(
      [sys.executable, str(SCRIPT), "--model=knn", "--dataset=mnist", "--hp=k=1",
       "--train_size=1000", f"--idx_dir={IDX_DIR}", f"--workdir={tmp_path}"],
      cwd=ROOT, env=subprocess_env(1), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["num_train"] == 1000 and results["num_test"] == 10000
  assert results["preprocess"] == "unit"
  assert 0.8 < results["accuracy"] < 0.95  # 1-NN on 1000 MNIST images: about 88 %
  assert "accuracy=" in proc.stdout
