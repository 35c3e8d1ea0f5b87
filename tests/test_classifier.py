"""Tests of the neural_classifier family, DomainCNN and the shipped domain classifiers.

The step by hand (cross-entropy and accuracy against NumPy, an SGD update against its formula,
weight decay's mask, batch-norm statistics), schedules, compile-once, one device under
DataParallel against the plain step, the shipped assets (architecture, size, accuracy on the
first 2,000 test images), chunking, and the config end to end through experiments/train.py.
"""

import dataclasses
import hashlib
import importlib.resources
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, TRAIN_SCRIPT, apply_overrides, image_batch

from genjax import config as gconfig
from genjax import family as family_lib
from genjax.conformance import leaves
from genjax.data import images as image_data
from genjax.families import neural_classifier as classifier
from genjax.metrics import domain
from genjax.parallel import DataParallel
from genjax.state import count_params

DOMAIN_CNN = REPO_ROOT / "experiments" / "configs" / "domain_cnn.py"
B = 16
INIT_KEY, TRAIN_KEY = jax.random.split(jax.random.key(0))
# What experiments/configs/domain_cnn.py promises of the shipped classifiers.
REQUIRED_TEST_ACCURACY = {"mnist": 0.99, "fashion_mnist": 0.90}
FIRST_TEST_IMAGES = 2000


def _config(overrides: dict | None = None, arg: str = "mnist"):
  config = gconfig.load(f"{DOMAIN_CNN}:{arg}")
  apply_overrides(config, overrides or {})
  return config


def _batch(b: int = B, seed: int = 0) -> dict:
  return image_batch(b, seed)


def _numpy_cross_entropy(logits, labels) -> np.ndarray:
  """Per-example -log softmax(logits)[label], in float64."""
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=1, keepdims=True)
  log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return -log_probs[np.arange(len(z)), np.asarray(labels)]


def _copy(tree):
  return jax.tree.map(jnp.copy, tree)


def _create(config) -> classifier.ClassifierState:
  return classifier.create_state(INIT_KEY, config)


# Only states of the mnist config with batches of B go through this function, so its compilation
# cache must hold exactly one program (see test_train_step_compiles_once).
TRAIN_STEP = jax.jit(lambda state, batch, key: classifier.train_step(state, batch, key))
EVAL_STEP = jax.jit(classifier.eval_step)


@pytest.fixture(scope="module")
def state() -> classifier.ClassifierState:
  return _create(_config())


# ----------------------------------------------------------------------------- architecture

def _expected_num_params(widths, feature_dim=128, num_classes=10, channels=1, spatial=28):
  total, c_in = 0, channels
  for w in widths:
    total += 9 * c_in * w + 2 * w  # bias-free 3x3 kernel, batch-norm scale and bias
    c_in, spatial = w, spatial // 2
  flat = spatial * spatial * c_in
  return total + flat * feature_dim + feature_dim + feature_dim * num_classes + num_classes


def test_architecture(state):
  p = state.model.params
  assert _expected_num_params((32, 64, 64)) == 131_050
  assert count_params(p) == 131_050
  assert p["Conv_0"]["kernel"].shape == (3, 3, 1, 32) and "bias" not in p["Conv_0"]
  assert p["Conv_2"]["kernel"].shape == (3, 3, 64, 64)
  assert p["Dense_0"]["kernel"].shape == (3 * 3 * 64, 128)  # 28 -> 14 -> 7 -> 3, flattened
  assert p["Dense_1"]["kernel"].shape == (128, 10)
  assert set(state.model.batch_stats) == {"BatchNorm_0", "BatchNorm_1", "BatchNorm_2"}
  assert int(state.step) == 0 and state.step.dtype == jnp.int32


def test_features_are_the_penultimate_layer(state):
  m, x = state.model, _batch()["image"]
  features, logits = m.module.apply(m.variables, x, method=type(m.module).features_and_logits)
  assert features.shape == (B, 128) and logits.shape == (B, 10)
  assert float(features.min()) >= 0.0  # after the ReLU
  np.testing.assert_array_equal(logits, m.module.apply(m.variables, x))
  last = m.params["Dense_1"]
  np.testing.assert_allclose(logits, features @ last["kernel"] + last["bias"], rtol=1e-5,
                             atol=1e-6)


