"""The training loop end to end on gan_mnist's smoke config: workdir contents, exact resume,
determinism, crashes (an exception mid-interval, SIGKILL mid-checkpoint, a checkpoint that does
not fit on the disk), NaN losses, bad configs, compile counts, and the loop on fake data
(`tfds.testing.mock_data`).

Runs call genjax.train.train_and_evaluate in this process where they can; experiments/train.py
runs in a subprocess only where the command line or the process itself is under test.
"""

import json
import math
import re
import shutil
import signal
from pathlib import Path
from unittest import mock

import jax
import numpy as np
import pytest
from conftest import remembering_split_loader
from PIL import Image

from genjax import train, writers
from genjax.data import splits as splits_lib
from genjax.families import gan
from genjax.parallel import DataParallel

# N = 8 steps of batch 32, logged every 2 and checkpointed every 4 (N/2), on one device.
RUN = {
    "parallel": "none", "data.batch_size": 32, "train.num_steps": 8, "train.log_every": 2,
    "train.checkpoint_every": 4, "train.sample_every": 4, "train.tensorboard": False,
}
LOGGED_STEPS = [2, 4, 6, 8]
METRIC_NAMES = {"d_loss", "g_loss", "d_real", "d_fake"}


def _checkpoint_steps(workdir: Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _metrics(workdir: Path) -> list[dict]:
  return writers.read_metrics(str(workdir / "metrics.jsonl"))


def _results(workdir: Path) -> dict:
  """results.json without its wall-clock timings (`seconds`, `train_seconds`, ...) and the
  evaluators' details (paths inside the workdir)."""
  results = json.loads((workdir / "results.json").read_text())
  return {k: ({m: v for m, v in val.items() if not m.endswith("_seconds")}
              if isinstance(val, dict) else val)
          for k, val in results.items()
          if k not in ("seconds", "details") and not k.endswith("_seconds")}


def _state(workdir: Path, step: int | None = None):
  """The train state of a workdir's checkpoint (default: the latest), on the host."""
  *_, state = train.restore_for_eval(str(workdir), step)
  return jax.device_get(state)


def _leaves(tree) -> dict:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def _assert_same_state(actual, expected) -> None:
  """Bit-identical: the same leaves (params, batch stats, optimiser state, step), dtypes, values.

  (Not the treedefs: they hold each run's own optimiser closures.)
  """
  actual, expected = _leaves(actual), _leaves(expected)
  assert actual.keys() == expected.keys()
  for name, want in expected.items():
    got = actual[name]
    assert got.dtype == want.dtype and np.array_equal(got, want), name


def _all_finite(tree) -> bool:
  return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


_LOAD_ONCE = remembering_split_loader(splits_lib.load)


def _train(config, workdir: Path, **kwargs) -> dict:
  """train_and_evaluate, reading each mnist split from TFDS once per module (~2.5 s a read):
  the first run reads it for real, later ones reuse its arrays."""
  with mock.patch.object(splits_lib, "load", _LOAD_ONCE):
    return train.train_and_evaluate(config, str(workdir), **kwargs)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, gan_config) -> Path:
  """An uninterrupted run of N steps (with TensorBoard): what every other run must reproduce."""
  workdir = tmp_path_factory.mktemp("reference")
  _train(gan_config({**RUN, "train.tensorboard": True}), workdir)
  return workdir


@pytest.fixture(scope="module")
def half_run(tmp_path_factory, gan_config) -> Path:
  """The first N/2 steps of the reference run (copy it before writing to it)."""
  workdir = tmp_path_factory.mktemp("half")
  _train(gan_config({**RUN, "train.num_steps": 4}), workdir)
  return workdir


