"""experiments/classify.py (a command line over the classical fit family): results.json against
the metrics recomputed by hand, the preprocessing it names, hyper-parameter parsing, errors, and
the command line on MNIST's raw IDX files."""

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


def test_config_overrides_set_hyperparameters_and_data_fields(classify):
  config = classify.build_config("kernel_svm", "wine", {}, overrides={
      "model.hp.l2": "2e-6", "model.hp.num_features": "300", "data.train_size": "50"})
  assert config.model.hp.l2 == 2e-6 and config.model.hp.num_features == 300
  assert config.data.train_size == 50
  with pytest.raises(ValueError, match="no field 'model.hp.C'"):
    classify.build_config("logistic", "wine", {}, overrides={"model.hp.C": "1"})


def test_preprocessing_uses_training_statistics():
  import jax.numpy as jnp

  from genjax.data import images
  from genjax.data.splits import scale_features
  x_tr = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]], np.float32)
  x_te = np.array([[6.0, 7.0]], np.float32)
  a, b = scale_features(x_tr, x_tr, "standardize"), scale_features(x_tr, x_te, "standardize")
  np.testing.assert_allclose(a[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
  np.testing.assert_allclose(b, [[2.4494898, 2.0]], rtol=1e-6)  # constant feature: centred only
  a, b = scale_features(x_tr, x_tr, "unit"), scale_features(x_tr, x_te, "unit")
  np.testing.assert_allclose(a[:, 0], [0.0, 0.5, 1.0])
  np.testing.assert_allclose(b, [[1.5, 2.0]])
  pixels = jnp.array([0, 63, 64, 127, 128, 191, 192, 255], jnp.uint8)
  np.testing.assert_array_equal(images.preprocess(pixels, "quantize"), [0, 0, 1, 1, 2, 2, 3, 3])
  np.testing.assert_array_equal(images.preprocess(pixels, "none"), np.asarray(pixels, np.float32))


def test_results_match_metrics_recomputed_by_hand(classify, tmp_path):
  results = classify.run("knn", "wine", str(tmp_path), {"k": 4, "smoothing": 0.05},
                         test_fraction=0.3, seed=3)
  assert json.loads((tmp_path / "results.json").read_text()) == results
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["data"]["preprocess"] == "standardize" and config["model"]["hp"]["k"] == 4
  # Recompute from the same split with scikit-learn's kNN (same neighbours, same votes).
  from sklearn.neighbors import KNeighborsClassifier

  from genjax.data import tabular
  from genjax.data.splits import scale_features
  data = tabular.load("wine")
  train, test = tabular.train_test_split(data, len(data) - round(0.3 * len(data)), 3)
  x_tr, x_te = (scale_features(train.x, x, "standardize") for x in (train.x, test.x))
  y_te = test.y
  assert results["num_train"] == len(train) == 125
  assert results["test"]["num_examples"] == len(y_te) == 53
  share = KNeighborsClassifier(4).fit(x_tr, train.y).predict_proba(x_te)
  p = (share + 0.05) / (1 + 3 * 0.05)
  scores = results["test"]
  assert scores["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y_te))
  assert scores["log_loss"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y_te)), y_te])),
                                             rel=1e-5)
  assert 0 <= scores["ece"] <= 1 and results["fit_seconds"] > 0
  assert scores["predict_seconds"] > 0


def test_unknown_names_fail_before_loading_data(classify, tmp_path):
  with pytest.raises(ValueError, match="unknown classical model"):
    classify.run("svm_rbf", "mnist", str(tmp_path), {})
  with pytest.raises(ValueError, match="no hyper-parameters"):
    classify.run("logistic", "mnist", str(tmp_path), {"C": 1.0})
  with pytest.raises(ValueError, match="data.preprocess 'standardize'"):
    classify.run("logistic", "mnist", str(tmp_path), {}, "standardize")
  assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.skipif(not IDX_DIR.is_dir(), reason="needs ../shared/data/mnist")
def test_command_line_on_mnist(tmp_path, subprocess_env):
  proc = subprocess.run(
      [sys.executable, str(SCRIPT), "--model=knn", "--dataset=mnist", "--config.model.hp.k=1",
       "--config.data.train_size=1000", f"--config.data.idx_dir={IDX_DIR}",
       f"--workdir={tmp_path}"],
      cwd=ROOT, env=subprocess_env(1), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.loads((tmp_path / "results.json").read_text())
  config = json.loads((tmp_path / "config.json").read_text())
  assert results["test"]["num_examples"] == 10000 and config["data"]["preprocess"] == "unit"
  fitted = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())]
  assert fitted == [{"step": 1, "num_train": 1000.0}]
  assert 0.8 < results["test"]["accuracy"] < 0.95  # 1-NN on 1000 MNIST images: about 88 %
  assert "accuracy=" in proc.stdout
