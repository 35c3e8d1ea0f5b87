"""Tests of the semi-supervised GAN family (genjax.families.ssgan, genjax.nn.ssgan): the K+1-class
discriminator's D(x) and losses against float64 NumPy, weight normalisation and its
data-dependent initialisation, per-example noise, a train step on tiny networks, and the smoke
config through the generic loop."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import config as gconfig
from genjax.families import ssgan
from genjax.nn.ssgan import SSGANDiscriminator, WeightNormDense, weight_norm_kernel

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "ssgan_mnist.py"
K = 10

# Tolerance of float32 against float64. Each float32 operation rounds to 2^-24 ~ 6e-8 of its
# result, and logsumexp, softplus, their difference and a batch mean all work at the scale of
# the largest intermediate, at most max|logit| + log K. A dozen such roundings stay below 1e-6 of
# that scale (an absolute error: log D = lse - softplus(lse) is a cancellation, near 0 where lse
# is large, so a relative tolerance on it would be meaningless).
TOL = 1e-6


def _scale(logits) -> float:
  return max(1.0, float(np.max(np.abs(logits))) + np.log(K))


def _logits(seed: int, b: int = 64, sd: float = 3.0) -> np.ndarray:
  """float32 logits; rows 0 and 1 large (D near 1 and near 0: overflow and cancellation)."""
  x = np.random.RandomState(seed).normal(0.0, sd, (b, K)).astype(np.float32)
  x[0], x[1] = 80.0 + x[0] / sd, -80.0 + x[1] / sd
  return x


def _np_lse(x):
  x = np.asarray(x, np.float64)
  m = x.max(-1)
  return m + np.log(np.exp(x - m[:, None]).sum(-1))


# ----------------------------------------------------------------------- D and the losses


def test_d_is_z_over_z_plus_one():
  logits = _logits(0)
  z = np.exp(logits.astype(np.float64)).sum(-1)  # e^88 fits a float64 (not a float32)
  want = z / (z + 1.0)
  np.testing.assert_allclose(np.asarray(ssgan.d_real(logits), np.float64), want, rtol=0, atol=TOL)
  # The log-space forms, against the same direct computation.
  scale = _scale(logits)
  np.testing.assert_allclose(ssgan.log_d_real(logits), np.log(want), rtol=0, atol=TOL * scale)
  np.testing.assert_allclose(ssgan.log_d_fake(logits), np.log(1.0 / (z + 1.0)), rtol=0,
                             atol=TOL * scale)


def test_losses_match_numpy():
  real, fake = _logits(1), _logits(2)
  labels = np.random.RandomState(3).randint(0, K, len(real))
  r64, f64 = real.astype(np.float64), fake.astype(np.float64)
  log_softmax = r64 - _np_lse(r64)[:, None]
  want_sup = -np.mean(log_softmax[np.arange(len(real)), labels])
  z_real, z_fake = np.exp(r64).sum(-1), np.exp(f64).sum(-1)
  want_unsup = -np.mean(np.log(z_real / (z_real + 1.0))) - np.mean(np.log(1.0 / (z_fake + 1.0)))
  scale = max(_scale(real), _scale(fake))
  assert abs(float(ssgan.supervised_loss(real, labels)) - want_sup) <= TOL * scale
  assert abs(float(ssgan.unsupervised_loss(real, fake)) - want_unsup) <= TOL * scale


def test_losses_stay_finite_where_z_overflows():
  huge = np.full((4, K), 1000.0, np.float32)  # Z = 10 e^1000: inf even in float64
  huge[:, 0] = -1000.0
  assert np.isfinite(float(ssgan.unsupervised_loss(huge, -huge)))
  assert np.isfinite(float(ssgan.unsupervised_loss(-huge, huge)))  # log D(x) ~ -1000
  grads = jax.grad(ssgan.unsupervised_loss, argnums=(0, 1))(huge, huge)
  assert all(np.all(np.isfinite(g)) for g in grads)


def test_feature_matching_matches_numpy():
  rs = np.random.RandomState(4)
  real, fake = rs.uniform(0, 3, (32, 250)), rs.uniform(0, 3, (24, 250))
  want = np.mean((real.mean(0) - fake.mean(0)) ** 2)  # = ||mean f(x) - mean f(G(z))||^2 / 250
  got = float(ssgan.feature_matching_loss(jnp.float32(real), jnp.float32(fake)))
  # Batch means of values up to 3 round to ~3 * 6e-8 * a few; squared differences of O(1).
  assert abs(got - want) <= TOL * 3.0


# ------------------------------------------------------------------------------ networks


def test_weight_norm_columns_have_norm_g():
  rs = np.random.RandomState(5)
  layer = WeightNormDense(7)
  x = jnp.asarray(rs.normal(size=(3, 5)), jnp.float32)
  params = layer.init(jax.random.key(0), x)["params"]
  params = {**params, "scale": jnp.asarray(rs.uniform(0.5, 2.0, 7), jnp.float32),
            "bias": jnp.asarray(rs.normal(size=7), jnp.float32)}
  w = np.asarray(weight_norm_kernel(params["kernel"], params["scale"]), np.float64)
  np.testing.assert_allclose(np.linalg.norm(w, axis=0), params["scale"], rtol=1e-6)
  # The layer computes x w + b with that kernel.
  want = np.asarray(x, np.float64) @ w + np.asarray(params["bias"], np.float64)
  np.testing.assert_allclose(layer.apply({"params": params}, x), want, rtol=1e-5, atol=1e-5)


def test_data_init_standardises_each_layer_and_fixes_hidden_scales():
  d = SSGANDiscriminator(num_classes=K, hidden=(32, 16))
  x = jnp.asarray(np.random.RandomState(6).uniform(size=(100, 28, 28, 1)), jnp.float32)
  params = jax.jit(d.init)(jax.random.key(0), x[:2])["params"]
  _, updated = jax.jit(lambda p: d.apply({"params": p}, x, data_init=True, mutable=["params"]))(
      params)
  logits, features = jax.jit(d.apply)(updated, x)
  # Every layer's pre-activations on the batch now have mean 0 and sd 1 per unit: the logits
  # (the output layer's) exactly so.
  np.testing.assert_allclose(np.mean(logits, 0), 0.0, atol=1e-5)
  np.testing.assert_allclose(np.std(logits, 0), 1.0, atol=1e-4)
  assert features.shape == (100, 16)

  def loss(p):
    return jnp.sum(d.apply({"params": p}, x[:8])[0] ** 2)

  grads = jax.jit(jax.grad(loss))(updated["params"])
  assert not np.any(grads["WeightNormDense_0"]["scale"])  # the hidden layers' g is fixed
  assert np.any(grads["WeightNormDense_2"]["scale"])  # the output layer learns its g


def test_noise_is_the_same_however_the_batch_is_split():
  """Noise drawn by global example index: two "devices" of 4 examples each (vmap with an axis
  name stands for pmap) draw the discriminator's noise of one device with all 8."""
  d = SSGANDiscriminator(num_classes=K, hidden=(6, 5))
  x = jnp.asarray(np.random.RandomState(7).uniform(size=(8, 4, 4, 1)), jnp.float32)
  params = jax.jit(d.init)(jax.random.key(0), x)
  key = jax.random.key(1)

  def noisy(x, axis_name=None):
    return d.apply(params, x, ssgan.discriminator_noise(d, key, x, axis_name))

  one = jax.jit(noisy)(x)
  split = jax.jit(jax.vmap(lambda xs: noisy(xs, "batch"), axis_name="batch"))(
      x.reshape(2, 4, 4, 4, 1))
  for a, b in zip(one, split, strict=True):
    np.testing.assert_array_equal(a, b.reshape(a.shape))
  clean = jax.jit(d.apply)(params, x)
  assert not np.allclose(one[0], clean[0])  # the noise is on with draws, off without