def test_unknown_arch_optimizer_and_schedule_raise():
  with pytest.raises(ValueError, match="unknown classifier architecture 'resnet'"):
    classifier.create_state(INIT_KEY, _config({"model.arch": "resnet"}))
  with pytest.raises(ValueError, match="unknown optim.name 'lamb'"):
    classifier.create_state(INIT_KEY, _config({"optim.name": "lamb"}))
  with pytest.raises(ValueError, match="unknown optim.schedule 'linear'"):
    classifier.create_state(INIT_KEY, _config({"optim.schedule": "linear"}))
  with pytest.raises(ValueError, match="needs a length: set train.num_steps or optim.decay"):
    classifier.create_state(INIT_KEY, _config({"train.num_steps": -1, "train.num_epochs": 3}))


@pytest.mark.parametrize("arg, dataset, steps", [
    ("mnist", "mnist", 1404), ("fashion_mnist", "fashion_mnist", 1404),
    ("mnist,smoke", "mnist", 20), ("smoke", "mnist", 20),
    ("fashion_mnist,smoke", "fashion_mnist", 20),
])
def test_config_variants(arg, dataset, steps):
  config = _config(arg=arg)
  assert config.data.name == dataset and config.train.num_steps == steps
  assert config.family == "neural_classifier" and config.model.arch == "domain_cnn"
  assert config.seed == 0


def test_config_rejects_unknown_variants():
  for bad in ("cifar10", "mnist,fashion_mnist", "mnist,smoke,smoke"):
    with pytest.raises(ValueError, match="unknown config argument"):
      gconfig.load(f"{DOMAIN_CNN}:{bad}")


# ----------------------------------------------------------------------------- learning rates

