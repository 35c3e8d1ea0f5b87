"""Tests of the semi-supervised VAE family (Kingma et al.'s M2 and M1+M2): the unlabelled ELBO
against the explicit sum over classes, the labelled ELBO against NumPy, one train step, M1's
training, the config arguments, the smoke configs through the loop, and resuming M1+M2."""

import dataclasses
import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import evals
from genjax.data import images as image_data
from genjax.data.splits import ArraySplit
from genjax.families import ssvae
from genjax.nn.ssvae import SSVAENet

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
U32 = 2.0**-24  # float32's unit roundoff
# Compiled once for the module (tests share their compilations).
ELBO_TERMS = jax.jit(ssvae.elbo_terms, static_argnums=0)
TRAIN_STEP = jax.jit(ssvae.train_step)
EVAL_STEP = jax.jit(ssvae.eval_step)
LOG_PROBA = jax.jit(ssvae.log_proba)


def tiny_config(kind: str = "m2", **model) -> ml_collections.ConfigDict:
  """The smoke config of `kind` with small networks: hidden 16, z 4 (M1: hidden 24, z 6)."""
  c = ssvae.experiment_config("smoke", kind=kind, num_epochs=1)
  overrides = {"hidden": (16,), "z_dim": 4, "m1_hidden": (24,), "m1_z_dim": 6, **model}
  for name, value in overrides.items():
    c.model[name] = value
  return c


@functools.cache
def tiny_state(kind: str = "m2") -> ssvae.SSVAEState:
  """create_state of tiny_config(kind) with weights of N(0, 0.1^2): encoders and classifier
  outputs well away from their values at zero weights."""
  return ssvae.create_state(jax.random.key(0), tiny_config(kind, init_std=0.1))


def binary_images(b: int, seed: int = 0) -> jax.Array:
  rs = np.random.default_rng(seed)
  return jnp.asarray(rs.integers(0, 2, (b, 28, 28, 1)), jnp.float32)


def semi_supervised_batch(b: int = 6, num_labelled: int = 4, seed: int = 0) -> dict:
  rs = np.random.default_rng(seed + 1)
  return {"image": binary_images(b, seed), "labelled_image": binary_images(num_labelled, seed + 2),
          "labelled_label": jnp.asarray(rs.integers(0, 10, num_labelled), jnp.int32)}


def fake_train_split(n: int = 64, seed: int = 0) -> ArraySplit:
  """uint8 images with dynamic binarisation, as genjax.data.splits gives MNIST's."""
  rs = np.random.default_rng(seed)

  def preprocess(rows, key, axis_name=None):
    return {"image": image_data.preprocess(rows["image"], "binarize_dynamic", key, axis_name),
            "label": rows["label"]}

  return ArraySplit("train", {"image": rs.integers(0, 256, (n, 28, 28, 1)).astype(np.uint8),
                              "label": rs.integers(0, 10, n).astype(np.int32)}, preprocess)


def _np_log_softmax(logits):
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# ------------------------------------------------------------------------------- bounds


