"""Tests of the GAN family on the course-1 MLP GAN: sizes, init, one step by hand, goldens."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import rng
from genjax.families import gan
from genjax.state import count_params

GAN_MNIST = str(Path(__file__).resolve().parents[1] / "experiments" / "configs" / "gan_mnist.py")
B = 16  # a small batch keeps the step fast; the maths does not depend on it
LR = 1e-5  # gan_mnist's Adam learning rate
INIT_KEY, TRAIN_KEY = jax.random.split(jax.random.key(0))


def _train_step(state, batch, key):
  return gan.train_step(state, batch, key)


# Only non-saturating states with batches of B go through this function, so its compilation
# cache must hold exactly one program (see test_train_step_compiles_once).
TRAIN_STEP = jax.jit(_train_step)


def _config(generator_loss: str = "non_saturating"):
  config = gconfig.load(GAN_MNIST)
  config.model.generator_loss = generator_loss
  return config


def _fixed_batch(b: int = B) -> dict:
  """A deterministic batch of (b, 28, 28, 1) images in [0, 1] that needs no PRNG and no data."""
  i = np.arange(b)[:, None, None, None]
  r = np.arange(28)[None, :, None, None]
  c = np.arange(28)[None, None, :, None]
  return {"image": jnp.asarray(((i * 37 + r * 11 + c * 5) % 256) / 255.0, jnp.float32)}


def _leaves_equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                 strict=True))


def _softplus(x):
  return np.logaddexp(0.0, np.asarray(x, np.float64))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@pytest.fixture(scope="module")
def states() -> tuple[gan.GANState, gan.GANState]:
  """Initial states from seed 0 with the non-saturating and the minimax generator loss."""
  ns, mm = _config(), _config("minimax")
  return jax.jit(lambda k: (gan.create_state(k, ns), gan.create_state(k, mm)))(INIT_KEY)


@pytest.fixture(scope="module")
def state(states) -> gan.GANState:
  return states[0]


@pytest.fixture(scope="module")
def stepped(state):
  """The state and metrics after one and two train steps on the fixed batch."""
  one, m1 = TRAIN_STEP(state, _fixed_batch(), TRAIN_KEY)
  two, m2 = TRAIN_STEP(one, _fixed_batch(), TRAIN_KEY)
  return one, m1, two, m2


@pytest.fixture(scope="module")
def minimax_stepped(states):
  """The minimax state and its state and metrics after one train step on the fixed batch."""
  start = states[1]
  return (start, *jax.jit(gan.train_step)(start, _fixed_batch(), TRAIN_KEY))


# ----------------------------------------------------------------------------- architecture

def test_parameter_counts_match_the_course_architecture(state):
  def linear(i, o):
    return i * o + o

  bn = lambda n: 2 * n  # scale and bias
  g_expected = (linear(64, 128) + bn(128) + linear(128, 256) + bn(256) + linear(256, 512)
                + bn(512) + linear(512, 1024) + bn(1024) + linear(1024, 784))
  d_expected = linear(784, 512) + linear(512, 256) + linear(256, 128) + linear(128, 1)
  assert g_expected == 1_505_680 and d_expected == 566_273
  assert count_params(state.generator.params) == g_expected
  assert count_params(state.discriminator.params) == d_expected
  # Running mean and variance of the four batch norms are statistics, not parameters.
  assert count_params(state.generator.batch_stats) == 2 * (128 + 256 + 512 + 1024)
  assert state.discriminator.batch_stats == {}


def test_layer_shapes(state):
  g, d = state.generator.params, state.discriminator.params
  widths = [64, 128, 256, 512, 1024, 784]
  for i in range(5):
    assert g[f"TorchDense_{i}"]["Dense_0"]["kernel"].shape == (widths[i], widths[i + 1])
  for i in range(4):
    assert g[f"BatchNorm_{i}"]["scale"].shape == (widths[i + 1],)
  d_widths = [784, 512, 256, 128, 1]
  for i in range(4):
    assert d[f"TorchDense_{i}"]["Dense_0"]["kernel"].shape == (d_widths[i], d_widths[i + 1])


def _dense_layers(params):
  return [(k, v["Dense_0"]) for k, v in sorted(params.items()) if k.startswith("TorchDense")]


def test_torch_style_init_bounds(state):
  for net in (state.generator.params, state.discriminator.params):
    for name, layer in _dense_layers(net):
      kernel = np.asarray(layer["kernel"], np.float64)
      bias = np.asarray(layer["bias"], np.float64)
      bound = 1.0 / math.sqrt(kernel.shape[0])
      assert np.abs(kernel).max() <= bound, name
      assert np.abs(bias).max() <= bound, name
      # U(-bound, bound): mean 0 and variance bound^2 / 3 (5-sigma tolerances).
      n = kernel.size
      assert abs(kernel.mean()) < 5 * bound / math.sqrt(3 * n), name
      assert abs(kernel.var() / (bound**2 / 3) - 1.0) < 5 * math.sqrt(0.8 / n), name
      if n >= 10_000:
        assert np.abs(kernel).max() > 0.999 * bound, name  # reaches the bound: not a normal
  for i in range(4):
    bn = state.generator.params[f"BatchNorm_{i}"]
    stats = state.generator.batch_stats[f"BatchNorm_{i}"]
    assert np.all(bn["scale"] == 1.0) and np.all(bn["bias"] == 0.0)
    assert np.all(stats["mean"] == 0.0) and np.all(stats["var"] == 1.0)


def test_initial_state(state):
  assert int(state.step) == 0 and state.step.dtype == jnp.int32
  assert state.hparams == gan.GANHParams(z_dim=64, generator_loss="non_saturating",
                                         real_label=1.0)


def test_output_shapes_and_ranges(state):
  x = gan.sample(state, jax.random.key(3), B)
  assert x.shape == (B, 28, 28, 1) and x.dtype == jnp.float32
  assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  logits = state.discriminator.module.apply({"params": state.discriminator.params}, x)
  assert logits.shape == (B,)
  assert np.all(np.isfinite(logits))


def test_unknown_generator_loss_and_arch_raise():
  with pytest.raises(ValueError, match="unknown model.generator_loss 'wasserstein'"):
    gan.create_state(INIT_KEY, _config("wasserstein"))
  config = _config()
  config.model.arch = "resnet"
  with pytest.raises(ValueError, match="unknown GAN architecture 'resnet'"):
    gan.create_state(INIT_KEY, config)


# ----------------------------------------------------------------------------- train step

def test_train_step_is_deterministic(state, stepped):
  one, m1, _, _ = stepped
  again, m1_again = TRAIN_STEP(state, _fixed_batch(), TRAIN_KEY)
  assert _leaves_equal(again, one)
  assert {k: float(v) for k, v in m1_again.items()} == {k: float(v) for k, v in m1.items()}
  # Another key gives other noise, hence other metrics.
  _, m_other = TRAIN_STEP(state, _fixed_batch(), jax.random.key(99))
  assert float(m_other["g_loss"]) != float(m1["g_loss"])


def test_train_step_increments_the_step(stepped):
  one, _, two, _ = stepped
  assert int(one.step) == 1 and int(two.step) == 2
  assert one.step.dtype == jnp.int32
  # Both Adam states took exactly one update.
  assert int(jax.tree.leaves(one.generator.opt_state)[0]) == 1
  assert int(jax.tree.leaves(one.discriminator.opt_state)[0]) == 1


def _abs_deltas(before, after) -> dict:
  return {jax.tree_util.keystr(p): np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))
          for (p, u), v in zip(jax.tree_util.tree_leaves_with_path(before),
                               jax.tree.leaves(after), strict=True)}


def test_first_step_moves_every_parameter_by_the_adam_step(state, stepped):
  one = stepped[0]
  # Adam's first update is lr * g / (|g| + eps): |delta| <= lr, and ~lr wherever |g| >> eps.
  for net in ("generator", "discriminator"):
    deltas = _abs_deltas(getattr(state, net).params, getattr(one, net).params)
    for name, d in deltas.items():
      assert d.max() <= LR * 1.01, (net, name)
      pre_bn_bias = net == "generator" and "bias" in name and "TorchDense_4" not in name \
          and "TorchDense" in name
      if pre_bn_bias:
        # Batch norm subtracts the batch mean: the bias before it has zero gradient.
        assert d.max() < 0.25 * LR, (net, name)
      else:
        assert np.mean(d > 0.5 * LR) > 0.99, (net, name)


def test_first_step_updates_batch_norm_running_stats_twice(state, stepped):
  one = stepped[0]
  g = state.generator
  k_d, k_g = jax.random.split(rng.step_key(TRAIN_KEY, 0))
  dense0 = g.params["TorchDense_0"]["Dense_0"]

  def first_layer_batch_mean(k):
    z = np.asarray(rng.normal(k, B, (64,)), np.float64)
    h = z @ np.asarray(dense0["kernel"], np.float64) + np.asarray(dense0["bias"], np.float64)
    return h.mean(0)

  # Generator forward passes in training mode: one for the discriminator's fakes, one for
  # the generator's loss (as in the course's PyTorch code); flax momentum 0.9 each time.
  expected = 0.9 * (0.1 * first_layer_batch_mean(k_d)) + 0.1 * first_layer_batch_mean(k_g)
  got = np.asarray(one.generator.batch_stats["BatchNorm_0"]["mean"])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
  for i in range(4):
    before, after = g.batch_stats[f"BatchNorm_{i}"], one.generator.batch_stats[f"BatchNorm_{i}"]
    assert not np.allclose(before["mean"], after["mean"])
    assert not np.allclose(before["var"], after["var"])
    assert np.all(np.asarray(after["var"]) > 0.0)


def _hand_step_logits(state, new_state, batch, key):
  """Real and fake logits of the step's discriminator update and the generator update."""
  g, d = state.generator, state.discriminator
  k_d, k_g = jax.random.split(rng.step_key(key, state.step))

  def generate(k):
    x, _ = g.module.apply(g.variables, rng.normal(k, B, (64,)), train=True,
                          mutable=["batch_stats"])
    return x

  disc = lambda params, x: d.module.apply({"params": params}, x)
  real_logits = disc(d.params, batch["image"])
  fake_logits = disc(d.params, generate(k_d))
  # The generator is scored by the *updated* discriminator.
  g_logits = disc(new_state.discriminator.params, generate(k_g))
  return real_logits, fake_logits, g_logits


