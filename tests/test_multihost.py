"""Multi-process training for real: `python -m genjax.launch --processes=2 --cpu_devices=K` starts
two JAX processes on this machine (jax.distributed on localhost, CPU collectives through gloo)
and their run equals one process with 2K devices, and one device, within float32 reduction
order. Only process 0 writes logs; the orbax checkpoint written by both is restored by both;
killing one process ends the run at once and the same command resumes.

The softmax run (seconds) is in the default suite; the GAN (batch norm across processes) and
VAE runs compile a conv-free network in each of two processes on 2 cores: -m slow.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, TRAIN_SCRIPT, checkpoint_steps, wait_for_a_checkpoint

from genjax import writers

CONFIGS = REPO_ROOT / "experiments" / "configs"
QUIET = {"train.progress": False, "train.tensorboard": False}


def _args(config: str, workdir: Path, overrides: dict) -> list[str]:
  return [str(TRAIN_SCRIPT), f"--config={CONFIGS / config}", f"--workdir={workdir}",
          *(f"--config.{k}={v}" for k, v in {**QUIET, **overrides}.items())]


def launch(config, workdir, overrides, subprocess_env, processes=2, cpu_devices=2,
           timeout=600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "genjax.launch", f"--processes={processes}",
                         f"--cpu_devices={cpu_devices}", "--", sys.executable,
                         *_args(config, workdir, overrides)],
                        cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True,
                        timeout=timeout)


def single(config, workdir, overrides, subprocess_env, devices) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *_args(config, workdir, overrides)], cwd=REPO_ROOT,
                        env=subprocess_env(devices), capture_output=True, text=True, timeout=600)


def assert_same_metrics(got: Path, want: Path, rtol: float) -> None:
  a, b = (writers.read_metrics(str(p / "metrics.jsonl")) for p in (got, want))
  assert [r["step"] for r in a] == [r["step"] for r in b]  # each step logged once
  for ra, rb in zip(a, b, strict=True):
    assert ra.keys() == rb.keys()
    for k in ra:
      np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=rtol, err_msg=f"{k} {ra['step']}")


def test_two_processes_equal_one(tmp_path, subprocess_env):
  """Softmax SGD on iris, 40 steps of batch 16: 2 processes x 2 devices, 1 x 4 and 1 x 1 log the
  same losses. (Float32 sums of 4 per-device means in another order: ~1e-7 relative per step;
  rtol 1e-5 leaves room for 40 steps of a contracting SGD.)"""
  two, four, one = tmp_path / "two", tmp_path / "four", tmp_path / "one"
  done = launch("softmax_sgd.py:iris,smoke", two, {}, subprocess_env)
  assert done.returncode == 0, done.stderr[-3000:]
  for path, devices in ((four, 4), (one, 1)):
    ran = single("softmax_sgd.py:iris,smoke", path, {}, subprocess_env, devices)
    assert ran.returncode == 0, ran.stderr[-3000:]
  assert_same_metrics(two, four, 1e-5)
  assert_same_metrics(two, one, 1e-5)
  # Both processes evaluated; process 0 alone wrote: one results.json, one record per log step.
  lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
  assert len(lines) == 2
  untimed = [{k: v for k, v in x["test"].items() if not k.endswith("_seconds")} for x in lines]
  assert untimed[0] == untimed[1]
  results = json.loads((two / "results.json").read_text())
  np.testing.assert_allclose(results["test"]["log_loss"],
                             json.loads((four / "results.json").read_text())["test"]["log_loss"],
                             rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["gan_mnist.py:smoke", "vae_mnist.py:smoke"])
def test_two_processes_train_gan_and_vae_like_one_and_resume(config, tmp_path, subprocess_env):
  """2 x 4 devices for 2 steps, checkpointed by both processes, then resumed by both to 4: the
  losses of 1 x 8 and 1 x 1 devices (4 steps of a GAN with batch norm across the 8 devices;
  rtol 1e-4 as the conformance harness allows a few steps of Adam)."""
  run = {"train.num_steps": 4, "train.log_every": 2, "train.checkpoint_every": 2,
         "train.sample_every": 1000}
  two, eight, one = tmp_path / "two", tmp_path / "eight", tmp_path / "one"
  done = launch(config, two, {**run, "train.num_steps": 2}, subprocess_env, cpu_devices=4)
  assert done.returncode == 0, done.stderr[-3000:]
  done = launch(config, two, run, subprocess_env, cpu_devices=4)
  assert done.returncode == 0, done.stderr[-3000:]
  for path, devices in ((eight, 8), (one, 1)):
    ran = single(config, path, run, subprocess_env, devices)
    assert ran.returncode == 0, ran.stderr[-3000:]
  assert_same_metrics(two, eight, 1e-4)
  assert_same_metrics(two, one, 1e-4)


def test_a_killed_process_ends_the_run_and_the_same_command_resumes(tmp_path, subprocess_env):
  workdir = tmp_path / "run"
  args = [sys.executable, "-m", "genjax.launch", "--processes=2", "--cpu_devices=2", "--",
          sys.executable, *_args("softmax_sgd.py:iris,smoke", workdir,
                                 {"train.num_steps": 10**6, "train.checkpoint_every": 20,
                                  "train.log_every": 10})]
  run = subprocess.Popen(args, cwd=REPO_ROOT, env=subprocess_env(1), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  try:
    wait_for_a_checkpoint(run, workdir, timeout=300)
    # The launcher's first line names the processes.
    line = run.stderr.readline()
    while "launch:" not in line:
      line = run.stderr.readline()
    pids = [int(p) for p in re.search(r"pids \[([\d, ]+)\]", line).group(1).split(",")]
    killed_at = time.monotonic()
    os.kill(pids[1], signal.SIGKILL)
    _, stderr = run.communicate(timeout=60)
    ended_after = time.monotonic() - killed_at
  finally:
    if run.poll() is None:
      run.kill()
  # The launcher saw process 1 killed (and, as likely, process 0 aborted by JAX's failure
  # detection, just after): it reports the failure and exits non-zero.
  assert "launch: process 1 was killed by signal 9" in stderr and run.returncode != 0
  assert ended_after < 30  # the other process does not wait for its peer
  steps = checkpoint_steps(workdir)
  resumed = launch("softmax_sgd.py:iris,smoke", workdir,
                   {"train.num_steps": steps[-1] + 20, "train.checkpoint_every": 20,
                    "train.log_every": 10}, subprocess_env)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  records = writers.read_metrics(str(workdir / "metrics.jsonl"))
  assert [r["step"] for r in records] == list(range(10, steps[-1] + 21, 10))
