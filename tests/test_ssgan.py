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


def test_weight_average_horizon_is_a_fraction_of_the_run():
  config = gconfig.load(str(CONFIG))
  assert ssgan.ema_decay(config) == pytest.approx(0.9999, abs=1e-12)  # the paper's, 180,000 steps
  config.train.num_steps = 18_000
  assert ssgan.ema_decay(config) == pytest.approx(1 - 18 / 18_000, abs=1e-12)
  config.optim.decay_steps = 1_800  # the schedule's length, fixed: the horizon's too
  assert ssgan.ema_decay(config) == pytest.approx(1 - 18 / 1_800, abs=1e-12)
  config.optim.decay_steps = -1
  config.train.num_steps = 10  # a horizon under one step: no average
  assert ssgan.ema_decay(config) == 0.0
  assert ssgan.create_state(jax.random.key(0), _tiny_config(ema_horizon=0.01)).discriminator_ema \
      is None
  config.model.ema_horizon, config.model.ema_decay = 0.0, 0.999  # a fixed decay
  assert ssgan.ema_decay(config) == 0.999
  config.model.ema_horizon = 0.1
  with pytest.raises(ValueError, match="set one of model.ema_decay"):
    ssgan.ema_decay(config)


def test_eval_step_scores_the_raw_weights_beside_the_average():
  state = ssgan.create_state(jax.random.key(0), _tiny_config())
  step = jax.jit(ssgan.train_step)
  for seed in (7, 8):  # two steps (the debiased average of one step is its weights)
    state, _ = step(state, _batch(seed), jax.random.key(1))
  batch = {"image": _batch(9)["image"], "label": jnp.arange(8, dtype=jnp.int32)}
  metrics = jax.jit(ssgan.eval_step)(state, batch, jax.random.key(2))
  raw = jax.jit(ssgan.eval_step)(state.replace(discriminator_ema=None), batch, jax.random.key(2))
  assert set(raw) == {"loss", "accuracy", "error", "d_real"}
  # The same numbers, compiled in another program: the mean of 8 float32 cross-entropies of
  # order 1 may round differently, by a few 6e-8.
  for k in ("loss", "accuracy", "error"):
    np.testing.assert_allclose(metrics[f"{k}_raw"], raw[k], rtol=1e-6)
  assert metrics["loss"] != metrics["loss_raw"]  # the average differs from the raw weights


@pytest.mark.parametrize("overrides, refused", [
    ({"optim.decay_fraction": 0.0}, True),  # constant learning rate, a horizon in num_steps
    ({"optim.decay_fraction": 0.0, "optim.decay_steps": 40}, False),  # a fixed length
    ({"optim.decay_fraction": 0.0, "model.ema_horizon": 0.0, "model.ema_decay": 0.99}, False),
])
def test_extending_a_run_is_refused_where_the_average_follows_num_steps(tmp_path, overrides,
                                                                        refused):
  """genjax.workdir's rule agrees with the family: a run may be extended (train.num_steps 40 ->
  80) exactly when the decay does not move."""
  from conftest import apply_overrides

  from genjax import workdir

  def config(steps):
    c = gconfig.load(f"{CONFIG}:smoke")
    apply_overrides(c, {**overrides, "train.num_steps": steps})
    return c

  short, long = config(40), config(80)
  assert (ssgan.ema_decay(short) != ssgan.ema_decay(long)) == refused
  assert workdir.average_reads_num_steps(short) == refused
  assert not workdir.schedule_reads_num_steps(short)  # the learning rate is constant
  workdir.record(short, str(tmp_path), {}, 40)
  if not refused:
    assert workdir.check(long, str(tmp_path)) == {"train.num_steps": (40, 80)}
    return
  with pytest.raises(workdir.WorkdirError,
                     match=r"train.num_steps 40 -> 80 \(the weight average's horizon is a "
                           r"fraction of it\)"):
    workdir.check(long, str(tmp_path))