def test_workdir_holds_every_output(reference_run, gan_config):
  w = reference_run
  assert _checkpoint_steps(w) == [4, 8]
  state = _state(w)
  assert int(state.step) == 8 and _all_finite(state)

  records = _metrics(w)
  assert [r["step"] for r in records] == LOGGED_STEPS
  for r in records:
    assert set(r) == {"step"} | METRIC_NAMES
    assert all(isinstance(r[k], float) and math.isfinite(r[k]) for k in METRIC_NAMES), r

  events = list((w / "tensorboard").glob("events.out.tfevents.*"))
  assert events
  data = b"".join(p.read_bytes() for p in events)
  assert b"d_loss" in data and b"steps_per_sec" in data and b"samples" in data

  side = gan_config().train.sample_grid
  pngs = sorted((w / "samples").glob("*.png"))
  assert [p.name for p in pngs] == ["samples_00000004.png", "samples_00000008.png"]
  with Image.open(pngs[-1]) as grid:
    assert grid.size == (side * 30 + 2, side * 30 + 2)  # 28x28 images, 2-pixel padding

  config = gan_config({**RUN, "train.tensorboard": True})
  assert json.loads((w / "config.json").read_text()) == json.loads(json.dumps(config.to_dict()))

  results = _results(w)
  assert results["step"] == 8
  assert set(results["test"]) == METRIC_NAMES | {"d_accuracy"}
  assert all(math.isfinite(v) for v in results["test"].values())
  assert 0.0 <= results["test"]["d_accuracy"] <= 1.0


def test_resume_is_exact(tmp_path, half_run, reference_run, gan_config):
  """N/2 steps, then the same workdir with num_steps=N: the reference run, bit for bit."""
  workdir = tmp_path / "run"
  shutil.copytree(half_run, workdir)
  assert _checkpoint_steps(workdir) == [4]
  assert _metrics(workdir) == _metrics(reference_run)[:2]

  _train(gan_config(RUN), workdir)
  assert _checkpoint_steps(workdir) == [4, 8]
  assert _metrics(workdir) == _metrics(reference_run)
  _assert_same_state(_state(workdir), _state(reference_run))
  assert _results(workdir) == _results(reference_run)


@pytest.mark.slow  # implied by test_resume_is_exact and the crash tests, which reproduce it
def test_same_seed_same_run(tmp_path, reference_run, gan_config):
  _train(gan_config(RUN), tmp_path)
  assert _metrics(tmp_path) == _metrics(reference_run)
  _assert_same_state(_state(tmp_path), _state(reference_run))


class SimulatedCrash(Exception):
  pass


# A crash before the first checkpoint restarts from scratch, which the after-checkpoint case's
# truncation covers too: it runs under -m slow (30 s).
@pytest.mark.parametrize("crash_step", [pytest.param(2, marks=pytest.mark.slow), 6],
                         ids=["before_first_checkpoint", "after_checkpoint"])
def test_crash_mid_interval_recomputes_records(tmp_path, reference_run, gan_config, monkeypatch,
                                               crash_step):
  """A run dies right after logging `crash_step`, before its next checkpoint. Its records after
  the last checkpoint (all of them, when it had none) are dropped and recomputed."""
  write_scalars = writers.MetricWriter.write_scalars

  def write_then_crash(self, step, scalars, jsonl=True):
    write_scalars(self, step, scalars, jsonl)
    if jsonl and step == crash_step:
      raise SimulatedCrash

  with monkeypatch.context() as m:
    m.setattr(writers.MetricWriter, "write_scalars", write_then_crash)
    with pytest.raises(SimulatedCrash):
      _train(gan_config(RUN), tmp_path)
  checkpoints = _checkpoint_steps(tmp_path)
  assert checkpoints == [s for s in [4] if s < crash_step]
  records = _metrics(tmp_path)
  assert [r["step"] for r in records] == [s for s in LOGGED_STEPS if s <= crash_step]
  # Mark what the lost run logged after its checkpoint: none of it may survive the resume.
  resumed_from = max(checkpoints, default=0)
  records = [{**r, "d_loss": -1.0} if r["step"] > resumed_from else r for r in records]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

  _train(gan_config(RUN), tmp_path)
  assert _metrics(tmp_path) == _metrics(reference_run)
  _assert_same_state(_state(tmp_path), _state(reference_run))


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path, half_run, gan_config):
  """From N/2 on, a NaN learning rate (an --override'd change) makes the step-5 update NaN: the
  run stops at the next log step, names step 5, and checkpoints nothing after step 4."""
  workdir = tmp_path / "run"
  shutil.copytree(half_run, workdir)
  config = gan_config({**RUN, "optim.learning_rate": float("nan")})
  with pytest.raises(train.NonFiniteLossError,
                     match=r"non-finite loss at step 5\b.*last good checkpoint is step 4"):
    _train(config, workdir, override=True)
  assert _checkpoint_steps(workdir) == [4]
  state = _state(workdir)
  assert int(state.step) == 4 and _all_finite(state)
  records = _metrics(workdir)
  assert [r["step"] for r in records] == [2, 4]
  assert all(math.isfinite(r[k]) for r in records for k in METRIC_NAMES)