@pytest.mark.parametrize("generator_loss", ["non_saturating", "minimax"])
def test_train_step_metrics_match_closed_forms(generator_loss, state, stepped, minimax_stepped):
  if generator_loss == "non_saturating":
    start, (new_state, metrics) = state, stepped[:2]
  else:
    start, new_state, metrics = minimax_stepped
  real, fake, g_logits = _hand_step_logits(start, new_state, _fixed_batch(), TRAIN_KEY)
  d_loss = 0.5 * (np.mean(_softplus(-real)) + np.mean(_softplus(fake)))
  if generator_loss == "non_saturating":
    g_loss = np.mean(_softplus(-g_logits))  # -log D(G(z))
  else:
    g_loss = -np.mean(_softplus(g_logits))  # log(1 - D(G(z)))
  np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_real"], np.mean(_sigmoid(real)), rtol=1e-5)
  np.testing.assert_allclose(metrics["d_fake"], np.mean(_sigmoid(fake)), rtol=1e-5)


def test_minimax_switch_changes_only_the_generator_loss(state, stepped, minimax_stepped):
  _, m_ns, _, _ = stepped
  minimax, new_mm, m_mm = minimax_stepped
  assert minimax.hparams.generator_loss == "minimax"
  assert _leaves_equal(minimax, state)  # same key, same networks: only the loss differs
  # The discriminator update does not depend on the generator's loss ...
  np.testing.assert_allclose(m_mm["d_loss"], m_ns["d_loss"], rtol=1e-6)
  np.testing.assert_allclose(m_mm["d_real"], m_ns["d_real"], rtol=1e-6)
  # ... the generator's does: minimax is log(1 - D) < 0, non-saturating -log D > 0.
  assert float(m_mm["g_loss"]) < 0.0 < float(m_ns["g_loss"])
  one_ns = stepped[0]
  assert not np.allclose(new_mm.generator.params["TorchDense_4"]["Dense_0"]["kernel"],
                         one_ns.generator.params["TorchDense_4"]["Dense_0"]["kernel"])