def test_unlabelled_elbo_is_the_explicit_sum_over_classes():
  state = tiny_state("m2")
  net, params = state.model.module, state.model.params
  b, k = 5, 10
  x = binary_images(b).reshape(b, -1)
  eps = jnp.asarray(np.random.default_rng(1).normal(size=(b, 4)), jnp.float32)
  batched_BxK = jax.jit(ssvae.class_elbos, static_argnums=0)(net, params, x, eps)
  log_q = jax.nn.log_softmax(net.apply({"params": params}, x, method=SSVAENet.classify))
  batched_B = np.asarray(ssvae.unlabelled_elbo(log_q, batched_BxK), np.float64)

  # L(x, y) one class at a time with the same noise, combined in float64.
  loop = [ELBO_TERMS(net, params, x, jnp.full((b,), y, jnp.int32), eps) for y in range(k)]
  elbo_BxK = np.stack([np.asarray(t["elbo"], np.float64) for t in loop], 1)
  log_q_BxK = _np_log_softmax(net.apply({"params": params}, x, method=SSVAENet.classify))
  q_BxK = np.exp(log_q_BxK)
  want_B = np.sum(q_BxK * elbo_BxK, 1) - np.sum(q_BxK * log_q_BxK, 1)

  # Tolerance. L(x, y) is a float32 sum of D = 784 pixel terms (all <= 0) and the KL's z terms:
  # recursive summation of n terms errs by at most (n - 1) u sum |t_i| (u = 2^-24), and
  # sum |t_i| = |log p(x | y, z)| + KL + log K. The batched and the per-class pass may sum in
  # different orders, so their values differ by up to twice that; U is a q-weighted average
  # of L - log q (the weights sum to 1), whose own K-term float32 sums add a negligible K u.
  scale_B = np.max(np.stack([np.abs(np.asarray(t["log_px"], np.float64))
                             + np.asarray(t["kl"], np.float64) + math.log(k) for t in loop], 1), 1)
  tol_B = 2 * (784 + 4) * U32 * scale_B
  assert np.all(np.abs(batched_B - want_B) <= tol_B), (batched_B - want_B, tol_B)
  np.testing.assert_allclose(np.asarray(batched_BxK), elbo_BxK,
                             atol=float(tol_B.max()), rtol=0)
  # The entropy is there: U exceeds the q-average of L by H(q) (near log 10 untrained).
  assert np.all(want_B - np.sum(q_BxK * elbo_BxK, 1) > 1.0)


@pytest.mark.parametrize("kind", ["m2", "m1m2"])
def test_labelled_elbo_matches_numpy(kind):
  """KL(q(z | x, y) || N(0, I)) against its closed form, log p(x | y, z) against the Bernoulli
  (M2) or Gaussian (M1+M2, on M1 codes) density, and log p(y) = -log K."""
  state = tiny_state(kind)
  net, params = state.model.module, state.model.params
  x = jax.jit(ssvae.features)(state, binary_images(5), jax.random.key(3))
  y = jnp.array([0, 3, 9, 3, 1], jnp.int32)
  eps = jnp.asarray(np.random.default_rng(2).normal(size=(5, 4)), jnp.float32)
  terms = jax.device_get(ELBO_TERMS(net, params, x, y, eps))

  v = {"params": params}
  y_1h = jax.nn.one_hot(y, 10)
  mean, log_std = (np.asarray(a, np.float64)
                   for a in net.apply(v, x, y_1h, method=SSVAENet.encode))
  kl = 0.5 * np.sum(mean**2 + np.exp(2 * log_std) - 1.0 - 2 * log_std, 1)
  z = jnp.asarray(mean + np.exp(log_std) * np.asarray(eps, np.float64), jnp.float32)
  out = jax.tree.map(lambda a: np.asarray(a, np.float64),
                     net.apply(v, z, y_1h, method=SSVAENet.decode))
  x64 = np.asarray(x, np.float64)
  if kind == "m2":
    log_px = np.sum(x64 * out - np.logaddexp(0.0, out), 1)
  else:
    m, s = out
    log_px = np.sum(-0.5 * ((x64 - m) / np.exp(s)) ** 2 - s - 0.5 * math.log(2 * math.pi), 1)
  assert np.all(kl > 0.1)  # a KL well away from 0
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
  np.testing.assert_allclose(terms["log_px"], log_px, rtol=1e-5, atol=1e-3)
  np.testing.assert_allclose(terms["elbo"], terms["log_px"] - terms["kl"] - math.log(10),
                             rtol=1e-6)


def test_objective_adds_its_parts_with_alpha():
  state = tiny_state("m2")
  batch = semi_supervised_batch()
  m = state.model
  objective = jax.jit(ssvae.objective, static_argnums=(0, 7))
  loss, metrics = objective(m.module, m.params, batch["image"].reshape(6, -1),
                            batch["labelled_image"].reshape(4, -1), batch["labelled_label"],
                            jnp.full((6, 4), 0.1), jnp.full((4, 4), -0.2), 7.0)
  want = (-metrics["elbo_labelled"] - metrics["elbo_unlabelled"]
          + 7.0 * metrics["classification_loss"])
  assert float(loss) == pytest.approx(float(want), rel=1e-6)
  assert 0.0 < float(metrics["classification_loss"]) < 10.0


# ------------------------------------------------------------------------------ steps


