"""Shared fixtures: an absolute TFDS_DATA_DIR, gan_mnist configs, and experiments/train.py runs."""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "experiments" / "train.py"
GAN_MNIST_CONFIG = REPO_ROOT / "experiments" / "configs" / "gan_mnist.py"

# CI runs `TFDS_DATA_DIR=../shared/tfds pytest` from the repository root. Resolve it once, here,
# so that it still holds for subprocesses started in another directory; unset, it defaults to
# the prepared data next to the repository.
os.environ["TFDS_DATA_DIR"] = str(
    Path(os.environ.get("TFDS_DATA_DIR") or REPO_ROOT.parent / "shared" / "tfds").resolve())

# One persistent compilation cache for the run: both pytest-xdist workers and the single-device
# subprocesses (subprocess_env) read and write it, so a program that several tests compile (a
# config's eval step in the loop and again in evaluate.py, the GAN smoke run of a dozen tests)
# compiles once. A cached executable is the one compiled: results are bit-identical. The
# folder is the controlling process's and goes when its session ends. Set here, not through
# the environment, so that the multi-device subprocesses (which deadlocked in a collective
# with the cache on) do not inherit it.
def _run_cache_dir() -> Path:
  owner = os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()
  return Path(tempfile.gettempdir()) / f"genjax-tests-jax-cache-{owner}"


RUN_CACHE_DIR = _run_cache_dir()
jax.config.update("jax_compilation_cache_dir", str(RUN_CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.3)


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  if "PYTEST_XDIST_WORKER" not in os.environ:
    shutil.rmtree(RUN_CACHE_DIR, ignore_errors=True)

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


def pytest_collection_modifyitems(config, items):
  """Tests marked `tf` (streaming, TFDS's prepared files) skip where the tf extra is absent: the
  README's set-up has no TensorFlow, and .ci/run adds the extra and runs them (`pytest -m tf`)."""
  del config
  if HAS_TENSORFLOW:
    return
  skip = pytest.mark.skip(reason="needs TensorFlow: pip install -e '.[tf]', then pytest -m tf")
  for item in items:
    if "tf" in item.keywords:
      item.add_marker(skip)


def load_config_module(path: Path):
  """Import a config file (`experiments/configs/*.py`) as a module."""
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_experiment_script(name: str):
  """`experiments/<name>.py` as a module, with the absl flags it defines removed again.

  Scripts define flags of the same names (--outdir, --seed), and a test process imports several
  of them: absl's FLAGS is global, so a second definition would fail. Tests call the scripts'
  functions with explicit arguments, never their flags.
  """
  from absl import flags
  before = set(flags.FLAGS)
  spec = importlib.util.spec_from_file_location(f"experiment_{name}", REPO_ROOT / "experiments" /
                                                f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for flag in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, flag)
  return module


@pytest.fixture(scope="session")
def experiment_script() -> Callable:
  """load_experiment_script, for tests: `experiment_script("classify").run(...)`."""
  return load_experiment_script


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> None:
  """Set dotted fields (`{"train.num_steps": 8}`); an unknown field is an error, as on the CLI."""
  for dotted, value in overrides.items():
    *parents, name = dotted.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    if name not in node:
      raise KeyError(f"unknown config field {dotted!r}")
    node[name] = value


def image_batch(batch_size: int, seed: int = 0, shape=(28, 28, 1)) -> dict:
  """Images uniform in [0, 1] and labels in 0..9, from NumPy (no JAX PRNG involved)."""
  import jax.numpy as jnp
  import numpy as np
  rs = np.random.RandomState(seed)
  return {"image": jnp.asarray(rs.uniform(size=(batch_size, *shape)), jnp.float32),
          "label": jnp.asarray(rs.randint(0, 10, batch_size), jnp.int32)}


def remembering_split_loader(load: Callable) -> Callable:
  """`load` (genjax.data.splits.load) that reads each split once and then returns the same
  arrays: tests that train many configs on one dataset share it (MNIST takes seconds to read
  from TFDS). The batch size is not part of a split."""
  import json
  cache = {}

  def load_once(data, split):
    key = (json.dumps({k: v for k, v in data.to_dict().items() if k != "batch_size"},
                      sort_keys=True, default=str), split)
    if key not in cache:
      cache[key] = load(data, split)
    return cache[key]

  return load_once


def override_flags(overrides: dict) -> list[str]:
  """The same overrides as experiments/train.py flags (`--config.train.num_steps=8`)."""
  return [f"--config.{dotted}={value}" for dotted, value in overrides.items()]


@pytest.fixture(scope="session")
def tfds_data_dir() -> Path:
  """The absolute directory of the prepared TFDS datasets (mnist, fashion_mnist)."""
  path = Path(os.environ["TFDS_DATA_DIR"])
  if not (path / "mnist").is_dir():
    pytest.fail(f"prepared mnist not found under TFDS_DATA_DIR={path}")
  return path


@pytest.fixture(scope="session")
def gan_config(tfds_data_dir) -> Callable[..., ml_collections.ConfigDict]:
  """`gan_config(overrides)`: a fresh gan_mnist `smoke` config with dotted-field overrides.

  The progress bar is off: tests read metrics.jsonl, not the terminal.
  """
  del tfds_data_dir  # the configs read it from the environment
  module = load_config_module(GAN_MNIST_CONFIG)

  def make(overrides: dict | None = None, variant: str | None = "smoke"):
    config = module.get_config(variant)
    apply_overrides(config, {"train.progress": False, **(overrides or {})})
    return config

  return make


# XLA's CPU collectives give up when a device's thread reaches a rendezvous this many seconds
# before the others (40 by default): on 2 cores shared with another test worker, eight devices'
# threads can fall that far apart. The flag is XLA's (newer jaxlibs); an older one rejects
# unknown flags, so it is set only where the installed one knows it.
COLLECTIVE_TIMEOUT_FLAG = "--xla_cpu_collective_call_terminate_timeout_seconds=300"
# Simulated devices share one thread pool; keep each device's operations on its own thread.
SINGLE_THREADED_OPS = "--xla_cpu_multi_thread_eigen=false"


@functools.cache
def _collective_timeout_flag() -> str:
  probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], capture_output=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu",
                              "XLA_FLAGS": COLLECTIVE_TIMEOUT_FLAG}, timeout=300)
  return COLLECTIVE_TIMEOUT_FLAG if probe.returncode == 0 else ""