def test_a_workdir_of_the_fixed_decay_continues_only_with_it(tmp_path):
  """A workdir recorded before model.ema_horizon (model.ema_decay 0.9999, no horizon) continues
  with the fixed decay, and refuses the horizon."""
  from genjax import workdir
  new = gconfig.load(str(CONFIG))
  old = new.to_dict()
  old["model"] = {k: v for k, v in old["model"].items() if k != "ema_horizon"}
  old["model"]["ema_decay"] = 0.9999
  (tmp_path / "config.json").write_text(json.dumps(old, default=list))
  with pytest.raises(workdir.WorkdirError, match="model.ema_decay"):
    workdir.check(new, str(tmp_path))
  new.model.ema_horizon, new.model.ema_decay = 0.0, 0.9999
  assert workdir.check(new, str(tmp_path)) == {}


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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, tfds_data_dir) -> tuple[Path, object]:
  """(workdir, config) of the smoke config with small networks through the loop, scored on the
  first 1,000 test images: the loop's semi-supervised input, init_from_data, the step,
  checkpoints and every default evaluator."""
  from conftest import score_on_first_test_images

  from genjax import train

  del tfds_data_dir  # the config reads TFDS_DATA_DIR from the environment
  workdir = tmp_path_factory.mktemp("ssgan_small")
  config = _loop_config(workdir, g_hidden=(32,), d_hidden=(64, 32))
  with pytest.MonkeyPatch.context() as monkeypatch:
    score_on_first_test_images(monkeypatch, 1000)
    train.train_and_evaluate(config, str(workdir))
  return workdir, config


def test_smoke_run_on_small_networks_through_the_loop(small_run):
  workdir, config = small_run
  test = _check_results(workdir, config)
  assert test["num_examples"] == 1000
  # The raw discriminator's figures beside the weight average's (eval_step's, same images).
  assert all(np.isfinite(test[k]) for k in ("loss_raw", "accuracy_raw", "error_raw"))
  assert test["error_raw"] == pytest.approx(1.0 - test["accuracy_raw"])


def test_weight_average_is_no_worse_than_the_raw_weights_on_a_short_run(small_run,
                                                                         tfds_data_dir):
  """40 steps: the reported (averaged) discriminator's test log-loss is no worse than the raw
  one's. Both score the same 1,000 test images, so the per-image differences d = loss(average) -
  loss(raw) carry the comparison: their mean must not exceed 3 standard errors (a one-sided
  test: an average as good as the raw weights fails it with probability 0.13 %). Measured here:
  d 0.0013, se 0.0016. The fixed 0.9999 decay the config had (the paper's, for 180,000 steps)
  failed it by far on this run: log-loss 1.536 against 1.170 raw, d / se = 22."""
  from genjax import train

  del tfds_data_dir
  workdir, config = small_run
  _, _, state = train.restore_for_eval(str(workdir))
  assert state.hparams.ema_decay == pytest.approx(1.0 - 18.0 / config.train.num_steps)
  test = train.load_split(config, "test").head(1000)
  raw_log_proba = jax.jit(lambda s, images: jax.nn.log_softmax(ssgan._discriminate(
      s.discriminator, s.discriminator.params, images)[0]))
  averaged, raw = [], []
  for batch, _ in test.eval_batches(500, jax.random.key(0)):
    rows = np.arange(len(batch["label"])), np.asarray(batch["label"])
    averaged.append(-np.asarray(jax.jit(ssgan.log_proba)(state, batch), np.float64)[rows])
    raw.append(-np.asarray(raw_log_proba(state, batch["image"]), np.float64)[rows])
  averaged, raw = np.concatenate(averaged), np.concatenate(raw)
  d = averaged - raw
  assert len(d) == 1000 and np.any(d != 0)  # two different sets of weights
  assert d.mean() <= 3 * d.std(ddof=1) / np.sqrt(len(d))
  # results.json reports the same two figures (float32 means of the same per-image losses).
  results = json.loads((workdir / "results.json").read_text())["test"]
  assert results["log_loss"] == pytest.approx(averaged.mean(), rel=1e-5)
  assert results["loss_raw"] == pytest.approx(raw.mean(), rel=1e-5)


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
