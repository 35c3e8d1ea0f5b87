"""Tests of genjax.checkpoint: bit-identical round trips of a real GAN state, retention, errors."""

import os
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
