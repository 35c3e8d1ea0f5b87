"""Every step family trains the same on eight CPU devices as on one (genjax.conformance).

XLA_FLAGS must give the host platform eight devices before JAX starts, so one subprocess (this
file run as a script) runs the cases and writes {case: {mode: problems}}; the tests read it.
One config per step family runs by default, the family's other shipped configs under -m slow.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
NUM_DEVICES = 8
BATCH = 16  # 2 examples per device: batch norm must still see all 16

# case -> (config, overrides). The default cases cover each family's data-parallel surface
# with the networks that compile fastest: cross-device batch norm (the MLP GAN's generator),
# per-example noise and dropout drawn by global example index (vae's dynamic binarisation, the
# MLP classifier's dropout), persistent chains (rbm), per-example label draws in a Gibbs chain
# and an exact gradient blended with a CD one (classrbm's hybrid). The slow ones add the
# convolutional networks, several critic steps per step (wgan_gp) and labels (cgan).
CASES = {
    "gan_mlp": ("gan_mnist.py:smoke", {}),
    "vae": ("vae_mnist.py:smoke", {}),
    "neural_classifier_mlp": ("mlp_mnist.py:smoke", {}),
    "rbm": ("rbm_mnist.py:smoke", {}),
    "classrbm_hybrid": ("classrbm_mnist.py:hybrid,smoke", {}),
    "softmax_sgd": ("softmax_sgd.py:iris,smoke", {}),
}
SLOW_CASES = {
    "gan_dcgan": ("dcgan_mnist.py:smoke", {}),
    "neural_classifier_cnn": ("cnn_mnist.py:smoke", {}),
    "gan_wgan_gp": ("wgan_gp_mnist.py:smoke", {"model.n_critic": 2}),
    "gan_cgan": ("cgan_mnist.py:smoke", {}),
    "vae_conv": ("vae_conv_mnist.py:smoke", {}),
    "vae_cond": ("vae_cond_mnist.py:smoke", {}),
    "iwae": ("iwae_mnist.py:smoke", {}),
    "neural_classifier_lenet5": ("lenet5_mnist.py:smoke", {}),
    # Semi-supervised steps: an unlabelled and a labelled batch, both split over the devices.
    "ssgan": ("ssgan_mnist.py:smoke", {}),
    "bayes_vae_semi": ("bayes_vae_mnist.py:100,smoke", {"data.labelled_batch_size": 16}),
    # Persistent (x, y) chains shared by the labelled and the unlabelled log p(x) terms.
    "classrbm_semi_pcd": ("classrbm_mnist.py:hybrid,100,smoke",
                          {"model.method": "pcd", "data.labelled_batch_size": 16}),
}


def _config(case: str):
  from conftest import apply_overrides

  from genjax import config as gconfig
  spec, overrides = {**CASES, **SLOW_CASES}[case]
  config = gconfig.load(str(CONFIGS / spec))
  config.unlock()
  batch = {"data.batch_size": BATCH} if "batch_size" in config.data else {}
  apply_overrides(config, {**batch, **overrides})
  return config


def worker(out_path: Path, cases: list[str]) -> None:
  """Runs with eight CPU devices: each case's check, a broken family's, and DataParallel's
  choices, to out_path as JSON."""
  import jax
  from conftest import remembering_split_loader

  from genjax import conformance
  from genjax.data import splits
  from genjax.families import softmax_sgd
  from genjax.parallel import DataParallel
  assert jax.device_count() == NUM_DEVICES
  splits.load = remembering_split_loader(splits.load)
  out = {"cases": {}, "out_dir": str(out_path.parent), "devices": jax.device_count(),
         "auto_many": DataParallel("auto").mode,
         "auto_one": DataParallel("auto", devices=jax.local_devices()[:1]).mode,
         "per_device_batch": DataParallel("pmap").check_batch_size(64)}
  try:
    DataParallel("pmap").check_batch_size(100)
  except ValueError as e:
    out["batch_error"] = str(e)
  for case in cases:
    out["cases"][case] = conformance.check(_config(case))
    out_path.write_text(json.dumps(out))  # what finished, should a later case fail

  # The whole loop (checkpoints, metrics.jsonl, results.json) under each mode.
  from genjax import train
  for mode in ("none", *conformance.MODES):
    config = _config("softmax_sgd")
    config.parallel, config.train.progress = mode, False
    train.train_and_evaluate(config, str(out_path.parent / "loop" / mode))

  # The check can fail: the same family with its train step cut off from the device axis
  # (gradients averaged per device, not over the global batch) does not conform.
  right = softmax_sgd.train_step
  softmax_sgd.train_step = lambda s, b, k, axis_name=None: right(s, b, k, axis_name=None)
  try:
    out["broken"] = conformance.check(_config("softmax_sgd"))
  finally:
    softmax_sgd.train_step = right
  out_path.write_text(json.dumps(out))


def _start(tmp_path_factory, subprocess_env, cases: list[str]):
  out_path = tmp_path_factory.mktemp("conformance") / "out.json"
  log = open(out_path.with_suffix(".log"), "w")
  process = subprocess.Popen([sys.executable, __file__, str(out_path), ",".join(cases)],
                             env=subprocess_env(NUM_DEVICES), cwd=REPO_ROOT, stdout=log,
                             stderr=subprocess.STDOUT)
  return process, out_path, log


def _finish(started) -> dict:
  process, out_path, log = started
  returncode = process.wait(timeout=900)
  log.close()
  text = out_path.with_suffix(".log").read_text()
  assert returncode == 0, f"8-device worker failed ({returncode}):\n{text[-6000:]}"
  return json.loads(out_path.read_text())


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, subprocess_env) -> dict:
  return _finish(_start(tmp_path_factory, subprocess_env, list(CASES)))


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory, subprocess_env) -> dict:
  return _finish(_start(tmp_path_factory, subprocess_env, list(SLOW_CASES)))


@pytest.mark.parametrize("case", list(CASES))
def test_step_family_conforms_on_eight_devices(default_run, case):
  for mode, problems in default_run["cases"][case].items():
    assert problems == [], f"{case} under {mode}:\n" + "\n".join(problems)
  assert set(default_run["cases"][case]) == {"pmap", "shard_map"}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SLOW_CASES))
def test_more_configs_conform_on_eight_devices(slow_run, case):
  for mode, problems in slow_run["cases"][case].items():
    assert problems == [], f"{case} under {mode}:\n" + "\n".join(problems)


@pytest.mark.parametrize("mode", ["pmap", "shard_map"])
def test_the_loop_writes_the_one_device_run(default_run, mode):
  """experiments/train.py's loop under `mode` on eight devices: the same metrics.jsonl and
  results.json as parallel=none on one (SGD on a convex loss: no Adam amplification)."""
  from genjax.writers import read_metrics
  loop = Path(default_run["out_dir"]) / "loop"
  want, got = read_metrics(loop / "none" / "metrics.jsonl"), read_metrics(loop / mode /
                                                                          "metrics.jsonl")
  assert [r["step"] for r in got] == [r["step"] for r in want] and len(want) >= 2
  for g, w in zip(got, want, strict=True):
    assert g.keys() == w.keys()
    np.testing.assert_allclose([g[k] for k in w], [w[k] for k in w], rtol=1e-5)
  want_results = json.loads((loop / "none" / "results.json").read_text())
  got_results = json.loads((loop / mode / "results.json").read_text())
  assert got_results["step"] == want_results["step"]
  for k, v in want_results["test"].items():
    if k.endswith("_seconds"):  # wall clock
      continue
    np.testing.assert_allclose(got_results["test"][k], v, rtol=1e-5, atol=1e-6, err_msg=k)
  assert json.loads((loop / mode / "config.json").read_text())["parallel"] == mode


def test_a_step_without_the_device_axis_does_not_conform(default_run):
  for mode, problems in default_run["broken"].items():
    assert problems, mode
    assert any("devices' copies" in p or "differ" in p for p in problems), problems


def test_data_parallel_choices_on_eight_devices(default_run):
  assert default_run["devices"] == NUM_DEVICES
  assert default_run["auto_many"] == "pmap" and default_run["auto_one"] == "none"
  assert default_run["per_device_batch"] == 64 // NUM_DEVICES
  message = default_run["batch_error"]
  assert "batch size 100" in message and "8 devices" in message, message


if __name__ == "__main__":
  worker(Path(sys.argv[1]), sys.argv[2].split(","))
