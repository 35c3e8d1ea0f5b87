"""A workdir nothing can corrupt: a changed config or another family is refused before anything
is written, one process writes at a time, a checkpoint that does not restore falls back to the
one before it, a stopped run checkpoints where it is and resumes bit for bit.

The runs are softmax regression by SGD on iris (experiments/configs/softmax_sgd.py): the loop
is the same for every step family, and this one compiles in a second.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import (
  REPO_ROOT,
  TRAIN_SCRIPT,
  apply_overrides,
  checkpoint_steps,
  load_config_module,
  stop_requested_on_read,
  wait_for_a_checkpoint,
)

from genjax import preemption, train, workdir, writers

SOFTMAX = REPO_ROOT / "experiments" / "configs" / "softmax_sgd.py"
NEAREST_MEAN = REPO_ROOT / "experiments" / "configs" / "nearest_mean.py"
# 14 steps logged every 7 and checkpointed every 7: checkpoints 7 and 14.
RUN = {"train.num_steps": 14, "train.log_every": 7, "train.checkpoint_every": 7,
       "train.progress": False, "train.tensorboard": False, "parallel": "none"}


def softmax_config(overrides: dict | None = None):
  config = load_config_module(SOFTMAX).get_config("iris")
  apply_overrides(config, {**RUN, **(overrides or {})})
  return config


def snapshot(path: Path) -> dict:
  """Every file under `path` with its content's hash."""
  return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(path.rglob("*")) if p.is_file()}


def state_leaves(path: Path, step: int | None = None) -> list[np.ndarray]:
  *_, state = train.restore_for_eval(str(path), step)
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


def assert_same_run(got: Path, want: Path) -> None:
  """The same metrics.jsonl and final state, bit for bit."""
  assert writers.read_metrics(str(got / "metrics.jsonl")) == writers.read_metrics(
      str(want / "metrics.jsonl"))
  for a, b in zip(state_leaves(got), state_leaves(want), strict=True):
    assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
  """An uninterrupted 14-step run."""
  path = tmp_path_factory.mktemp("reference")
  train.train_and_evaluate(softmax_config(), str(path))
  return path


@pytest.fixture
def run_copy(tmp_path, reference) -> Path:
  """A copy of the reference run to continue."""
  import shutil
  path = tmp_path / "run"
  shutil.copytree(reference, path)
  return path


# --- provenance ---------------------------------------------------------------------------------


def test_changed_config_is_refused_before_anything_is_written(run_copy):
  before = snapshot(run_copy)
  changed = softmax_config({"optim.learning_rate": 0.05, "data.batch_size": 8})
  with pytest.raises(workdir.WorkdirError) as e:
    train.train_and_evaluate(changed, str(run_copy))
  message = str(e.value)
  assert "data.batch_size 16 -> 8" in message and "optim.learning_rate 0.1 -> 0.05" in message
  assert "--override" in message and "\n" not in message
  assert snapshot(run_copy) == before


def test_override_continues_and_records_the_change_and_its_step(run_copy):
  changed = softmax_config({"optim.learning_rate": 0.05, "train.num_steps": 21})
  train.train_and_evaluate(changed, str(run_copy), override=True)
  lines = (run_copy / workdir.CHANGES_FILE).read_text().splitlines()
  entries = [json.loads(line) for line in lines]
  assert len(entries) == 1 and entries[0]["step"] == 14
  assert entries[0]["changes"] == {"optim.learning_rate": {"old": 0.1, "new": 0.05},
                                   "train.num_steps": {"old": 14, "new": 21}}
  assert json.loads((run_copy / "config.json").read_text())["optim"]["learning_rate"] == 0.05
  assert checkpoint_steps(run_copy) == [7, 14, 21]