@pytest.mark.parametrize("kind", ["m2", "m1m2"])
def test_one_train_step_changes_parameters_and_log_proba_normalises(kind):
  state = tiny_state(kind)
  batch = semi_supervised_batch()
  new, metrics = TRAIN_STEP(state, batch, jax.random.key(1))
  assert set(metrics) == {"loss", "elbo_labelled", "elbo_unlabelled", "classification_loss",
                          "accuracy", "entropy"}
  assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
  assert int(new.step) == 1
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         state.model.params, new.model.params)
  assert all(jax.tree.leaves(changed))  # every weight and bias of M2 moved
  # M1 (M1+M2) is frozen: the step leaves it as it was.
  jax.tree.map(np.testing.assert_array_equal, state.m1_params, new.m1_params)
  log_p = LOG_PROBA(new, {"image": batch["image"]})
  assert log_p.shape == (6, 10)
  np.testing.assert_allclose(np.exp(np.asarray(log_p, np.float64)).sum(1), 1.0, atol=1e-5)
  metrics = EVAL_STEP(new, {"image": batch["image"], "label": jnp.arange(6)},
                                     jax.random.key(2))
  assert {"loss", "accuracy", "error", "elbo"} <= set(metrics)
  assert ("m1_elbo" in metrics) == (kind == "m1m2")
  assert all(np.isfinite(float(v)) for v in metrics.values())
  x = jax.jit(ssvae.sample, static_argnums=2)(new, jax.random.key(3), 20)
  assert x.shape == (20, 28, 28, 1) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
  assert ssvae.num_classes(new) == 10


def test_m1_training_raises_its_elbo_is_deterministic_and_only_for_m1m2():
  train = fake_train_split()
  m2 = tiny_state("m2")
  assert ssvae.init_from_data(m2, train, jax.random.key(0)) is m2
  untrained = tiny_state("m1m2")
  # 2 epochs of 4 steps, at a rate that moves a tiny M1 visibly in 8 steps.
  state = untrained.replace(hparams=dataclasses.replace(
      untrained.hparams, m1_steps=8, m1_batch_size=16, m1_learning_rate=1e-2))
  a = ssvae.init_from_data(state, train, jax.random.key(0))
  b = ssvae.init_from_data(state, train, jax.random.key(0))
  jax.tree.map(np.testing.assert_array_equal, a.m1_params, b.m1_params)
  moved = jax.tree.map(lambda p, q: bool(np.any(np.asarray(p) != np.asarray(q))),
                       state.m1_params, a.m1_params)
  assert all(jax.tree.leaves(moved))
  jax.tree.map(np.testing.assert_array_equal, state.model.params, a.model.params)
  x = train.inputs(jax.random.key(1))["image"].reshape(64, -1)
  eps = jnp.zeros((64, 6))
  before, after = (float(jnp.mean(ELBO_TERMS(state.m1_net, p, x, None, eps)["elbo"]))
                   for p in (state.m1_params, a.m1_params))
  assert after > before + 1.0, (before, after)


def test_config_arguments():
  assert ssvae.parse_arg(None) == ("mnist", 100, False)
  assert ssvae.parse_arg("100") == ("mnist", 100, False)
  assert ssvae.parse_arg("mnist,600,smoke") == ("mnist", 600, True)
  assert ssvae.parse_arg("100,smoke") == ("mnist", 100, True)
  assert ssvae.parse_arg("mnist,all") == ("mnist", -1, False)
  c = ssvae.experiment_config("all", kind="m2", num_epochs=1)
  assert c.data.num_labels == -1 and ssvae.alpha(c) == pytest.approx(ssvae.paper_alpha(60_000))
  for bad in ("cifar10", "100,200", "0", "smoke,smoke", "all,100"):
    with pytest.raises(ValueError, match="config argument"):
      ssvae.parse_arg(bad)
  for name, kind in (("m2_mnist", "m2"), ("m1m2_mnist", "m1m2")):
    full = gconfig.load(f"{CONFIGS / name}.py:mnist,100")
    assert full.family == "ssvae" and full.model.kind == kind
    assert full.data.num_labels == 100 and full.data.semi_supervised
    assert ssvae.alpha(full) == pytest.approx(60.0)
    assert full.data.preprocess == "binarize_dynamic"
    assert ssvae.alpha(gconfig.load(f"{CONFIGS / name}.py:600")) == pytest.approx(10.0)
    full.unlock()
    full.data.num_labels = 600  # an override on the command line moves alpha with it
    assert ssvae.alpha(full) == pytest.approx(10.0)
    full.model.alpha = 1.5
    assert ssvae.alpha(full) == 1.5
    smoke = gconfig.load(f"{CONFIGS / name}.py:100,smoke")
    assert smoke.train.num_steps == 40 and smoke.model.m1_steps == 20
    assert f"python experiments/train.py --config=experiments/configs/{name}.py" in (
        CONFIGS / f"{name}.py").read_text()