# Metrics of the first two train steps from seed 0 on _fixed_batch(): they pin the maths of
# the step (losses, noise, init, optimiser). Recompute and paste only for an intended change.
GOLDEN_STEP_1 = {"d_loss": 0.6942991018295288, "g_loss": 0.6946412920951843,
                 "d_real": 0.4984663426876068, "d_fake": 0.49960654973983765}
GOLDEN_STEP_2 = {"d_loss": 0.6939632892608643, "g_loss": 0.6951361298561096,
                 "d_real": 0.4986042380332947, "d_fake": 0.4994089901447296}


def test_golden_metrics_of_two_steps(stepped):
  _, m1, _, m2 = stepped
  for got, want in ((m1, GOLDEN_STEP_1), (m2, GOLDEN_STEP_2)):
    assert set(got) == set(want)
    for k, v in want.items():
      np.testing.assert_allclose(float(got[k]), v, rtol=1e-5, err_msg=k)


def test_train_step_compiles_once(state):
  s = state
  for i in range(4):
    batch = {"image": _fixed_batch()["image"] * (0.5 + 0.1 * i)}
    s, metrics = TRAIN_STEP(s, batch, jax.random.key(i))
  assert int(s.step) == 4
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert TRAIN_STEP._cache_size() == 1


# ----------------------------------------------------------------------------- eval and sample

