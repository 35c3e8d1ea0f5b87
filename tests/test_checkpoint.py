"""Tests of genjax.checkpoint: bit-identical round trips of a real GAN state, retention, errors."""

import asyncio
import errno
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import checkpoint
from genjax import config as gconfig
from genjax.families import gan

TRAIN_STEP = jax.jit(gan.train_step)
GAN_MNIST = str(Path(__file__).resolve().parents[1] / "experiments" / "configs" / "gan_mnist.py")


def _leaves_identical(a, b) -> bool:
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(
      np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
      for x, y in zip(la, lb, strict=True))


def _batch():
  return {"image": jax.random.uniform(jax.random.key(1), (8, 28, 28, 1))}


@pytest.fixture(scope="module")
def states():
  """A fresh GAN state and the states after one and two train steps (non-trivial Adam state).

  Everything is committed to the device, as restored arrays are, so that the train step
  compiles once for the whole module.
  """
  config = gconfig.load(GAN_MNIST)
  config.model.real_label = 0.9  # a non-default static field, to see it survive
  dev = jax.devices()[0]
  fresh = jax.device_put(jax.jit(lambda k: gan.create_state(k, config))(jax.random.key(0)), dev)
  batch, key = jax.device_put((_batch(), jax.random.key(2)), dev)
  one, _ = TRAIN_STEP(fresh, batch, key)
  two, _ = TRAIN_STEP(one, batch, key)
  return fresh, one, two


def test_round_trip_is_bit_identical_and_keeps_static_fields(tmp_path, states):
  fresh, one, _ = states
  ck = checkpoint.Checkpointer(str(tmp_path / "ckpt"))
  ck.save(1, one)
  # Restore into the structure of a *fresh* state: every leaf must come from the checkpoint.
  restored = ck.restore(fresh)
  ck.close()
  assert type(restored) is gan.GANState
  assert jax.tree.structure(restored) == jax.tree.structure(one)
  assert _leaves_identical(restored, one)
  assert not _leaves_identical(restored, fresh)
  assert int(restored.step) == 1 and restored.step.dtype == jnp.int32
  assert restored.hparams == one.hparams
  assert restored.hparams.real_label == 0.9
  assert restored.generator.module == one.generator.module
  assert restored.discriminator.module == one.discriminator.module
  assert restored.generator.tx is one.generator.tx
  # The Adam count and moments came back (not re-initialised).
  count = jax.tree.leaves(restored.generator.opt_state)[0]
  assert int(count) == 1


def test_restored_state_trains_like_the_original(tmp_path, states):
  fresh, one, two = states
  ck = checkpoint.Checkpointer(str(tmp_path / "ckpt"))
  ck.save(1, one)
  restored = ck.restore(fresh)
  ck.close()
  dev = jax.devices()[0]
  batch, key = jax.device_put((_batch(), jax.random.key(2)), dev)
  resumed, _ = TRAIN_STEP(restored, batch, key)
  assert _leaves_identical(resumed, two)


def test_keep_two_keeps_the_last_two_steps(tmp_path, states):
  fresh, one, two = states
  directory = tmp_path / "ckpt"
  ck = checkpoint.Checkpointer(str(directory), keep=2)
  assert ck.latest_step() is None and ck.all_steps() == []
  for step, state in ((1, fresh), (2, one), (3, two)):
    ck.save(step, state)
  assert ck.all_steps() == [2, 3]
  assert ck.latest_step() == 3
  assert sorted(os.listdir(directory)) == ["2", "3"]
  assert _leaves_identical(ck.restore(fresh), two)
  assert _leaves_identical(ck.restore(fresh, step=2), one)
  ck.close()
  # A new Checkpointer on the same directory (a resumed run) sees the same steps.
  again = checkpoint.Checkpointer(str(directory), keep=2)
  assert again.latest_step() == 3 and again.all_steps() == [2, 3]
  again.close()


def test_restore_from_an_empty_directory_raises(tmp_path, states):
  fresh = states[0]
  ck = checkpoint.Checkpointer(str(tmp_path / "empty"))
  assert os.path.isdir(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="no checkpoint in"):
    ck.restore(fresh)
  ck.close()


def test_directory_is_made_absolute(tmp_path, states, monkeypatch):
  monkeypatch.chdir(tmp_path)
  ck = checkpoint.Checkpointer("relative/ckpt")
  assert ck.directory == os.path.join(str(tmp_path), "relative", "ckpt")
  ck.save(5, states[0])
  assert ck.latest_step() == 5
  ck.close()


