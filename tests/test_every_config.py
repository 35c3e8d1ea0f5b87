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
# The default run trains one config of each step family and network kind (the MLP GAN; the MLP
# VAE; the MLP and small CNN classifiers; the RBM; softmax SGD) and every fit config; the convolutional GANs and VAE (40 s each, mostly
# compiling) and the other variants of the same code (datasets, widths, objectives, schedules)
# run on demand (-m slow): all 38 smoke runs take about 9 minutes on 2 cores, more than the
# default run's budget.
SLOW = {"dcgan_mnist", "vae_conv_mnist", "dcgan_fashion_mnist", "wgan_gp_mnist", "cgan_mnist",
        "vae_beta_mnist", "vae_gauss_fashion_mnist", "vae_z2_mnist", "vae_burda1", "vae_burda2",
        "iwae_mnist", "iwae_burda1", "iwae_burda1_cpu", "iwae_burda2", "domain_cnn",
        "vae_burda1_cpu", "lenet5_mnist",  # the MLP VAE's and the small CNN's code again
        "vae_cond_mnist",  # conditioning: test_vae.py and test_bayes_vae.py
        # Each family's own test file runs one of its configs through the loop by default.
        "ssgan_mnist", "m2_mnist", "m1m2_mnist", "bayes_vae_mnist",
        "classrbm_mnist"}  # test_classrbm.py runs each of its variants' smoke runs by default


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


@pytest.mark.parametrize("name", [n if n not in SLOW else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SMOKE])
def test_smoke_run_trains_and_evaluates(name, tmp_path, experiment_script, tfds_data_dir):
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