def test_extending_a_run_needs_no_override_and_is_recorded(run_copy, tmp_path):
  train.train_and_evaluate(softmax_config({"train.num_steps": 21, "train.log_every": 1}),
                           str(run_copy))
  (entry,) = [json.loads(x) for x in (run_copy / workdir.CHANGES_FILE).read_text().splitlines()]
  assert entry["step"] == 14 and set(entry["changes"]) == {"train.num_steps", "train.log_every"}
  # The same run in one go with the same logging gives the same numbers from step 14 on.
  straight = tmp_path / "straight"
  train.train_and_evaluate(softmax_config({"train.num_steps": 21}), str(straight))
  for a, b in zip(state_leaves(run_copy), state_leaves(straight), strict=True):
    assert np.array_equal(a, b)


def test_another_family_is_refused_before_anything_is_touched(run_copy):
  before = snapshot(run_copy)
  config = load_config_module(NEAREST_MEAN).get_config("iris")
  with pytest.raises(workdir.WorkdirError, match="holds a 'softmax_sgd' run, not 'nearest_mean'"):
    train.train_and_evaluate(config, str(run_copy), override=True)
  assert snapshot(run_copy) == before


def test_diff_classifies_fields():
  old = {"family": "f", "optim": {"learning_rate": 0.1}, "train": {"num_steps": 5},
         "data": {"image_shape": [28, 28, 1]}, "evals": {"nll": {"k": 8}}}
  new = {"family": "f", "optim": {"learning_rate": 0.1}, "train": {"num_steps": 9},
         "data": {"image_shape": (28, 28, 1)}, "evals": {"nll": {"k": 5000}}}
  changes = workdir.diff(old, new)
  assert changes == {"train.num_steps": (5, 9), "evals.nll.k": (8, 5000)}  # tuple == list
  assert all(workdir.extends_only(k) for k in changes)
  assert not workdir.extends_only("optim.learning_rate")
  assert not workdir.extends_only("train.num_steps_extra")


# --- one writer ---------------------------------------------------------------------------------


def test_a_held_lock_refuses_and_a_killed_holder_does_not(tmp_path, subprocess_env):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom genjax.workdir import Lock\n"
       f"Lock({str(tmp_path)!r}).acquire()\nprint('held', flush=True)\ntime.sleep(300)"],
      stdout=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO_ROOT)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(workdir.WorkdirError, match=f"in use by pid {holder.pid} "):
      train.train_and_evaluate(softmax_config(), str(tmp_path))
    assert not (tmp_path / "config.json").exists()
  finally:
    holder.kill()  # SIGKILL: the kernel releases its lock
    holder.wait()
  train.train_and_evaluate(softmax_config(), str(tmp_path))
  assert checkpoint_steps(tmp_path) == [7, 14]


def _train_cli(workdir_path: Path, *flags: str) -> list[str]:
  return [sys.executable, str(TRAIN_SCRIPT), f"--config={SOFTMAX}:iris",
          f"--workdir={workdir_path}", *(f"--config.{k}={v}" for k, v in RUN.items()), *flags]


