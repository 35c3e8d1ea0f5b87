"""Every shipped config's smoke variant trains (or fits) and is scored, as the scripts run them.

For each config in experiments/configs: the config as `--config=PATH:ARG` gives it
(genjax.config.load), the loop experiments/train.py calls (train.train_and_evaluate), then
experiments/evaluate.py's `evaluate` with every evaluator of the config (the smoke variants
give the costly ones a smoke budget: genjax.evals.SMOKE_OPTIONS). In-process, to pay Python's
and TensorFlow's start-up once; tests/test_train.py and tests/test_evaluate.py run the
scripts themselves as a user types them.
"""

import json
import math
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"

# config -> its smoke argument. Every config of experiments/configs must be here.
SMOKE = {
    "gan_mnist": "smoke", "dcgan_mnist": "smoke", "dcgan_fashion_mnist": "smoke",
    "wgan_gp_mnist": "smoke", "cgan_mnist": "smoke",
    "vae_mnist": "smoke", "vae_beta_mnist": "smoke", "vae_cond_mnist": "smoke",
    "vae_conv_mnist": "smoke", "vae_gauss_fashion_mnist": "smoke", "vae_z2_mnist": "smoke",
    "vae_burda1": "smoke", "vae_burda1_cpu": "smoke", "vae_burda2": "smoke",
    "iwae_mnist": "smoke", "iwae_burda1": "smoke", "iwae_burda1_cpu": "smoke",
    "iwae_burda2": "smoke",
    "mlp_mnist": "smoke", "lenet5_mnist": "smoke", "cnn_mnist": "smoke", "domain_cnn": "smoke",
    "rbm_mnist": "smoke", "softmax_sgd": "iris,smoke",
    "logistic": "smoke", "linear_svm": "smoke", "kernel_svm": "smoke", "knn": "smoke",
    "gaussian_nb": "smoke", "bernoulli_nb": "smoke", "multinomial_nb": "smoke",
    "categorical_nb": "smoke", "lda": "smoke", "qda": "smoke", "nearest_mean": "smoke",
    "tan": "smoke", "hmm_tagger": "smoke", "crf_chunker": "smoke",
    # Classifiers from generative models, with few labels.
    "ssgan_mnist": "smoke", "m2_mnist": "smoke", "m1m2_mnist": "smoke",
    "bayes_vae_mnist": "100,smoke", "classrbm_mnist": "hybrid,smoke",
}
# Every config's smoke run is in the default run, split into two modules (this one and
# test_every_config_second_half.py) so that pytest-xdist's --dist loadfile gives each half a
# worker. The classification RBM's four variants run in tests/test_classrbm.py, through the
# loop and evaluate.py alike; the configs of experiments/paper_runs.py's runs in
# tests/test_paper_runs.py (this module's check, into the workdirs its smoke table reads back).
PAPER_RUNS = {"vae_burda1", "vae_burda2", "iwae_burda1", "iwae_burda2", "ssgan_mnist",
              "m2_mnist", "m1m2_mnist", "rbm_mnist"}
ELSEWHERE = {"classrbm_mnist", *PAPER_RUNS}
NAMES = sorted(set(SMOKE) - ELSEWHERE)
FIRST_HALF, SECOND_HALF = NAMES[::2], NAMES[1::2]


@pytest.fixture(scope="module", autouse=True)
def read_each_split_once():
  """genjax.data.splits.load, remembered for the module: the configs share a few datasets, and
  reading MNIST from TFDS takes seconds each time. (The batch size is not part of a split.)"""
  from conftest import remembering_split_loader

  from genjax.data import splits
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(splits, "load", remembering_split_loader(splits.load))
    yield


def test_every_config_has_a_smoke_run():
  shipped = {p.stem for p in CONFIGS.glob("*.py")}
  assert shipped == set(SMOKE), f"missing: {shipped - set(SMOKE)}; gone: {set(SMOKE) - shipped}"


def _finite_metrics(split_results: dict) -> dict:
  """The numbers of a split's results, wall-clock timings left out."""
  return {k: v for k, v in split_results.items()
          if isinstance(v, float | int) and not k.endswith("_seconds")}


@pytest.mark.parametrize("name", FIRST_HALF)
def test_smoke_run_trains_and_evaluates(name, tmp_path, experiment_script, tfds_data_dir):
  check_smoke_run(name, tmp_path, experiment_script, tfds_data_dir)


def check_smoke_run(name, tmp_path, experiment_script, tfds_data_dir):
  """Train (or fit) the config's smoke variant through the loop, then score its workdir with
  evaluate.py: the workdir contract, finite metrics, every evaluator run, the same numbers."""
  from genjax import config as gconfig
  from genjax import evals, train
  from genjax import family as family_lib

  del tfds_data_dir  # the configs read TFDS_DATA_DIR from the environment
  config = gconfig.load(f"{CONFIGS / name}.py:{SMOKE[name]}")
  config.unlock()
  if "progress" in config.get("train", {}):
    config.train.progress = False
    config.train.tensorboard = False
  workdir = tmp_path / name
  trained = train.train_and_evaluate(config, str(workdir))

  # The workdir contract: config.json, checkpoints, results.json (metrics.jsonl where training
  # iterates: every step family logs; a fit family logs only if its fit iterates).
  assert json.loads((workdir / "config.json").read_text())["family"] == config.family
  assert any((workdir / "checkpoints").iterdir())
  family = family_lib.load(config.family)
  if family_lib.is_step(family):
    assert (workdir / "metrics.jsonl").read_text().strip()
  split = next(k for k in trained if isinstance(trained[k], dict) and k in ("test", "validation"))
  assert _finite_metrics(trained[split]), trained

  scored = experiment_script("evaluate").evaluate(str(workdir))
  evaluators = evals.resolve(config, family)
  assert set(scored["seconds"]) == set(evaluators), "an evaluator was skipped"
  for name_, metrics in scored.items():
    if isinstance(metrics, dict) and name_ not in ("seconds", "details"):
      bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
      assert not bad, f"{name_}: {bad}"
  # The loop's numbers are evaluate.py's numbers (the same checkpoint, the same keys).
  on_disk = json.loads((workdir / "results.json").read_text())
  for k, v in _finite_metrics(trained[split]).items():
    if k in scored.get(split, {}):
      assert math.isclose(scored[split][k], v, rel_tol=1e-4, abs_tol=1e-6), (k, scored[split][k], v)
    assert k in on_disk[split]