# ------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def shared_splits(tfds_data_dir):
  """genjax.data.splits.load remembered for the module (MNIST is read once)."""
  from conftest import remembering_split_loader

  from genjax.data import splits
  del tfds_data_dir
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(splits, "load", remembering_split_loader(splits.load))
    yield


def loop_config(name: str, **overrides) -> ml_collections.ConfigDict:
  """The `100,smoke` config `name`, small networks (as tiny_config), quiet."""
  from conftest import apply_overrides
  config = gconfig.load(f"{CONFIGS / name}.py:100,smoke")
  config.unlock()
  apply_overrides(config, {"train.progress": False, "train.tensorboard": False,
                           "model.hidden": (32,), "model.z_dim": 8, "model.m1_hidden": (32,),
                           "model.m1_z_dim": 8, **overrides})
  return config


@pytest.mark.slow  # each run about 20 s of CPU: MNIST and compiling
@pytest.mark.parametrize("name", ["m2_mnist", "m1m2_mnist"])
def test_smoke_config_trains_and_evaluates_through_the_loop(name, tmp_path, shared_splits):
  """The `100,smoke` configs as shipped (the paper's networks), every default evaluator."""
  from genjax import train
  config = gconfig.load(f"{CONFIGS / name}.py:100,smoke")
  config.unlock()
  config.train.progress = False
  config.train.tensorboard = False
  results = train.train_and_evaluate(config, str(tmp_path))
  on_disk = json.loads((tmp_path / "results.json").read_text())
  assert 0.0 <= on_disk["test"]["error"] <= 1.0 and np.isfinite(on_disk["test"]["elbo"])
  # a smoke run scores the first test images (evals.SMOKE_OPTIONS)
  assert on_disk["test"]["num_examples"] == evals.SMOKE_OPTIONS["classification"]["num_examples"]
  assert results["test"]["error"] == pytest.approx(1.0 - results["test"]["accuracy"])
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [10, 20, 30, 40]
  assert all(np.isfinite(r["loss"]) for r in records)
  assert list((tmp_path / "samples").glob("samples_*.png"))


@pytest.mark.slow  # three runs through the loop
def test_m1m2_resumes_as_an_uninterrupted_run(tmp_path, shared_splits, monkeypatch):
  """Stopped at its step-20 checkpoint and resumed, M1+M2 ends where a straight run ends: the
  resumed run restores the trained M1 from the checkpoint and never trains it again."""
  from genjax import train

  def config(steps):
    c = loop_config("m1m2_mnist", **{"train.num_steps": steps})
    c.evals = ml_collections.ConfigDict({"metrics": {}})  # eval_step's means only
    return c

  straight = train.train_and_evaluate(config(40), str(tmp_path / "straight"))
  train.train_and_evaluate(config(20), str(tmp_path / "resumed"))

  def train_m1_again(*args):
    raise AssertionError("a resumed run trained M1 again")

  monkeypatch.setattr(ssvae, "init_from_data", train_m1_again)
  resumed = train.train_and_evaluate(config(40), str(tmp_path / "resumed"))
  assert resumed["test"] == straight["test"]
  a = train.restore_for_eval(str(tmp_path / "straight"))[2]
  b = train.restore_for_eval(str(tmp_path / "resumed"))[2]
  jax.tree.map(np.testing.assert_array_equal, (a.model.params, a.m1_params),
               (b.model.params, b.m1_params))