def test_noise_layers_add_sd_times_their_slice_of_the_draws():
  """The draws [B, 16 + 6 + 5] are cut into the input's and the hidden layers' widths in order:
  the features (the last hidden ReLU, before its noise) and logits recomputed by hand."""
  d = SSGANDiscriminator(num_classes=K, hidden=(6, 5), input_noise=0.3, hidden_noise=0.5)
  x = jnp.asarray(np.random.RandomState(8).uniform(size=(3, 4, 4, 1)), jnp.float32)
  params = jax.jit(d.init)(jax.random.key(0), x)
  assert d.noise_width(16) == 27
  eps = np.random.RandomState(9).normal(size=(3, 27))
  logits, features = d.apply(params, x, jnp.float32(eps))
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])

  def layer(name, h):
    v, g, b = p[name]["kernel"], p[name]["scale"], p[name]["bias"]
    return h @ (v * g / np.linalg.norm(v, axis=0)) + b

  h = np.asarray(x, np.float64).reshape(3, 16) + 0.3 * eps[:, :16]
  f0 = np.maximum(layer("WeightNormDense_0", h), 0)
  f1 = np.maximum(layer("WeightNormDense_1", f0 + 0.5 * eps[:, 16:22]), 0)
  want_logits = layer("WeightNormDense_2", f1 + 0.5 * eps[:, 22:])
  # Products of a few dozen float32 terms of order 1: a few hundred roundings of 6e-8 at most.
  np.testing.assert_allclose(features, f1, rtol=0, atol=1e-5)
  np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-5)
  with pytest.raises(ValueError, match="noise of shape"):
    d.apply(params, x, jnp.zeros((3, 26)))