def test_schedules():
  lr, n = 2e-3, 1000
  cosine = classifier.learning_rate_schedule(_config({"train.num_steps": n}))
  np.testing.assert_allclose([cosine(0), cosine(n // 2), cosine(n)], [lr, lr / 2, 0.0],
                             atol=1e-9)
  step = classifier.learning_rate_schedule(_config({"optim.schedule": "step",
                                                    "optim.decay_steps": n}))
  np.testing.assert_allclose([step(0), step(499), step(501), step(749), step(751)],
                             [lr, lr, lr * 0.1, lr * 0.1, lr * 0.01], rtol=1e-6)
  warm = classifier.learning_rate_schedule(_config({"train.num_steps": n,
                                                    "optim.warmup_steps": 100}))
  np.testing.assert_allclose([warm(0), warm(50), warm(100), warm(100 + 450)],
                             [0.0, lr / 2, lr, lr / 2], rtol=1e-6, atol=1e-9)
  constant = classifier.learning_rate_schedule(_config({"optim.schedule": "constant"}))
  assert float(constant(0)) == float(constant(10**6)) == lr


# ----------------------------------------------------------------------------- steps by hand

def test_cross_entropy_and_accuracy_match_a_closed_form(state):
  """All weights zero but the last bias b: every logit vector is b, whatever the image, so the
  loss is logsumexp(b) - b[y] and the accuracy the share of labels at argmax(b)."""
  b = np.array([0.3, -1.2, 2.0, 0.0, 0.5, -0.7, 1.1, 0.2, -2.0, 0.9], np.float32)
  params = jax.tree.map(jnp.zeros_like, state.model.params)
  params["Dense_1"]["bias"] = jnp.asarray(b)
  s = state.replace(model=state.model.replace(params=params))
  labels = np.array([2, 2, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9, 2, 1, 0, 5], np.int32)
  batch = {"image": _batch()["image"], "label": jnp.asarray(labels)}
  b64 = b.astype(np.float64)
  loss = np.mean(np.log(np.sum(np.exp(b64))) - b64[labels])
  acc = np.mean(labels == 2)  # argmax(b) == 2, 4 of the 16 labels
  assert acc == 0.25
  metrics = EVAL_STEP(s, batch, TRAIN_KEY)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
  assert float(metrics["accuracy"]) == acc and float(metrics["error"]) == 1 - acc
  _, train_metrics = TRAIN_STEP(_copy(s), batch, TRAIN_KEY)
  np.testing.assert_allclose(train_metrics["loss"], loss, rtol=1e-6)
  assert float(train_metrics["accuracy"]) == acc


def test_eval_metrics_match_numpy(state):
  m = state.model
  x = _batch()["image"]
  logits = np.asarray(m.module.apply(m.variables, x))
  predicted = logits.argmax(1)
  # 11 of the 16 labels are the predicted class, the others the next class.
  labels = np.where(np.arange(B) < 11, predicted, (predicted + 1) % 10).astype(np.int32)
  metrics = EVAL_STEP(state, {"image": x, "label": jnp.asarray(labels)}, TRAIN_KEY)
  np.testing.assert_allclose(metrics["loss"], _numpy_cross_entropy(logits, labels).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"], 11 / 16, rtol=1e-7)
  np.testing.assert_allclose(metrics["error"], 5 / 16, rtol=1e-6)
  # Inference is deterministic: the key does not matter.
  again = EVAL_STEP(state, {"image": x, "label": jnp.asarray(labels)}, jax.random.key(7))
  assert {k: float(v) for k, v in again.items()} == {k: float(v) for k, v in metrics.items()}


def test_train_metrics_are_those_of_the_batch_statistics_forward_pass(state):
  m, batch = state.model, _batch()
  logits, _ = m.module.apply(m.variables, batch["image"], train=True, mutable=["batch_stats"])
  _, metrics = TRAIN_STEP(_copy(state), batch, TRAIN_KEY)
  np.testing.assert_allclose(metrics["loss"],
                             _numpy_cross_entropy(logits, batch["label"]).mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"],
                             np.mean(np.asarray(logits).argmax(1) == batch["label"]), rtol=1e-7)


# Plain SGD with weight decay and dropout: an update that is linear in the gradient, so it can be
# checked against a hand computation, and the same program serves the data-parallel test.
SGD_LR, SGD_WEIGHT_DECAY, DROPOUT = 0.1, 0.05, 0.25
SGD = {"optim.name": "sgd", "optim.momentum": 0.0, "optim.schedule": "constant",
       "optim.learning_rate": SGD_LR, "optim.weight_decay": SGD_WEIGHT_DECAY,
       "model.dropout_rate": DROPOUT}
SGD_STEP = jax.jit(lambda state, batch, key: classifier.train_step(state, batch, key))


@pytest.fixture(scope="module")
def sgd_state() -> classifier.ClassifierState:
  return _create(_config(SGD))


def _hand_loss(module, variables, batch, dropout_key):
  """Mean cross-entropy in training mode, written without optax."""
  logits, _ = module.apply(variables, batch["image"], train=True, mutable=["batch_stats"],
                           rngs={"dropout": dropout_key})
  log_probs = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(log_probs, batch["label"][:, None], axis=1))


def test_sgd_step_is_the_gradient_step(sgd_state):
  """params - lr * (grad + wd * params), decay on kernels only, the gradient taken with the
  dropout key fold_in(key, step); and the batch-norm running mean moves
  10 % of the way to the batch mean."""
  s, batch = sgd_state, _batch()
  m = s.model
  dropout_key = jax.random.fold_in(TRAIN_KEY, 0)
  loss = jax.jit(lambda p: _hand_loss(m.module, {**m.variables, "params": p}, batch,
                                      dropout_key))
  grads = jax.jit(jax.grad(loss))(m.params)
  new, metrics = SGD_STEP(_copy(s), batch, TRAIN_KEY)
  np.testing.assert_allclose(metrics["loss"], loss(m.params), rtol=1e-5)
  for (path, p), g, got in zip(jax.tree_util.tree_leaves_with_path(m.params),
                               jax.tree.leaves(grads), jax.tree.leaves(new.model.params),
                               strict=True):
    decay = SGD_WEIGHT_DECAY if p.ndim > 1 else 0.0
    p64 = np.asarray(p, np.float64)
    want = p64 - SGD_LR * (np.asarray(g, np.float64) + decay * p64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
  conv0 = jax.lax.conv_general_dilated(batch["image"], m.params["Conv_0"]["kernel"], (1, 1),
                                       "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(new.model.batch_stats["BatchNorm_0"]["mean"],
                             0.1 * np.asarray(conv0).mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-7)
  assert int(new.step) == 1


def _separable_problem(n: int = 64):
  """Ten classes, each a fixed random template plus noise: learnable in a few steps."""
  rs = np.random.RandomState(1)
  templates = rs.uniform(size=(10, 28, 28, 1))
  labels = np.arange(n) % 10
  x = np.clip(templates[labels] + 0.3 * rs.normal(size=(n, 28, 28, 1)), 0.0, 1.0)
  return {"image": jnp.asarray(x, jnp.float32), "label": jnp.asarray(labels, jnp.int32)}


def test_loss_decreases_on_a_tiny_problem():
  config = _config({"optim.schedule": "constant", "optim.learning_rate": 1e-3})
  s = _create(config)
  batch = _separable_problem()
  step = jax.jit(classifier.train_step, donate_argnums=0)
  losses, accuracies = [], []
  for _ in range(15):
    s, metrics = step(s, batch, TRAIN_KEY)
    losses.append(float(metrics["loss"]))
    accuracies.append(float(metrics["accuracy"]))
  assert losses[0] > 2.0  # about log(10) at initialisation
  assert losses[-1] < 0.25 * losses[0], losses
  assert accuracies[-1] == 1.0 and accuracies[0] < 0.5, accuracies
  held_out = {"image": batch["image"][::-1], "label": batch["label"][::-1]}
  assert float(EVAL_STEP(s, held_out, TRAIN_KEY)["accuracy"]) > 0.9


def test_dropout_draws_from_the_step_key(sgd_state):
  s, batch = sgd_state, _batch()
  assert s.model.module.dropout_rate == DROPOUT
  _, a = SGD_STEP(s, batch, TRAIN_KEY)
  _, a_again = SGD_STEP(s, batch, TRAIN_KEY)
  _, other_key = SGD_STEP(s, batch, jax.random.key(5))
  _, other_step = SGD_STEP(s.replace(step=s.step + 1), batch, TRAIN_KEY)
  assert float(a["loss"]) == float(a_again["loss"])
  assert float(other_key["loss"]) != float(a["loss"])
  assert float(other_step["loss"]) != float(a["loss"])
  # No dropout at evaluation.
  np.testing.assert_array_equal(EVAL_STEP(s, batch, TRAIN_KEY)["loss"],
                                EVAL_STEP(s, batch, jax.random.key(5))["loss"])


def test_train_step_compiles_once(state):
  s = _copy(state)
  for i in range(4):
    s, metrics = TRAIN_STEP(s, _batch(seed=i), jax.random.key(i))
  assert int(s.step) == 4
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert TRAIN_STEP._cache_size() == 1


@pytest.mark.parametrize("mode", ["pmap", "shard_map"])
def test_one_device_under_data_parallel_equals_the_plain_step(mode, sgd_state):
  """The axis_name path (pmean of gradients and metrics, batch norm over the axis, the device
  index folded into the dropout key) on one device is the plain step.

  SGD rather than Adam: Adam's first updates are lr * g / |g|, so for a gradient entry near
  zero a rounding difference flips a whole step of size lr."""
  dp = DataParallel(mode, devices=jax.local_devices()[:1])
  assert dp.mode == mode
  step = dp.wrap(classifier.train_step, "rsr", "rr")
  evaluate = dp.wrap(classifier.eval_step, "rsr", "r", donate_argnums=())
  s_dp, key_dp = dp.replicate(_copy(sgd_state)), dp.replicate(TRAIN_KEY)
  s = sgd_state
  for i in range(2):
    batch = _batch(seed=10 + i)
    s, metrics = SGD_STEP(s, batch, TRAIN_KEY)
    s_dp, metrics_dp = step(s_dp, dp.shard(batch), key_dp)
  got = leaves(dp.unreplicate((s_dp, metrics_dp)))
  want = leaves((s, metrics))
  assert got.keys() == want.keys()
  for name, w in want.items():
    np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6, err_msg=name)
  eval_dp = jax.device_get(dp.unreplicate(evaluate(s_dp, dp.shard(_batch(seed=3)), key_dp)))
  eval_plain = EVAL_STEP(s, _batch(seed=3), TRAIN_KEY)
  for k, v in eval_plain.items():
    np.testing.assert_allclose(eval_dp[k], v, rtol=1e-5, err_msg=k)


# ----------------------------------------------------------------------------- shipped assets

@pytest.fixture(scope="module", params=domain.DATASETS)
def shipped(request) -> domain.DomainClassifier:
  return domain.load(request.param)


@pytest.fixture(scope="module")
def test_images(tfds_data_dir) -> dict:
  """The first 2,000 test images and labels of each dataset (uint8)."""
  del tfds_data_dir  # read from the environment
  out = {}
  for name in domain.DATASETS:
    arrays = image_data.load_arrays(name, "test")
    out[name] = (arrays.images[:FIRST_TEST_IMAGES], arrays.labels[:FIRST_TEST_IMAGES])
  return out


def test_shipped_assets_are_small_and_match_their_metadata(shipped):
  assets = importlib.resources.files("genjax").joinpath("assets")
  blob = assets.joinpath(domain.asset_name(shipped.dataset, "msgpack")).read_bytes()
  metadata = json.loads(assets.joinpath(domain.asset_name(shipped.dataset, "json")).read_text())
  assert len(blob) < 1_000_000
  assert hashlib.sha256(blob).hexdigest() == metadata["msgpack_sha256"]
  assert metadata == shipped.metadata


def test_shipped_classifier_has_the_recorded_architecture(shipped):
  md, config = shipped.metadata, shipped.metadata["config"]
  assert md["arch"] == config["model"]["arch"] == "domain_cnn"
  # The assets were exported when the family was named `classifier` (an alias of it now).
  assert family_lib.ALIASES.get(config["family"], config["family"]) == "neural_classifier"
  assert config["data"]["name"] == shipped.dataset
  assert config["data"]["preprocess"] == md["preprocess"] == "unit"
  assert shipped.module.widths == tuple(config["model"]["widths"])
  assert shipped.feature_dim == md["feature_dim"] == config["model"]["feature_dim"]
  expected = _expected_num_params(config["model"]["widths"], md["feature_dim"],
                                  md["num_classes"])
  assert shipped.num_params == md["num_params"] == expected
  template = domain.template_variables(shipped.module, shipped.image_shape)
  shapes = jax.tree.map(np.shape, shipped.variables)
  assert shapes == jax.tree.map(np.shape, template)
  # Trained: the running variances have left their initial value of 1.
  assert not np.allclose(shipped.variables["batch_stats"]["BatchNorm_0"]["var"], 1.0)
  assert md["test_accuracy"] >= REQUIRED_TEST_ACCURACY[shipped.dataset]


def test_shipped_classifier_was_trained_with_the_config_file(shipped):
  """What determines the weights (seed, data, model, optimiser, steps) is what
  experiments/configs/domain_cnn.py says today: edit one, retrain and re-export."""
  recorded = shipped.metadata["config"]
  current = json.loads(json.dumps(_config(arg=shipped.dataset).to_dict()))
  assert recorded["seed"] == current["seed"]
  for section in ("model", "optim"):
    assert recorded[section] == current[section], section
  for name in ("name", "image_shape", "preprocess", "batch_size", "validation_size"):
    assert recorded["data"][name] == current["data"][name], name
  for name in ("num_steps", "num_epochs"):
    assert recorded["train"][name] == current["train"][name], name
  assert shipped.metadata["step"] == current["train"]["num_steps"]


def test_shipped_classifier_reaches_its_recorded_accuracy(shipped, test_images):
  images, labels = test_images[shipped.dataset]
  features, probs = shipped.features_and_probs(images.astype(np.float32) / 255.0)
  assert features.shape == (FIRST_TEST_IMAGES, shipped.feature_dim)
  assert probs.shape == (FIRST_TEST_IMAGES, 10)
  np.testing.assert_allclose(np.asarray(probs).sum(1), 1.0, rtol=1e-5)
  assert float(features.min()) >= 0.0
  accuracy = float(np.mean(np.asarray(probs).argmax(1) == labels))
  recorded = shipped.metadata[f"test_accuracy_first_{FIRST_TEST_IMAGES}"]
  assert abs(accuracy - recorded) <= 0.005, (accuracy, recorded)


def test_load_rejects_unknown_datasets_and_wrong_shapes():
  with pytest.raises(ValueError, match="no shipped domain classifier for 'cifar10'"):
    domain.load("cifar10")
  clf = domain.load("mnist")
  with pytest.raises(ValueError, match=r"takes images of shape \(N, 28, 28, 1\), got \(4, 32"):
    clf.features_and_probs(jnp.zeros((4, 32, 32, 3)))
  broken = jax.tree.map(lambda x: x, clf.variables)
  broken["params"]["Dense_0"]["kernel"] = jnp.zeros((10, 128))
  with pytest.raises(ValueError, match="do not match its recorded architecture"):
    domain.from_variables(broken, clf.metadata)


# Features reach ~10: float32 sums taken in another order (another batch size, jit or not)
# differ by a few units in the last place of that scale.
CLOSE = {"rtol": 1e-5, "atol": 2e-5}


def test_features_and_probs_do_not_depend_on_the_chunking(test_images):
  clf = domain.load("mnist")
  images_u8 = test_images["mnist"][0][:37]
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  by_8 = dataclasses.replace(clf, chunk_size=8).features_and_probs(x)
  by_16 = dataclasses.replace(clf, chunk_size=16).features_and_probs(x)
  whole = clf.module.apply(clf.variables, x, method=type(clf.module).features_and_logits)
  for a, b in zip(by_8, by_16, strict=True):
    assert a.shape == b.shape and a.shape[0] == 37
    np.testing.assert_allclose(a, b, **CLOSE)
  np.testing.assert_allclose(by_8[0], whole[0], **CLOSE)
  np.testing.assert_allclose(by_8[1], jax.nn.softmax(whole[1]), **CLOSE)
  # Inside jit (lax.map over chunks), and from uint8 images, the same numbers.
  by_8_jit = jax.jit(dataclasses.replace(clf, chunk_size=8).features_and_probs)(x)
  from_u8 = dataclasses.replace(clf, chunk_size=8).features_and_probs(images_u8)
  for a, b, c in zip(by_8, by_8_jit, from_u8, strict=True):
    np.testing.assert_allclose(b, a, **CLOSE)
    np.testing.assert_allclose(c, a, **CLOSE)


def test_features_and_probs_compiles_once_per_chunk_shape(test_images):
  clf = dataclasses.replace(domain.load("mnist"), chunk_size=24)
  x = jnp.asarray(test_images["mnist"][0][:100], jnp.float32) / 255.0
  before = domain._chunk_features_and_probs._cache_size()
  sizes = (100, 37, 24, 5)
  outputs = [clf.features_and_probs(x[:n]) for n in sizes]
  assert domain._chunk_features_and_probs._cache_size() == before + 1
  for n, (features, probs) in zip(sizes, outputs, strict=True):
    assert features.shape == (n, 128) and probs.shape == (n, 10)
  empty = clf.features_and_probs(x[:0])
  assert empty[0].shape == (0, 128) and empty[1].shape == (0, 10)


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow  # ~40 s; every config's smoke run: tests/test_every_config.py
def test_smoke_config_end_to_end(tmp_path, subprocess_env):
  """experiments/train.py on domain_cnn.py:mnist,smoke as a user types it: 20 steps, logged
  and checkpointed every 10, a finite test evaluation that beats chance."""
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, str(TRAIN_SCRIPT), f"--config={DOMAIN_CNN}:mnist,smoke",
       f"--workdir={workdir}", "--config.train.progress=False",
       "--config.train.tensorboard=False"],
      cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-4000:]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [10, 20]
  assert all(set(r) == {"step", "loss", "accuracy"} for r in records)
  assert records[1]["loss"] < records[0]["loss"]
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["10", "20"]
  results = json.loads((workdir / "results.json").read_text())
  assert results["step"] == 20
  assert set(results["test"]) == {"loss", "accuracy", "error", "log_loss", "ece",
                                  "predict_seconds", "num_examples"}
  test = results["test"]
  # The classification evaluator's whole-split log-loss is eval_step's mean cross-entropy.
  np.testing.assert_allclose(test["log_loss"], test["loss"], rtol=1e-4)
  assert 0.2 < test["accuracy"] <= 1.0  # 10 classes: chance is 0.1
  np.testing.assert_allclose(test["accuracy"] + test["error"], 1.0, rtol=1e-6)
  assert json.loads((workdir / "config.json").read_text())["family"] == "neural_classifier"
  assert not (workdir / "samples").exists()  # a classifier draws no samples