def test_cli_second_writer_refused_and_sigterm_checkpoints_where_it_is(tmp_path, subprocess_env,
                                                                       reference):
  """Two `train.py` on one workdir: the second exits 2 naming the first; SIGTERM stops the
  first with a checkpoint of the step it reached (between two log steps, as likely as not), and
  the same command extended to 14 + that step resumes it: every number equals one run's."""
  path = tmp_path / "run"
  long_run = _train_cli(path, "--config.train.num_steps=1000000")
  first = subprocess.Popen(long_run, cwd=REPO_ROOT, env=subprocess_env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  try:
    wait_for_a_checkpoint(first, path, timeout=240)  # it is training
    second = subprocess.run(long_run, cwd=REPO_ROOT, env=subprocess_env(), text=True,
                            capture_output=True, timeout=240)
    assert second.returncode == 2
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"in use by pid {first.pid} " in errors[0], second.stderr
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
  finally:
    if first.poll() is None:
      first.kill()
  assert first.returncode == 128 + signal.SIGTERM, stderr
  stopped = max(checkpoint_steps(path))
  assert f"stopped by SIGTERM at step {stopped}" in stderr
  # Resume to a step 14 past the stop, and compare with one uninterrupted run of that length.
  end = stopped + 14
  resumed = subprocess.run(_train_cli(path, f"--config.train.num_steps={end}"), cwd=REPO_ROOT,
                           env=subprocess_env(), text=True, capture_output=True, timeout=240)
  assert resumed.returncode == 0, resumed.stderr
  straight = tmp_path / "straight"
  train.train_and_evaluate(softmax_config({"train.num_steps": end}), str(straight))
  assert_same_run(path, straight)


# --- checkpoints that fail soft -----------------------------------------------------------------


def test_stop_between_log_steps_resumes_bit_for_bit(tmp_path, reference, monkeypatch):
  monkeypatch.setattr(preemption, "StopRequests", stop_requested_on_read(10))  # at step 10
  with pytest.raises(preemption.Interrupted, match="at step 10"):
    train.train_and_evaluate(softmax_config(), str(tmp_path))
  assert checkpoint_steps(tmp_path) == [7, 10]
  extra = json.loads((tmp_path / "checkpoints.extra" / "10.json").read_text())
  assert extra["accumulator"]["count"] == 3  # steps 8, 9, 10 since the log at step 7
  monkeypatch.undo()
  train.train_and_evaluate(softmax_config(), str(tmp_path))
  assert_same_run(tmp_path, reference)


def test_time_based_checkpoints(tmp_path, reference):
  train.train_and_evaluate(softmax_config({"train.checkpoint_every_seconds": 1e-9,
                                           "train.keep_checkpoints": 20}), str(tmp_path))
  assert checkpoint_steps(tmp_path) == list(range(1, 15))
  assert_same_run(tmp_path, reference)


def _corrupt(path: Path, how: str) -> None:
  root = path / "checkpoints" / "14" / "default"
  if how == "truncated_data":
    biggest = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])
  else:
    (root / "_METADATA").write_bytes(bytes(range(256)) * 4)