@pytest.fixture(scope="session")
def subprocess_env(tfds_data_dir) -> Callable[..., dict]:
  """`subprocess_env(num_devices)`: the environment for a JAX subprocess on `num_devices` CPUs.

  The subprocesses share a persistent compilation cache, so only the first one pays for
  compiling what they have in common (results are bit-identical either way).
  """
  cache = RUN_CACHE_DIR

  def make(num_devices: int = 1, **extra: str) -> dict:
    env = dict(os.environ)
    xla_flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "",
                       env.get("XLA_FLAGS", ""))
    if num_devices > 1:
      xla_flags = f"{xla_flags} {SINGLE_THREADED_OPS} {_collective_timeout_flag()}"
    env.update(
        TFDS_DATA_DIR=str(tfds_data_dir),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"{xla_flags} --xla_force_host_platform_device_count={num_devices}".strip(),
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra)
    if num_devices > 1:
      # Eight-device programs deadlocked in a collective (one device never arriving) when
      # the persistent cache was on, and never without it: they compile afresh.
      for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                   "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        env.pop(name)
    return env

  return make


@pytest.fixture(scope="session")
def run_train_cli(subprocess_env) -> Callable[..., subprocess.CompletedProcess]:
  """`run_train_cli(workdir, overrides)`: experiments/train.py on a config's smoke variant
  (gan_mnist.py unless `config` names another), as a user types it, in a subprocess; returns
  the CompletedProcess (stdout and stderr captured).

  `python_code`, when given, runs instead of the script, with `sys.argv[1:]` being the script
  and its arguments (a harness that installs a hook, then runs the script with runpy); `env`
  adds environment variables.
  """

  def run(workdir: Path, overrides: dict | None = None, *, num_devices: int = 1,
          python_code: str | None = None, env: dict | None = None,
          timeout: float = 300, config: Path = GAN_MNIST_CONFIG) -> subprocess.CompletedProcess:
    args = [f"--config={config}:smoke", f"--workdir={workdir}",
            "--config.train.progress=False", *override_flags(overrides or {})]
    prefix = [sys.executable] if python_code is None else [sys.executable, "-c", python_code]
    return subprocess.run([*prefix, str(TRAIN_SCRIPT), *args], cwd=REPO_ROOT,
                          env=subprocess_env(num_devices, **(env or {})), capture_output=True,
                          text=True, timeout=timeout)

  return run


def score_on_first_test_images(monkeypatch, n: int = 1000) -> None:
  """Make genjax.data.splits.load give the first `n` test images (the evaluators' cost is per
  image; other splits are untouched), for the rest of the test."""
  import dataclasses

  from genjax.data import splits
  load = splits.load

  def first_test_images(data, split):
    loaded = load(data, split)
    if split != "test":
      return loaded
    return dataclasses.replace(loaded, arrays={k: v[:n] for k, v in loaded.arrays.items()})

  monkeypatch.setattr(splits, "load", first_test_images)


def checkpoint_steps(workdir_path: Path) -> list[int]:
  """The steps of a workdir's finished checkpoints (orbax's temporary folders are not digits)."""
  root = Path(workdir_path) / "checkpoints"
  return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []


def wait_for_a_checkpoint(process: subprocess.Popen, workdir_path: Path, timeout: float) -> None:
  """Waits until a running `train.py` has finished any checkpoint; fails, killing it, when it
  exits first or `timeout` seconds pass. Not "checkpoint N": older checkpoints are deleted as new
  ones land, so a poll that a loaded machine delays can miss any one step's."""
  deadline = time.monotonic() + timeout
  while not checkpoint_steps(workdir_path):
    if process.poll() is not None or time.monotonic() > deadline:
      process.kill()
      output = process.communicate()
      pytest.fail(f"no checkpoint within {timeout} s (exit {process.returncode}): {output}")
    time.sleep(0.2)


def stop_requested_on_read(n: int) -> type:
  """A genjax.preemption.StopRequests whose `signum` reads SIGTERM from its n-th read on (the
  loop reads it once per dispatch: once per step with one step per dispatch)."""
  import signal

  from genjax import preemption
  reads = {"n": 0}

  class StopOnRead(preemption.StopRequests):
    @property
    def signum(self):
      reads["n"] += 1
      return signal.SIGTERM if reads["n"] >= n else None

    @signum.setter
    def signum(self, value):
      pass

  return StopOnRead

