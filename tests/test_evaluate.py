"""experiments/evaluate.py scores any workdir through the config's evaluators alone: a GAN and a
VAE smoke run get their metric names in results.json, and no evaluation code asks a state
what it holds."""

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

EVALUATE = REPO_ROOT / "experiments" / "evaluate.py"
VAE_CONFIG = REPO_ROOT / "experiments" / "configs" / "vae_mnist.py"


def test_no_evaluation_code_asks_a_state_what_it_holds():
  done = subprocess.run(["git", "grep", "-n", "hasattr(state", "--", "experiments", "genjax"],
                        cwd=REPO_ROOT, capture_output=True, text=True)
  assert done.returncode == 1 and done.stdout == "", done.stdout


def _evaluate(workdir, subprocess_env, *flags):
  done = subprocess.run([sys.executable, str(EVALUATE), f"--workdir={workdir}", *flags],
                        cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads((workdir / "results.json").read_text())


@pytest.mark.slow  # ~3 min: a smoke run, then 200 samples through the domain classifier
def test_gan_workdir(tmp_path, run_train_cli, subprocess_env):
  workdir = tmp_path / "gan"
  done = run_train_cli(workdir, {"train.tensorboard": False})
  assert done.returncode == 0, done.stderr[-3000:]
  trained = json.loads((workdir / "results.json").read_text())
  assert "fid" not in trained["test"]  # sample quality is left to evaluate.py
  results = _evaluate(workdir, subprocess_env, "--num_samples=200")
  test = results["test"]
  names = ["fid", "kid", "inception_score", "precision", "recall", "density", "coverage"]
  assert set(test) >= {"d_loss", "g_loss", *names, *(n + "_floor" for n in names)}
  assert test["num_samples"] == 200 and test["fid"] > test["fid_floor"] > 0
  assert set(results["seconds"]) == {"metrics", "grids", "sample_grids", "sample_quality"}
  assert (workdir / "samples" / f"eval_samples_{results['step']:08d}.png").exists()
  # --evals runs only what it names, merged into the results of the same step.
  again = _evaluate(workdir, subprocess_env, "--evals=metrics")
  assert set(again["seconds"]) == set(results["seconds"]) and again["test"]["fid"] == test["fid"]


@pytest.mark.slow  # ~2 min: a smoke run, then a k = 10 NLL of 50 test images
def test_vae_workdir(tmp_path, run_train_cli, subprocess_env):
  workdir = tmp_path / "vae"
  done = run_train_cli(workdir, {"train.tensorboard": False}, config=VAE_CONFIG)
  assert done.returncode == 0, done.stderr[-3000:]
  results = _evaluate(workdir, subprocess_env, "--nll_k=10", "--nll_examples=50",
                      "--nll_batch=25")
  test = results["test"]
  assert set(test) >= {"elbo", "iwae", "nll", "nll_stderr", "active_units"}
  assert test["nll_k"] == 10 and test["nll_examples"] == 50
  # The k = 10 estimate on 50 images against the eval_k bound on all: the same scale.
  assert 0 < test["nll"] < 2 * -test["elbo"] and 0 <= test["active_units"]
  names = {p.name.rsplit("_", 1)[0] for p in (workdir / "samples").glob("eval_*.png")}
  assert names >= {"eval_prior_samples", "eval_reconstructions", "eval_interpolations"}
  skipped = _evaluate(workdir, subprocess_env, "--nll_k=0", "--evals=nll")
  assert skipped["test"]["nll"] == test["nll"]  # nothing new: the earlier figure is kept