# ----------------------------------------------------------------------------- the family


def _tiny_config(**model):
  config = gconfig.load(f"{CONFIG}:smoke")
  config.unlock()
  config.model.update({"g_hidden": (16,), "d_hidden": (32, 16), **model})
  return config


def _batch(seed: int, b: int = 8, labelled: int = 4) -> dict:
  rs = np.random.RandomState(seed)
  return {"image": jnp.asarray(rs.uniform(size=(b, 28, 28, 1)), jnp.float32),
          "labelled_image": jnp.asarray(rs.uniform(size=(labelled, 28, 28, 1)), jnp.float32),
          "labelled_label": jnp.asarray(rs.randint(0, K, labelled), jnp.int32)}


def test_train_step_learns_and_log_proba_is_normalised():
  config = _tiny_config()
  state0 = ssgan.create_state(jax.random.key(0), config)
  state1, metrics = jax.jit(ssgan.train_step)(state0, _batch(7), jax.random.key(1))

  assert set(metrics) == {"loss_d", "loss_g", "loss_supervised", "loss_unsupervised",
                          "labelled_accuracy", "d_real", "d_fake"}
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
  np.testing.assert_allclose(metrics["loss_d"], metrics["loss_supervised"]
                             + config.model.unsupervised_weight * metrics["loss_unsupervised"],
                             rtol=1e-6)
  assert int(state1.step) == 1
  for net in ("generator", "discriminator"):
    before, after = (jax.tree.leaves(getattr(s, net).params) for s in (state0, state1))
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), net
  assert not np.array_equal(state0.generator.batch_stats["BatchNorm_0"]["mean"],
                            state1.generator.batch_stats["BatchNorm_0"]["mean"])
  assert state1.discriminator_ema is not None  # the shipped decay, 0.9999

  log_p = np.asarray(jax.jit(ssgan.log_proba)(state1, {"image": _batch(10)["image"]}),
                     np.float64)
  assert log_p.shape == (8, K)
  # Normalised over the K real classes: float32 log-softmax rows, of values of order log K,
  # exponentiate and sum to 1 within a few float32 roundings.
  np.testing.assert_allclose(_np_lse(log_p), 0.0, atol=1e-6)


def test_moving_average_is_debiased():
  decay = 0.5
  p1, p2 = {"w": jnp.float32([1.0, -2.0])}, {"w": jnp.float32([4.0, 0.5])}
  ema = ssgan.ema_update(ssgan.ema_update({"w": jnp.zeros(2)}, p1, decay), p2, decay)
  # e2 = 0.25 p1 + 0.5 p2 over a total weight 1 - 0.5^2: (p1 + 2 p2) / 3.
  got = ssgan.ema_average(ema, p2, decay, jnp.int32(2))
  np.testing.assert_allclose(got["w"], (np.float32([1.0, -2.0]) + 2 * np.float32([4.0, 0.5])) / 3,
                             rtol=1e-6)
  np.testing.assert_array_equal(ssgan.ema_average(ema, p2, decay, jnp.int32(0))["w"], p2["w"])
  # The paper's decay: a constant stays that constant however long it is averaged.
  c = {"w": jnp.float32([0.3, 7.0])}
  ema, decay = {"w": jnp.zeros(2)}, 0.9999
  for _ in range(3):
    ema = ssgan.ema_update(ema, c, decay)
  np.testing.assert_allclose(ssgan.ema_average(ema, c, decay, jnp.int32(3))["w"], c["w"],
                             rtol=1e-6)