# Checkpoint 1 is written; then files may not grow past LIMIT bytes (RLIMIT_FSIZE: a write past
# it fails with EFBIG, as a write to a full disk fails with ENOSPC) while checkpoint 2 is written:
# its metadata fits, its arrays' data file does not. Then the limit is lifted and checkpoint 2
# written again. What the script saw is printed as JSON on stdout; "retrying" on stderr marks
# where the failed save's output ends.
FILE_SIZE_LIMIT = 256 << 10
WRITE_PAST_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
import numpy as np
from genjax import checkpoint

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
directory, limit = sys.argv[1], int(sys.argv[2])
# 64 arrays of 64 KiB: the writes of all of them are in flight when the data file fails.
state = {f"w{i:02d}": np.random.default_rng(i).standard_normal((128, 128), np.float32)
         for i in range(64)}
later = {k: v + 1 for k, v in state.items()}
ck = checkpoint.Checkpointer(directory, keep=3)
ck.save(1, state, extra={"step": 1})
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
try:
  ck.save(2, later, extra={"step": 2})
  error = None
except checkpoint.CheckpointWriteError as e:
  error = {"errno": e.errno, "message": str(e)}
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
seen = {"error": error, "steps": ck.all_steps(), "extras": [ck.extra(1), ck.extra(2)],
        "kept": all(np.array_equal(a, b) for a, b in zip(
            ck.restore(state, 1).values(), state.values(), strict=True))}
print("retrying", file=sys.stderr, flush=True)
ck.save(2, later, extra={"step": 2})
seen["retried"] = {"steps": ck.all_steps(), "extra": ck.extra(2),
                   "restores": all(np.array_equal(a, b) for a, b in zip(
                       ck.restore(state).values(), later.values(), strict=True))}
ck.close()
print(json.dumps(seen))
"""


def test_a_checkpoint_past_a_file_size_limit_fails_in_one_error_and_loses_nothing(
    tmp_path, subprocess_env):
  """The failed save raises CheckpointWriteError (EFBIG, naming the step and the directory) and
  prints nothing: none of orbax's thread tracebacks, none of tensorstore's "Event loop is
  closed". Checkpoint 1 and its extra are intact, step 2 left no extra, and the same save once
  there is room writes checkpoint 2."""
  directory = tmp_path / "ckpt"
  done = subprocess.run([sys.executable, "-c", WRITE_PAST_A_FILE_SIZE_LIMIT, str(directory),
                         str(FILE_SIZE_LIMIT)], env=subprocess_env(1), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-4000:]
  failed_save_output = done.stderr.partition("retrying")[0]
  assert failed_save_output == "", failed_save_output[-4000:]
  # Nor later: the writes still in flight may end after the save has failed.
  assert "Event loop is closed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
  seen = json.loads(done.stdout.splitlines()[-1])
  assert seen["error"] == {
      "errno": errno.EFBIG,
      "message": f"checkpoint 2 could not be written to {directory} (File too large, EFBIG)"}
  assert seen["steps"] == [1] and seen["extras"] == [{"step": 1}, None] and seen["kept"]
  assert seen["retried"] == {"steps": [1, 2], "extra": {"step": 2}, "restores": True}


def test_only_asyncio_refusing_to_wake_a_closed_loop_is_dropped():
  """The hook drops the unraisable RuntimeError of call_soon_threadsafe on a closed loop; the
  same message raised elsewhere, or blamed on an object, goes to the hook it replaced."""
  loop = asyncio.new_event_loop()
  loop.close()
  with pytest.raises(RuntimeError, match="Event loop is closed") as refused:
    loop.call_soon_threadsafe(print)
  try:
    raise RuntimeError("Event loop is closed")
  except RuntimeError as e:
    elsewhere = e

  def unraisable(exc, obj=None):
    return types.SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=exc.__traceback__,
                                 err_msg=None, object=obj)

  wakeup = unraisable(refused.value)
  others = [unraisable(elsewhere), unraisable(refused.value, obj=loop),
            unraisable(ValueError("Event loop is closed"))]
  assert checkpoint.is_closed_loop_wakeup(wakeup)
  passed_on = []
  hook = checkpoint._DropClosedLoopWakeups(passed_on.append)
  for u in [wakeup, *others]:
    hook(u)
  assert passed_on == others