@pytest.mark.parametrize("how", ["truncated_data", "garbage_metadata"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(run_copy, reference, how, capsys):
  _corrupt(run_copy, how)
  (run_copy / "samples").mkdir()
  for step in (7, 14):
    (run_copy / "samples" / f"samples_{step:08d}.png").write_bytes(b"png")
  capsys.readouterr()
  train.train_and_evaluate(softmax_config(), str(run_copy))
  warnings = [line for line in capsys.readouterr().err.splitlines() if "checkpoint 14" in line]
  assert len(warnings) == 1 and "resuming from step 7" in warnings[0]
  assert (run_copy / "checkpoints.corrupt" / "14").is_dir()  # moved aside, not deleted
  assert sorted(os.listdir(run_copy / "samples")) == ["samples_00000007.png"]  # stale one gone
  assert_same_run(run_copy, reference)


def test_resume_step_moves_newer_checkpoints_aside(run_copy, reference):
  train.train_and_evaluate(softmax_config(), str(run_copy), resume_step=7)
  assert (run_copy / "checkpoints.superseded" / "14").is_dir()
  assert checkpoint_steps(run_copy) == [7, 14]
  assert_same_run(run_copy, reference)
  with pytest.raises(ValueError, match="no checkpoint at step 3 "):
    train.train_and_evaluate(softmax_config(), str(run_copy), resume_step=3)


def test_no_checkpoint_restores_is_one_clear_error(run_copy):
  for step in (7, 14):
    (run_copy / "checkpoints" / str(step) / "default" / "_METADATA").write_bytes(b"\xff" * 64)
  with pytest.raises(ValueError, match="no checkpoint in .* restores"):
    train.train_and_evaluate(softmax_config(), str(run_copy))
  assert checkpoint_steps(run_copy) == [7, 14]  # nothing moved: it may be the config's fault


# --- errors users can read ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["unknown_dataset", "another_family"])
def test_cli_user_errors_are_one_line_exit_2_and_touch_nothing(case, tmp_path, run_copy,
                                                               subprocess_env):
  if case == "unknown_dataset":
    path = tmp_path / "new"
    args = _train_cli(path, "--config.data.name=iriss")
  else:
    path = run_copy
    args = [sys.executable, str(TRAIN_SCRIPT), f"--config={NEAREST_MEAN}:iris",
            f"--workdir={path}"]
  before = snapshot(path) if path.exists() else None
  done = subprocess.run(args, cwd=REPO_ROOT, env=subprocess_env(), text=True,
                        capture_output=True, timeout=240)
  assert done.returncode == 2, done.stderr
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 2 and lines[0].startswith("error: ") and "--debug" in lines[1], lines
  if case == "unknown_dataset":
    assert "did you mean 'iris'" in lines[0] and not path.exists()
  else:
    assert "holds a 'softmax_sgd' run" in lines[0] and snapshot(path) == before


def test_evaluate_refuses_a_workdir_in_use(run_copy, experiment_script):
  evaluate = experiment_script("evaluate").evaluate
  with workdir.Lock(str(run_copy)):
    with pytest.raises(workdir.WorkdirError, match="in use by pid"):
      evaluate(str(run_copy))
  assert evaluate(str(run_copy))["test"]["accuracy"] > 0.5  # free again


def test_streamed_input_errors_come_before_the_workdir_exists(tmp_path, gan_config, monkeypatch):
  """A misspelt dataset, or streaming without TensorFlow, fails before the lock creates the
  workdir."""
  from genjax.data import images, splits

  path = tmp_path / "new"
  with pytest.raises(splits.UnknownDatasetError, match="did you mean 'mnist'"):
    train.train_and_evaluate(gan_config({"data.name": "mnistt", "data.in_memory": False}),
                             str(path))
  assert not path.exists()
  monkeypatch.setattr(images, "has_tensorflow", lambda: False)
  with pytest.raises(images.TensorFlowMissingError) as e:
    train.train_and_evaluate(gan_config({"data.in_memory": False}), str(path))
  message = str(e.value)
  assert "data.in_memory = False" in message and "'.[tf]'" in message and "\n" not in message
  assert isinstance(e.value, ValueError) and isinstance(e.value, ImportError)
  assert not path.exists()


# --- a learning rate that decays over train.num_steps ------------------------------------------

CONFIGS = REPO_ROOT / "experiments" / "configs"


def _config(name: str, arg: str, overrides: dict):
  config = load_config_module(CONFIGS / f"{name}.py").get_config(arg)
  apply_overrides(config, overrides)
  return config


def _learning_rates(config, steps) -> list[float] | None:
  """The family's learning rate at `steps`, or None for a family whose schedule does not read
  the config's train section."""
  family = train.load_family(config.family)
  if hasattr(family, "learning_rate_schedule"):
    schedule = family.learning_rate_schedule(config)
    return [float(schedule(s)) for s in steps]
  if config.family in ("rbm", "classrbm"):
    from genjax.families import rbm
    hp = rbm._hparams(config)
    return [float(rbm.learning_rate(hp, s)) for s in steps]
  return None


@pytest.mark.parametrize("name, arg, overrides", [
    ("cnn_mnist", "smoke", {}),
    ("cnn_mnist", "smoke", {"optim.schedule": "step"}),
    ("cnn_mnist", "smoke", {"optim.schedule": "constant"}),
    ("cnn_mnist", "smoke", {"optim.decay_steps": 30}),
    ("ssgan_mnist", "smoke", {}),
    ("ssgan_mnist", "smoke", {"optim.decay_fraction": 0.0}),
    ("ssgan_mnist", "smoke", {"optim.decay_steps": 30}),
    ("rbm_mnist", "smoke", {}),
    ("rbm_mnist", "smoke", {"optim.decay_start": 1.0}),
    ("classrbm_mnist", "hybrid,smoke", {}),
    ("vae_burda1_cpu", "smoke", {}),
    ("gan_mnist", "smoke", {}),
])
def test_schedule_reads_num_steps_as_the_family_does(name, arg, overrides):
  """The rule's verdict from the config equals the family's: do its learning rates over the first
  40 steps move when train.num_steps goes from 40 to 80?"""
  short = _config(name, arg, {**overrides, "train.num_steps": 40})
  long = _config(name, arg, {**overrides, "train.num_steps": 80})
  rates = _learning_rates(short, range(40)), _learning_rates(long, range(40))
  moved = rates[0] is not None and rates[0] != rates[1]
  assert workdir.schedule_reads_num_steps(short) == moved
  assert workdir.schedule_reads_num_steps(long) == moved


def test_the_rule_knows_every_family_that_reads_train_num_steps():
  """A family that reads train.num_steps must be one whose fields schedule_reads_num_steps
  checks (else extending its runs would silently change their schedule)."""
  def reads(text: str) -> bool:  # a config builder's `c.train.num_steps = ...` only writes it
    lines = [line for line in text.splitlines()
             if not re.match(r"\s*[\w.]*\btrain\.num_steps\s*=(?!=)", line)]
    return any("train.num_steps" in line or "t.num_steps" in line for line in lines)

  readers = {p.stem for p in (REPO_ROOT / "genjax" / "families").glob("*.py")
             if reads(p.read_text())}
  assert readers == {"neural_classifier", "ssgan", "rbm"}


def test_num_steps_is_refused_where_the_learning_rate_decays_over_it(tmp_path):
  recorded = _config("cnn_mnist", "smoke", {})
  workdir.record(recorded, str(tmp_path), {}, 20)
  longer = _config("cnn_mnist", "smoke", {"train.num_steps": 40})
  with pytest.raises(workdir.WorkdirError) as e:
    workdir.check(longer, str(tmp_path))
  message = str(e.value)
  assert "train.num_steps 20 -> 40 (the learning rate decays over it)" in message
  assert "--override" in message and "\n" not in message
  assert workdir.check(longer, str(tmp_path), override=True) == {"train.num_steps": (20, 40)}
  # A schedule of fixed length (optim.decay_steps) is extended like any other run.
  fixed = _config("cnn_mnist", "smoke", {"optim.decay_steps": 20})
  workdir.record(fixed, str(tmp_path), {}, 20)
  fixed.train.num_steps = 40
  assert workdir.check(fixed, str(tmp_path)) == {"train.num_steps": (20, 40)}


def test_a_workdir_recorded_before_the_objective_field_continues_at_its_meaning():
  """A workdir recorded before `model.joint_weight` existed meant the family's old objective:
  generative (1) for naive Bayes, plain cross-entropy (0) for the neural classifier. The new
  config at that value continues; another value is a change."""
  nb_old = {"family": "classical", "model": {"name": "bernoulli_nb"}}
  nb_new = {"family": "classical", "model": {"name": "bernoulli_nb", "joint_weight": 1.0,
                                             "max_iter": 200}}
  assert workdir.diff(nb_old, nb_new) == {}
  changed = workdir.diff(nb_old, {**nb_new, "model": {**nb_new["model"], "joint_weight": 0.0}})
  assert changed == {"model.joint_weight": (None, 0.0)}
  mlp_old = {"family": "classifier", "model": {"arch": "mlp"}}  # an earlier family name
  mlp_new = {"family": "neural_classifier",
             "model": {"arch": "mlp", "joint_weight": 0.0, "sgld_steps": 20,
                       "sgld_step_size": 1.0, "sgld_noise": 0.01, "buffer_size": 10000,
                       "reinit_prob": 0.05}}
  assert set(workdir.diff(mlp_old, mlp_new)) == {"family"}  # the rename, as before
  assert "model.joint_weight" in workdir.diff(
      mlp_old, {**mlp_new, "model": {**mlp_new["model"], "joint_weight": 0.5}})