def test_learning_rate_is_constant_then_decays_to_zero():
  config = _tiny_config()
  config.train.num_steps, config.optim.decay_fraction = 300, 1 / 3
  schedule = ssgan.learning_rate_schedule(config)
  lr = config.optim.learning_rate
  assert float(schedule(0)) == pytest.approx(lr)
  assert float(schedule(199)) == pytest.approx(lr)
  assert float(schedule(250)) == pytest.approx(lr / 2)
  assert float(schedule(300)) == pytest.approx(0.0, abs=1e-12)


def test_config_arguments():
  c = gconfig.load(str(CONFIG))
  assert (c.data.name, c.data.num_labels, c.data.batch_size, c.data.labelled_batch_size) == (
      "mnist", 100, 100, 100)
  assert c.data.semi_supervised and c.train.num_steps == 180_000 and c.family == "ssgan"
  c = gconfig.load(f"{CONFIG}:fashion_mnist,1000")
  assert (c.data.name, c.data.num_labels) == ("fashion_mnist", 1000)
  c = gconfig.load(f"{CONFIG}:100,smoke")
  assert c.data.num_labels == 100 and c.train.num_steps == 40
  assert gconfig.load(f"{CONFIG}:mnist,all").data.num_labels == -1
  with pytest.raises(ValueError, match="unknown config argument"):
    gconfig.load(f"{CONFIG}:mnist,fashion_mnist")


# ---------------------------------------------------------------------- the generic loop

IDX_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _loop_config(tmp_path, **model):
  config = gconfig.load(f"{CONFIG}:smoke")
  config.unlock()
  config.train.progress = False
  config.train.tensorboard = False
  config.model.update(model)
  if IDX_DIR.is_dir():  # the raw IDX files read faster than TFDS
    config.data.idx_dir = str(IDX_DIR)
  return config


def _check_results(workdir: Path, config) -> dict:
  results = json.loads((workdir / "results.json").read_text())
  assert results["family"] == "ssgan" and results["step"] == config.train.num_steps
  test = results["test"]
  assert 0.0 <= test["error"] <= 1.0
  assert test["error"] == pytest.approx(1.0 - test["accuracy"])
  assert all(np.isfinite(test[k]) for k in ("log_loss", "ece", "loss", "d_real"))
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [10, 20, 30, 40]
  assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in records)
  assert list((workdir / "samples").glob("samples_*.png"))
  return test


def test_smoke_run_on_small_networks_through_the_loop(tmp_path, tfds_data_dir, monkeypatch):
  """The smoke config with small networks, scored on the first 1,000 test images: the loop's
  semi-supervised input, init_from_data, the step, checkpoints and every default evaluator."""
  from conftest import score_on_first_test_images

  from genjax import train

  del tfds_data_dir  # the config reads TFDS_DATA_DIR from the environment
  score_on_first_test_images(monkeypatch, 1000)
  config = _loop_config(tmp_path, g_hidden=(32,), d_hidden=(64, 32))
  train.train_and_evaluate(config, str(tmp_path))
  assert _check_results(tmp_path, config)["num_examples"] == 1000


@pytest.mark.slow
def test_smoke_config_trains_and_evaluates(tmp_path, tfds_data_dir):
  """The shipped smoke config as it is, scored on the first 1,000 test images (a smoke run's
  classification budget, genjax.evals.SMOKE_OPTIONS)."""
  from genjax import train

  del tfds_data_dir
  config = _loop_config(tmp_path)
  train.train_and_evaluate(config, str(tmp_path))
  test = _check_results(tmp_path, config)
  assert test["num_examples"] == config.evals.classification.num_examples == 1000
  assert test["error"] < 0.9  # 40 steps: better than chance already
