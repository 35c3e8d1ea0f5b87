"""Tests of JEM (genjax.jem and the neural classifier's joint_weight): SGLD against its closed form
for linear logits, the replay buffer's restarts against the binomial, the blended step against
an independent write-out of (1 - lambda) CE + lambda (-log p(x, y)), joint_weight 0 as the plain
classifier bit for bit, and bad settings."""

import dataclasses
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, apply_overrides, image_batch

from genjax import config as gconfig
from genjax import jem
from genjax.families import neural_classifier as classifier

MLP_CONFIG = REPO_ROOT / "experiments" / "configs" / "mlp_mnist.py"


def tiny_config(**model):
  """mlp_mnist's smoke config on a tiny MLP (784-8-10, no dropout), batch 8."""
  config = gconfig.load(f"{MLP_CONFIG}:smoke")
  config.unlock()
  apply_overrides(config, {"model.hidden": (8,), "model.dropout_rate": 0.0,
                           "model.input_dropout_rate": 0.0, "data.batch_size": 8,
                           "model.buffer_size": 32, "model.sgld_steps": 3,
                           "model.sgld_step_size": 0.5, "model.sgld_noise": 0.1,
                           **{f"model.{k}": v for k, v in model.items()}})
  return config


def _noise(keys_B: jax.Array, t: int, shape) -> np.ndarray:
  """SGLD's documented eps of step t: normal(fold_in(keys_B[i], t)) for example i."""
  return np.stack([np.asarray(jax.random.normal(jax.random.fold_in(k, t), shape), np.float64)
                   for k in keys_B])


# ----------------------------------------------------------------------------- the sampler


@pytest.mark.parametrize("steps", [1, 3])
def test_sgld_is_the_closed_form_for_linear_logits(steps):
  # f(x) = W x + b: grad_x logsumexp f(x) = W^T softmax(W x + b).
  rs = np.random.RandomState(0)
  w_KxD, b_K = rs.normal(size=(3, 4)), rs.normal(size=3)
  x_BxD = rs.uniform(size=(5, 4))
  keys = jax.random.split(jax.random.key(1), 5)
  alpha, sigma = 0.3, 0.05
  ours = jem.sgld(lambda x: x @ jnp.asarray(w_KxD.T, jnp.float32) + jnp.asarray(b_K, jnp.float32),
                  jnp.asarray(x_BxD, jnp.float32), keys, steps, alpha, sigma)
  x = x_BxD
  for t in range(steps):
    logits = x @ w_KxD.T + b_K
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    x = x + alpha * p @ w_KxD + sigma * _noise(keys, t, (4,))
  # float32 rounding of entries of size ~1, a few operations per step.
  np.testing.assert_allclose(ours, x, rtol=0, atol=1e-5 * steps)


def test_sgld_moves_up_the_log_mass_of_a_network():
  # Without noise, small steps of gradient ascent on logsumexp f raise it (here for a random
  # tiny MLP): the sampler ascends, it does not descend.
  config = tiny_config()
  state = classifier.create_state(jax.random.key(0), config)
  m = state.model

  def log_mass(x):
    return -jem.energy(m.module.apply(m.variables, x, train=False))

  x = image_batch(8)["image"]
  keys = jax.random.split(jax.random.key(1), 8)
  moved = jem.sgld(lambda x: m.module.apply(m.variables, x, train=False), x, keys, 5, 1e-3, 0.0)
  assert np.all(np.asarray(log_mass(moved)) > np.asarray(log_mass(x)))


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_buffer_restarts_are_binomial_and_uniform(p):
  buffer = jnp.full((64, 2, 2, 1), 2.0)  # outside [0, 1): a restart is recognisable
  draws, batch = 2000, 32

  @jax.jit
  def starts(key):
    return jem.buffer_starts(buffer, key, batch, p)

  x, rows, reinit = jax.vmap(starts)(jax.random.split(jax.random.key(0), draws))
  x, reinit = np.asarray(x), np.asarray(reinit)
  np.testing.assert_array_equal(reinit, np.all(x != 2.0, axis=(2, 3, 4)))
  # n Bernoulli(p) restarts: within 4.5 standard deviations (a false alarm 1 in 150,000).
  n = draws * batch
  assert abs(reinit.mean() - p) <= 4.5 * math.sqrt(p * (1 - p) / n), reinit.mean()
  fresh = x[reinit]  # uniform [0, 1): mean 1/2, variance 1/12
  assert fresh.min() >= 0.0 and fresh.max() < 1.0
  assert abs(fresh.mean() - 0.5) <= 4.5 * math.sqrt(1 / 12 / fresh.size)
  # Rows: distinct within a step, each row equally likely over the steps (64 cells of the
  # multinomial, 64,000 draws: the chi-square's 4.5-sigma point).
  rows = np.asarray(rows)
  assert all(len(set(r)) == batch for r in rows)
  counts = np.bincount(rows.ravel(), minlength=64)
  expected = n / 64
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 <= 63 + 4.5 * math.sqrt(2 * 63), chi2