def test_nan_loss_before_any_checkpoint_says_the_run_starts_again(tmp_path, gan_config):
  """A NaN from the first step, before anything was checkpointed, names no checkpoint."""
  config = gan_config({**RUN, "optim.learning_rate": float("nan")})
  with pytest.raises(train.NonFiniteLossError,
                     match=r"non-finite loss at step 1\b.*no checkpoint was written yet"):
    _train(config, tmp_path / "run")


def test_wrong_image_shape_fails_before_building_or_compiling(tmp_path, gan_config, monkeypatch):
  def forbidden(*args, **kwargs):
    raise AssertionError("built the model or compiled the step before checking the data")

  monkeypatch.setattr(gan, "create_state", forbidden)
  monkeypatch.setattr(DataParallel, "wrap", forbidden)
  config = gan_config({**RUN, "data.image_shape": (32, 32, 3)})
  # TFDS's reader names the dataset, the IDX reader (without TensorFlow) its folder.
  with pytest.raises(ValueError, match="mnist.* has images of shape " + re.escape(
      "(28, 28, 1), but the config expects (32, 32, 3) (data.image_shape)")):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def _spy_on_wrap(monkeypatch) -> list:
  """Record the compiled loop steps that DataParallel.wrap returns."""
  wrapped = []
  wrap = DataParallel.wrap

  def spy(self, *args, **kwargs):
    wrapped.append(wrap(self, *args, **kwargs))
    return wrapped[-1]

  monkeypatch.setattr(DataParallel, "wrap", spy)
  return wrapped


def test_loop_on_mock_data_compiles_the_step_once(tmp_path, tfds_data_dir, gan_config,
                                                  monkeypatch):
  """The Flax-examples way: tfds.testing.mock_data with the real metadata and no records.

  40 fake examples in batches of 16 are 2 steps an epoch, so the run crosses epochs, log and
  checkpoint boundaries, and a resume: still one compile of the step per run.
  """
  import tensorflow_datasets as tfds

  metadata = tmp_path / "metadata" / "mnist" / "3.0.1"
  metadata.mkdir(parents=True)
  for f in (tfds_data_dir / "mnist" / "3.0.1").glob("*.json"):
    shutil.copy(f, metadata)
  workdir = tmp_path / "run"
  wrapped = _spy_on_wrap(monkeypatch)
  config = {**RUN, "data.batch_size": 16}
  with tfds.testing.mock_data(num_examples=40, data_dir=str(tmp_path / "metadata")):
    results = train.train_and_evaluate(gan_config(config), str(workdir))
    assert len(wrapped) == 1 and wrapped[0]._cache_size() == 1
    assert results["step"] == 8 and all(math.isfinite(v) for v in results["test"].values())
    assert [r["step"] for r in _metrics(workdir)] == LOGGED_STEPS
    assert _checkpoint_steps(workdir) == [4, 8]

    train.train_and_evaluate(gan_config({**config, "train.num_steps": 12}), str(workdir))
    assert len(wrapped) == 2 and wrapped[1]._cache_size() == 1
  assert [r["step"] for r in _metrics(workdir)] == [*LOGGED_STEPS, 10, 12]
  assert _checkpoint_steps(workdir) == [4, 8, 12]
  assert int(_state(workdir).step) == 12


