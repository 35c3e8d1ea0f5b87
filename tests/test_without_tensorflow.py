"""The TF-free install (`pip install -e .`, no `tf` extra): the README's main job trains, evaluates
and writes TensorBoard events with `import tensorflow` failing, and streamed input refuses in
one line naming the extra. The README's set-up has no TensorFlow, so in CI this holds for real
(and every config's smoke run with it); where the `tf` extra is installed, the harness below
makes it absent.

The subprocesses run the scripts under a harness that makes `import tensorflow` raise
ImportError, as it does where TensorFlow is not installed, and reports at exit which TensorFlow
modules were loaded (none may be).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import GAN_MNIST_CONFIG, REPO_ROOT

from genjax import writers

# `sys.modules[name] = None` makes every `import name` raise ImportError; tensorflow_datasets,
# a dependency of the TF-free install, still imports.
BLOCK_TENSORFLOW = """
import atexit, runpy, sys
sys.modules["tensorflow"] = None
atexit.register(lambda: print("tensorflow modules loaded:",
                              sorted(m for m in sys.modules if m.startswith("tensorflow."))))
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""
NONE_LOADED = "tensorflow modules loaded: []"
# What tensorflow_datasets prints when something makes it read files without TensorFlow.
TFDS_BANNER = "Failed to import TensorFlow"


def _run_without_tensorflow(script: str, args: list[str], env: dict,
                            timeout: float = 600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW,
                         str(REPO_ROOT / "experiments" / script), *args],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def main_job(tmp_path_factory, subprocess_env):
  """The README's main job (gan_mnist, smoke size), then evaluate.py, without TensorFlow.
  Returns (workdir, train.py's process, evaluate.py's process)."""
  workdir = tmp_path_factory.mktemp("gan_mnist_without_tf")
  env = subprocess_env()
  trained = _run_without_tensorflow(
      "train.py", [f"--config={GAN_MNIST_CONFIG}:smoke", f"--workdir={workdir}",
                   "--config.train.progress=False"], env)
  assert trained.returncode == 0, trained.stderr[-3000:]
  evaluated = _run_without_tensorflow("evaluate.py", [f"--workdir={workdir}"], env)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  return workdir, trained, evaluated


def test_the_main_job_trains_and_evaluates_without_tensorflow(main_job):
  workdir, trained, evaluated = main_job
  for done in (trained, evaluated):
    assert NONE_LOADED in done.stdout
    assert TFDS_BANNER not in done.stdout + done.stderr
  config = json.loads((workdir / "config.json").read_text())
  results = json.loads((workdir / "results.json").read_text())
  assert results["step"] == config["train"]["num_steps"]
  assert np.isfinite(results["test"]["d_loss"]) and 0.0 <= results["test"]["d_accuracy"] <= 1.0
  # evaluate.py restores the last checkpoint and scores it as the loop did (and adds the sample
  # metrics the loop leaves for later).
  final = json.loads(next(x for x in trained.stdout.splitlines() if x.startswith("{")))
  assert final["test"] and {k: results["test"][k] for k in final["test"]} == final["test"]
  assert (workdir / "samples" / f"eval_samples_{results['step']:08d}.png").is_file()


def test_the_main_job_writes_tensorboard_events_without_tensorflow(main_job):
  """The events hold every logged scalar of metrics.jsonl (as float32) and the sample grids."""
  from tensorboard.backend.event_processing import event_accumulator

  workdir, _, _ = main_job
  acc = event_accumulator.EventAccumulator(str(workdir / "tensorboard"),
                                           size_guidance={"scalars": 0, "images": 0})
  acc.Reload()
  records = writers.read_metrics(str(workdir / "metrics.jsonl"))
  assert records
  for tag in records[0].keys() - {"step"}:
    got = [(e.step, e.value) for e in acc.Scalars(tag)]
    want = [(r["step"], float(np.float32(r[tag]))) for r in records if tag in r]
    assert got == want, tag
  # The loop's grids, every train.sample_every steps (evaluate.py's eval_* grids are PNGs only).
  grids = sorted(int(p.stem.split("_")[1]) for p in (workdir / "samples").glob("samples_*.png"))
  assert grids and [e.step for e in acc.Images("samples")] == grids


def test_streamed_input_without_tensorflow_is_one_line_and_writes_nothing(tmp_path,
                                                                           subprocess_env):
  workdir = tmp_path / "streamed"
  done = _run_without_tensorflow(
      "train.py", [f"--config={GAN_MNIST_CONFIG}:smoke", f"--workdir={workdir}",
                   "--config.data.in_memory=False"], subprocess_env(), timeout=300)
  assert done.returncode == 2, done.stderr[-3000:]
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 2 and "--debug" in lines[1], lines
  assert lines[0].startswith("error: streamed input (data.in_memory = False) needs TensorFlow")
  assert "pip install -e '.[tf]'" in lines[0]
  assert not os.path.exists(workdir)


def _requirement_closure(name: str, extras: frozenset = frozenset()) -> set[str]:
  """The distributions `pip install NAME` brings in, from the installed packages' metadata
  (offline): each requirement whose marker holds without extras, followed recursively."""
  from importlib import metadata

  from packaging.requirements import Requirement
  seen, todo = set(), [(name, extras)]
  while todo:
    dist, wanted = todo.pop()
    key = dist.lower().replace("_", "-")
    if key in seen:
      continue
    seen.add(key)
    try:
      requires = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
      continue  # a requirement of another platform or Python, not installed here
    for line in requires:
      req = Requirement(line)
      if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*wanted, "")):
        todo.append((req.name, frozenset(req.extras)))
  return seen


def test_the_plain_install_brings_no_tensorflow():
  """`pip install -e .` (no extras) resolves to no TensorFlow, followed through every installed
  dependency's own requirements; the `tf` extra brings it."""
  plain = _requirement_closure("genjax")
  assert {"jax", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "tensorboard"} <= plain
  assert not {"tensorflow", "tensorflow-cpu", "keras"} & plain, sorted(plain)
  assert "tensorflow-cpu" in _requirement_closure("genjax", frozenset({"tf"}))