def test_replay_writes_the_samples_to_their_rows():
  config = tiny_config(joint_weight=0.5)
  state = classifier.create_state(jax.random.key(0), config)
  m, hp = state.model, state.jem_hparams
  key = jax.random.key(3)

  def logits_fn(x):
    return m.module.apply(m.variables, x, train=False)

  x, buffer = jax.jit(jem.replay_sgld, static_argnums=(1, 3, 4))(state.buffer, logits_fn, key,
                                                                 8, hp)
  _, rows, _ = jem.buffer_starts(state.buffer, key, 8, hp.reinit_prob)
  rows = np.asarray(rows)
  np.testing.assert_array_equal(np.asarray(buffer)[rows], x)
  others = np.setdiff1d(np.arange(32), rows)
  np.testing.assert_array_equal(np.asarray(buffer)[others], np.asarray(state.buffer)[others])
  assert not np.allclose(np.asarray(buffer)[rows], np.asarray(state.buffer)[rows])


# ----------------------------------------------------------------------------- the step


def _reference_loss(params, state, lam, x, labels, x_sample):
  """(1 - lam) CE + lam (-log p(x, y)), -log p(x, y) = -f(x)[y] + log Z and log Z estimated by
  the samples' mean logsumexp f (its gradient is the expected gradient of -E under p)."""
  module = state.model.module

  def logits(x):
    return module.apply({"params": params}, x, train=True)

  f = logits(x)
  f_y = jnp.take_along_axis(f, labels[:, None], -1)[:, 0]
  ce = jnp.mean(jax.nn.logsumexp(f, -1) - f_y)
  log_z = jnp.mean(jax.nn.logsumexp(logits(x_sample), -1))
  return (1 - lam) * ce + lam * (-jnp.mean(f_y) + log_z)


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_jem_step_is_the_blend_of_cross_entropy_and_joint(lam):
  config = tiny_config(joint_weight=lam)
  state = classifier.create_state(jax.random.key(0), config)
  state = state.replace(step=jnp.asarray(3, jnp.int32))
  batch = image_batch(8, seed=1)
  key = jax.random.key(4)
  new, metrics = jax.jit(classifier.train_step)(state, batch, key)
  # The sampler's documented key: stream 1 of the step key; its samples are the rows it wrote.
  sgld_key = jax.random.fold_in(jax.random.fold_in(key, 3), 1)
  m = state.model
  x_sample, buffer = jem.replay_sgld(state.buffer,
                                     lambda x: m.module.apply(m.variables, x, train=False),
                                     sgld_key, 8, state.jem_hparams)
  np.testing.assert_allclose(new.buffer, buffer, rtol=1e-5, atol=1e-6)
  loss, grads = jax.value_and_grad(_reference_loss)(m.params, state, lam, batch["image"],
                                                    batch["label"], x_sample)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      metrics["loss"], metrics["cross_entropy"]
      + lam * (metrics["energy_data"] - metrics["energy_sample"]), rtol=1e-6, atol=1e-6)
  # The gradient, read from Adam's first moment after its first update ((1 - b1) g): float32
  # sums of a few hundred terms, 1e-5 of the leaf's largest entry.
  mu = [x for path, x in jax.tree_util.tree_leaves_with_path(new.model.opt_state)
        if ".mu[" in jax.tree_util.keystr(path)]
  assert len(mu) == len(jax.tree.leaves(grads))
  for ours, g in zip(mu, jax.tree.leaves(grads), strict=True):
    g = np.asarray(g)
    np.testing.assert_allclose(np.asarray(ours) / (1 - config.optim.b1), g, rtol=0,
                               atol=1e-5 * np.abs(g).max() + 1e-9)
  assert int(new.step) == 4