# experiments/train.py in a subprocess ------------------------------------------------------


def test_cli_unknown_config_field_fails_before_running(tmp_path, run_train_cli):
  workdir = tmp_path / "run"
  result = run_train_cli(workdir, {"optim.learnig_rate": 1e-3})
  assert result.returncode != 0
  assert "learnig_rate" in result.stderr and 'Did you mean "learning_rate"' in result.stderr
  assert "Traceback" not in result.stderr, result.stderr
  assert not workdir.exists()  # nothing ran: no config.json, no data, no compile


def test_cli_batch_size_not_divisible_by_devices_fails_fast(tmp_path, run_train_cli):
  workdir = tmp_path / "run"
  result = run_train_cli(workdir, {"data.batch_size": 100}, num_devices=8)  # parallel=auto: pmap
  assert result.returncode != 0
  assert "batch size 100 is not divisible by the 8 devices" in result.stderr, result.stderr
  assert not workdir.exists()  # failed before writing anything, reading data or compiling


# Die with SIGKILL just before orbax renames the finished temporary directory of a checkpoint
# into place (at the step named by GENJAX_TEST_KILL_AT): the checkpoint is written but not
# committed. Then run experiments/train.py (sys.argv[1:]) as `python experiments/train.py` would.
KILL_DURING_CHECKPOINT = """
import os, runpy, signal, sys
rename = os.rename
def rename_or_die(src, dst, *args, **kwargs):
  if (".orbax-checkpoint-tmp" in os.fspath(src)
      and os.path.basename(os.fspath(dst)) == os.environ["GENJAX_TEST_KILL_AT"]):
    os.kill(os.getpid(), signal.SIGKILL)
  return rename(src, dst, *args, **kwargs)
os.rename = rename_or_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_cli_sigkill_while_checkpointing_then_resume(tmp_path, reference_run, run_train_cli):
  workdir = tmp_path / "run"
  killed = run_train_cli(workdir, RUN, python_code=KILL_DURING_CHECKPOINT,
                         env={"GENJAX_TEST_KILL_AT": "8"})
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
  leftovers = sorted(p.name for p in (workdir / "checkpoints").iterdir())
  assert "4" in leftovers and "8" not in leftovers
  assert any(name.startswith("8.orbax-checkpoint-tmp") for name in leftovers), leftovers
  assert [r["step"] for r in _metrics(workdir)] == LOGGED_STEPS
  first_grid = workdir / "samples" / "samples_00000004.png"
  first_grid_mtime = first_grid.stat().st_mtime_ns

  resumed = run_train_cli(workdir, RUN)  # the same command again
  assert resumed.returncode == 0, resumed.stderr[-4000:]
  # The unfinished checkpoint is cleaned up; the run resumed from step 4 rather than from
  # scratch (it did not redraw step 4's samples) and ends exactly where the reference does.
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["4", "8"]
  assert first_grid.stat().st_mtime_ns == first_grid_mtime
  assert _metrics(workdir) == _metrics(reference_run)
  _assert_same_state(_state(workdir), _state(reference_run))
  assert _results(workdir) == _results(reference_run)


# From the checkpoint of the step named by GENJAX_TEST_FULL_AT on, no file may grow past 256 KiB
# (RLIMIT_FSIZE: such a write fails with EFBIG, as a write to a full disk fails with ENOSPC): the
# checkpoint's arrays do not fit, the run's other files do. Then run experiments/train.py
# (sys.argv[1:]) as `python experiments/train.py` would.
FILE_SIZE_LIMIT_FROM_CHECKPOINT = """
import os, resource, runpy, signal, sys
from genjax import checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
save = checkpoint.Checkpointer.save
def limit_then_save(self, step, *args, **kwargs):
  if step == int(os.environ["GENJAX_TEST_FULL_AT"]):
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, hard))
  return save(self, step, *args, **kwargs)
