"""experiments/generative_samples.py: the models fitted through their configs into workdirs, the
shrinkage picked on held-out images as the core scores them, finished workdirs read back, and
the old flags and bad names refused in one line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "generative_samples.py"
IDX_DIR = ROOT.parent / "shared" / "data" / "mnist"
TRAIN_SIZE, VALIDATION_SIZE, GRID = 600, 400, ["0.01", "0.5"]

needs_idx = pytest.mark.skipif(not IDX_DIR.is_dir(), reason="needs ../shared/data/mnist")


@pytest.fixture(scope="module")
def script(experiment_script):
  return experiment_script("generative_samples")


@pytest.fixture(scope="module")
def study(script, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("generative")
  overrides = {"data.idx_dir": str(IDX_DIR), "data.train_size": str(TRAIN_SIZE)}
  results = script.run("mnist", str(workdir), ["lda", "categorical_nb"], overrides,
                       per_class=3, shrinkage_grid=GRID, validation_size=VALIDATION_SIZE)
  return workdir, overrides, results


def lda_validation_accuracy(shrinkage: float) -> float:
  """LDA's accuracy on the last VALIDATION_SIZE training images, fitted by the core on the
  config's seeded TRAIN_SIZE-row subset of the others (pixels in [0, 1])."""
  import jax.numpy as jnp

  from genjax.classical import lda
  from genjax.data import idx
  from genjax.families import classical
  images, labels = idx.read_split_files(str(IDX_DIR), "train")
  x = images.reshape(len(images), -1).astype(np.float32) / 255.0
  n = len(labels) - VALIDATION_SIZE
  keep = classical.subset_indices(n, TRAIN_SIZE, 0)
  params = lda.fit(jnp.asarray(x[:n][keep]), jnp.asarray(labels[:n][keep], jnp.int32), 10,
                   shrinkage=shrinkage)
  return float(np.mean(np.asarray(lda.predict(params, jnp.asarray(x[n:]))) == labels[n:]))


@needs_idx
def test_shrinkage_is_picked_by_the_cores_validation_accuracy(study):
  workdir, _, results = study
  found = results["models"]["lda"]["validation_accuracy"]
  # One prediction may flip where float32 sums of the two fits round differently.
  for value in GRID:
    assert found[value] == pytest.approx(lda_validation_accuracy(float(value)),
                                         abs=1.01 / VALIDATION_SIZE)
  best = max(GRID, key=found.get)
  assert results["models"]["lda"]["hyperparameters"]["shrinkage"] == float(best)
  config = json.loads((workdir / "lda" / "config.json").read_text())
  assert config["model"]["hp"]["shrinkage"] == float(best)
  assert config["data"]["train_size"] == TRAIN_SIZE and config["data"]["validation_size"] == 0


@needs_idx
def test_each_model_is_its_workdirs_results_with_a_grid_of_every_class(study):
  workdir, _, results = study
  assert json.loads((workdir / "results.json").read_text()) == results
  for name in ("lda", "categorical_nb"):
    row = results["models"][name]
    scores = json.loads((workdir / name / "results.json").read_text())["test"]
    assert {k: row[k] for k in ("accuracy", "log_loss", "ece")} == {
        k: scores[k] for k in ("accuracy", "log_loss", "ece")}
    from PIL import Image
    grid = np.asarray(Image.open(row["samples"]))
    assert grid.shape[0] > 3 * grid.shape[1]  # 10 rows of 3 samples
  # Categorical NB's config quantizes pixels into 4 grey levels, which its fit counted.
  assert results["models"]["categorical_nb"]["hyperparameters"]["num_categories"] == 4


@needs_idx
def test_a_second_run_reads_the_finished_workdirs_back(script, study, monkeypatch):
  workdir, overrides, results = study
  from genjax import train

  def refuse(*args, **kwargs):
    raise AssertionError("a finished workdir was fitted again")

  monkeypatch.setattr(train, "train_and_evaluate", refuse)
  again = script.run("mnist", str(workdir), ["lda", "categorical_nb"], overrides, per_class=3,
                     shrinkage_grid=GRID, validation_size=VALIDATION_SIZE)
  assert again == results


def test_bad_names_fail_before_anything_is_fitted(script, tmp_path):
  with pytest.raises(ValueError, match="unknown model 'knn'"):
    script.run("mnist", str(tmp_path), ["lda", "knn"])
  with pytest.raises(ValueError, match="--dataset must be one of"):
    script.run("iris", str(tmp_path), ["lda"])
  with pytest.raises(ValueError, match="no field 'model.hp.nope'"):
    script.run("mnist", str(tmp_path), ["lda@model.hp.nope=1"])
  assert not any(tmp_path.iterdir())


def test_an_old_flag_names_its_new_form(subprocess_env):
  proc = subprocess.run([sys.executable, str(SCRIPT), "--lda_shrinkage=0.3"], cwd=ROOT,
                        env=subprocess_env(1), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip() == ("error: --lda_shrinkage is now "
                                 "--models=lda@model.hp.shrinkage=VALUE")