def test_joint_weight_zero_is_the_plain_classifier_bit_for_bit():
  with_fields = tiny_config()  # joint_weight 0, the default
  assert with_fields.model.joint_weight == 0.0
  plain = tiny_config()
  for name in jem.config_fields():
    del plain.model[name]  # a classifier config from before JEM
  key = jax.random.key(0)
  ours, theirs = (classifier.create_state(key, c) for c in (with_fields, plain))
  assert ours.buffer is None
  assert ours.jem_hparams == theirs.jem_hparams  # unused settings do not enter the step

  def paths(tree):  # the checkpoint's layout
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]

  assert paths(ours) == paths(theirs)
  batch = image_batch(8, seed=2)
  step = jax.jit(classifier.train_step)
  (ours, m_ours), (theirs, m_theirs) = (step(s, batch, key) for s in (ours, theirs))
  assert set(m_ours) == {"loss", "accuracy"}
  assert paths((ours, m_ours)) == paths((theirs, m_theirs))
  for a, b in zip(jax.tree.leaves((ours, m_ours)), jax.tree.leaves((theirs, m_theirs)),
                  strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("field, value, message", [
    ("joint_weight", 1.5, r"model\.joint_weight must be in \[0, 1\]"),
    ("joint_weight", -0.1, r"model\.joint_weight must be in \[0, 1\]"),
    ("joint_weight", float("nan"), r"model\.joint_weight must be in \[0, 1\]"),
    ("reinit_prob", 1.2, r"model\.reinit_prob must be in \[0, 1\]"),
    ("sgld_steps", 0, r"model\.sgld_steps must be >= 1"),
    ("buffer_size", 4, r"model\.buffer_size must be >= data\.batch_size \(8\)"),
])
def test_bad_settings_fail_in_one_line_before_compiling(field, value, message, monkeypatch):
  settings = {"joint_weight": 0.5, field: value}  # the sampler's fields matter at lambda > 0
  config = tiny_config(**settings)

  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled before the config was checked")

  monkeypatch.setattr(jax, "jit", no_compiling)
  monkeypatch.setattr(classifier, "init_variables", no_compiling)
  with pytest.raises(ValueError, match=message) as e:
    classifier.create_state(jax.random.key(0), config)
  assert "\n" not in str(e.value)


def test_jem_refuses_batch_norm():
  config = gconfig.load(f"{REPO_ROOT / 'experiments' / 'configs' / 'cnn_mnist.py'}:smoke")
  config.unlock()
  config.model.update(jem.config_fields(joint_weight=0.5))
  with pytest.raises(ValueError, match="without batch norm"):
    classifier.create_state(jax.random.key(0), config)


def test_hparams_read_every_field():
  config = tiny_config(joint_weight=0.25, reinit_prob=0.5)
  hp = jem.hparams(config.model, config.data.batch_size)
  assert hp == dataclasses.replace(jem.JEMHParams(), joint_weight=0.25, sgld_steps=3,
                                   sgld_step_size=0.5, sgld_noise=0.1, buffer_size=32,
                                   reinit_prob=0.5)


_CONFORMANCE = """
import sys
from conftest import apply_overrides
from genjax import config as gconfig, conformance
config = gconfig.load({config!r})
config.unlock()
apply_overrides(config, {{"data.batch_size": 16, "model.joint_weight": 0.5,
                         "model.hidden": (64,)}})
problems = conformance.check(config, num_steps=2)
print(problems)
sys.exit(any(problems.values()))
"""


@pytest.mark.slow  # 1 to 5 minutes: eight simulated devices, compiled twice
def test_jem_step_on_eight_devices_is_the_one_device_step(tfds_data_dir):
  del tfds_data_dir  # the subprocess reads TFDS_DATA_DIR from the environment
  # Each device samples its slice of the batch with the global batch's per-example keys and
  # every device writes all the samples to its copy of the buffer (genjax.conformance: the
  # state after each step under pmap and shard_map against one device, and every device's copy
  # the same).
  tests = os.pathsep.join(p for p in (str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH"))
                          if p)  # the subprocess imports conftest's helpers
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
         "JAX_PLATFORMS": "cpu", "PYTHONPATH": tests}
  code = _CONFORMANCE.format(config=f"{MLP_CONFIG}:smoke")
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=900, cwd=REPO_ROOT)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