checkpoint.Checkpointer.save = limit_then_save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


# A CLI run and a resume that each compile (90 s on 2 cores at load 9); the default suite
# covers the checkpointer's side (test_checkpoint) and cli.run's (test_cli).
@pytest.mark.slow
def test_cli_checkpoint_that_cannot_be_written_then_resume(tmp_path, reference_run, run_train_cli,
                                                           gan_config):
  """Checkpoint 8 does not fit (4 did): the run stops with one line naming the checkpoint
  directory, the errno and the last good checkpoint, exit status 2, and nothing else on stderr
  (where a run writes nothing). Checkpoint 4 is intact, and the run resumed once there is room
  ends exactly where the reference does."""
  workdir = tmp_path / "run"
  failed = run_train_cli(workdir, RUN, python_code=FILE_SIZE_LIMIT_FROM_CHECKPOINT,
                         env={"GENJAX_TEST_FULL_AT": "8"})
  checkpoints = workdir / "checkpoints"
  assert failed.stderr.splitlines() == [
      f"error: checkpoint 8 could not be written to {checkpoints} (File too large, EFBIG): "
      f"training stopped; the last good checkpoint is step 4 in {checkpoints}",
      "(run again with --debug for the traceback)"], failed.stderr[-4000:]
  assert failed.returncode == 2
  assert _checkpoint_steps(workdir) == [4]
  assert [r["step"] for r in _metrics(workdir)] == LOGGED_STEPS

  _train(gan_config(RUN), workdir)
  assert _checkpoint_steps(workdir) == [4, 8]
  assert _metrics(workdir) == _metrics(reference_run)
  _assert_same_state(_state(workdir), _state(reference_run))
  assert _results(workdir) == _results(reference_run)


@pytest.mark.slow  # three runs that each build the tf.data pipeline: about 50 s on 2 cores
def test_streamed_input_resumes_exactly(tmp_path, gan_config):
  """data.in_memory=False streams batches through tf.data; a split run equals a whole one."""
  stream = {**RUN, "data.in_memory": False, "train.sample_every": 8}
  whole, split = tmp_path / "whole", tmp_path / "split"
  _train(gan_config(stream), whole)
  _train(gan_config({**stream, "train.num_steps": 4}), split)
  _train(gan_config(stream), split)
  assert [r["step"] for r in _metrics(whole)] == LOGGED_STEPS
  assert _metrics(split) == _metrics(whole)
  _assert_same_state(_state(split), _state(whole))


def test_results_name_the_objective_where_the_model_has_one():
  """results.json's `joint_weight` is the config's model.joint_weight, as a float; a model
  without one adds nothing (so a classifier's results never claim an objective it lacks)."""
  import ml_collections
  weighted = ml_collections.ConfigDict({"model": {"joint_weight": 0.3, "hidden": 8}})
  assert train.objective_fields(weighted) == {"joint_weight": 0.3}
  assert train.objective_fields(ml_collections.ConfigDict({"model": {"hidden": 8}})) == {}
  assert train.objective_fields(ml_collections.ConfigDict({"data": {}})) == {}


def test_config_list_gives_whole_summaries(tmp_path):
  """train.py --list shows a docstring's first paragraph joined, not its first line."""
  from genjax import cli
  (tmp_path / "wrapped.py").write_text('"""A summary that wraps\n  over two lines.\n\nMore."""\n')
  assert cli.list_configs(str(tmp_path)) == [("wrapped", "A summary that wraps over two lines.")]