def test_eval_step_metrics(stepped):
  one = stepped[0]
  key = jax.random.key(5)
  batch = _fixed_batch()
  metrics = jax.jit(gan.eval_step)(one, batch, key)
  assert set(metrics) == {"d_loss", "g_loss", "d_accuracy", "d_real", "d_fake"}
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["d_loss"]) > 0.0 and float(metrics["g_loss"]) > 0.0
  assert 0.0 < float(metrics["d_real"]) < 1.0 and 0.0 < float(metrics["d_fake"]) < 1.0
  acc = float(metrics["d_accuracy"])
  assert 0.0 <= acc <= 1.0
  assert abs(acc * 2 * B - round(acc * 2 * B)) < 1e-4  # a count of correct calls over 2B
  # Eval's fakes are sample()'s images for the same key (inference-mode generator).
  d = one.discriminator
  disc = lambda x: np.asarray(d.module.apply({"params": d.params}, x), np.float64)
  real, fake = disc(batch["image"]), disc(gan.sample(one, key, B))
  np.testing.assert_allclose(metrics["d_fake"], np.mean(_sigmoid(fake)), rtol=1e-5)
  np.testing.assert_allclose(metrics["d_real"], np.mean(_sigmoid(real)), rtol=1e-5)
  np.testing.assert_allclose(
      metrics["d_loss"], 0.5 * (np.mean(_softplus(-real)) + np.mean(_softplus(fake))), rtol=1e-5)
  np.testing.assert_allclose(metrics["g_loss"], np.mean(_softplus(-fake)), rtol=1e-5)
  np.testing.assert_allclose(acc, 0.5 * (np.mean(real > 0) + np.mean(fake <= 0)), atol=1e-6)


def test_sample_is_deterministic_and_uses_running_statistics(stepped):
  one = stepped[0]
  key = jax.random.key(6)
  x = gan.sample(one, key, 8)
  assert x.shape == (8, 28, 28, 1)
  np.testing.assert_array_equal(x, gan.sample(one, key, 8))
  assert not np.allclose(x, gan.sample(one, jax.random.key(7), 8))
  # Inference-mode batch norm: an image does not depend on the others drawn with it.
  np.testing.assert_allclose(gan.sample(one, key, 16)[:8], x, rtol=1e-5, atol=1e-6)
  # It is the generator applied with the running statistics ...
  g = one.generator
  z = rng.normal(key, 8, (64,))
  np.testing.assert_allclose(x, g.module.apply(g.variables, z, train=False), atol=1e-6)
  # ... and those statistics matter.
  shifted = one.replace(generator=g.replace(batch_stats=jax.tree.map(
      lambda s: s * 2.0 + 0.5, g.batch_stats)))
  assert not np.allclose(gan.sample(shifted, key, 8), x, atol=1e-3)
