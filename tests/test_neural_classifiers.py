"""Tests of the neural classifier baselines (genjax.nn.classifiers in the neural_classifier family).

Parameter counts and shapes against hand counts; forward passes against independent
references (lax convolutions and reduce_window pooling, NumPy dense layers and batch norm);
one SGD step of the MLP against backpropagation written out in NumPy; LeNet-5 on eight
simulated devices against one; and the shipped configs end to end through experiments/train.py.
"""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, apply_overrides, image_batch, load_experiment_script

from genjax import config as gconfig
from genjax import train
from genjax.evals.classification import predict_log_proba
from genjax.families import neural_classifier as classifier
from genjax.nn.classifiers import LeNet5, MLPClassifier, SmallCNN
from genjax.state import count_params

CONFIGS = REPO_ROOT / "experiments" / "configs"
CONFIG_FILES = {"mlp": CONFIGS / "mlp_mnist.py", "lenet5": CONFIGS / "lenet5_mnist.py",
                "cnn": CONFIGS / "cnn_mnist.py"}
B = 8
KEY = jax.random.key(0)


def _config(arch: str, overrides: dict | None = None, arg: str = "mnist"):
  config = gconfig.load(f"{CONFIG_FILES[arch]}:{arg}")
  config.unlock()
  apply_overrides(config, overrides or {})
  return config


def _batch(b: int = B, seed: int = 0) -> dict:
  return image_batch(b, seed)


def _shapes(tree) -> dict:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): tuple(x.shape) for path, x in flat}


# ----------------------------------------------------------------------------- architectures


def test_mlp_800_800_has_the_hand_counted_parameters():
  config = _config("mlp")
  module = classifier.build_model(config)
  assert isinstance(module, MLPClassifier) and module.hidden == (800, 800)
  variables = jax.eval_shape(module.init, KEY, jnp.zeros((2, 28, 28, 1)))
  assert _shapes(variables["params"]) == {
      "['Dense_0']['kernel']": (784, 800), "['Dense_0']['bias']": (800,),
      "['Dense_1']['kernel']": (800, 800), "['Dense_1']['bias']": (800,),
      "['Dense_2']['kernel']": (800, 10), "['Dense_2']['bias']": (10,)}
  assert count_params(variables["params"]) == 784 * 800 + 800 + 800 * 800 + 800 + 8000 + 10
  assert count_params(variables["params"]) == 1_276_810


def test_lenet5_has_the_hand_counted_parameters():
  module = classifier.build_model(_config("lenet5"))
  assert isinstance(module, LeNet5)
  variables = jax.eval_shape(module.init, KEY, jnp.zeros((2, 28, 28, 1)))
  assert _shapes(variables["params"]) == {
      "['Conv_0']['kernel']": (5, 5, 1, 6), "['Conv_0']['bias']": (6,),
      "['Conv_1']['kernel']": (5, 5, 6, 16), "['Conv_1']['bias']": (16,),
      "['Dense_0']['kernel']": (400, 120), "['Dense_0']['bias']": (120,),
      "['Dense_1']['kernel']": (120, 84), "['Dense_1']['bias']": (84,),
      "['Dense_2']['kernel']": (84, 10), "['Dense_2']['bias']": (10,)}
  # C1 156, C3 2,416, C5 48,120, F6 10,164, output 850.
  assert count_params(variables["params"]) == 61_706


def test_small_cnn_has_the_hand_counted_parameters():
  config = _config("cnn")
  module = classifier.build_model(config)
  assert isinstance(module, SmallCNN) and module.widths == (16, 32)
  variables = jax.eval_shape(module.init, KEY, jnp.zeros((2, 28, 28, 1)))
  # Conv 3x3 1->16 and 16->32 without biases, batch norm scale and bias per channel, Dense
  # 7*7*32 -> 128 without bias, its batch norm, Dense 128 -> 10.
  hand = 9 * 16 + 2 * 16 + 9 * 16 * 32 + 2 * 32 + 1568 * 128 + 2 * 128 + 128 * 10 + 10
  assert count_params(variables["params"]) == hand == 207_098
  assert _shapes(variables["batch_stats"]) == {
      "['BatchNorm_0']['mean']": (16,), "['BatchNorm_0']['var']": (16,),
      "['BatchNorm_1']['mean']": (32,), "['BatchNorm_1']['var']": (32,),
      "['BatchNorm_2']['mean']": (128,), "['BatchNorm_2']['var']": (128,)}
  deeper = classifier.build_model(_config("cnn", {"model.widths": (8, 16, 16),
                                                  "model.convs_per_stage": 2}))
  params = jax.eval_shape(deeper.init, KEY, jnp.zeros((2, 28, 28, 1)))["params"]
  convs = [9 * 1 * 8, 9 * 8 * 8, 9 * 8 * 16, 9 * 16 * 16, 9 * 16 * 16, 9 * 16 * 16]
  # 28 -> 14 -> 7 -> 3: a 3x3x16 map reaches the dense layer.
  hand = sum(convs) + 2 * (2 * 8 + 4 * 16) + 144 * 128 + 2 * 128 + 1290
  assert count_params(params) == hand


@pytest.mark.parametrize("arch", sorted(CONFIG_FILES))
def test_logits_have_one_row_per_image(arch):
  config = _config(arch)
  state = jax.eval_shape(lambda key: classifier.create_state(key, config), KEY)
  out = jax.eval_shape(lambda s, b: classifier.eval_step(s, b, KEY), state, _batch(5))
  assert {k: v.shape for k, v in out.items()} == {"loss": (), "accuracy": (), "error": ()}
  m = state.model
  logits = jax.eval_shape(lambda v, x: m.module.apply(v, x, train=False), m.variables,
                          _batch(5)["image"])
  assert logits.shape == (5, 10)


def test_unknown_architecture_and_activation_are_rejected():
  with pytest.raises(ValueError, match="unknown classifier architecture 'resnet'"):
    classifier.build_model(_config("cnn", {"model.arch": "resnet"}))
  module = LeNet5(activation="gelu")
  with pytest.raises(ValueError, match="unknown activation 'gelu'"):
    jax.eval_shape(module.init, KEY, jnp.zeros((1, 28, 28, 1)))


def _load_file(path, name: str):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_benchmark_flops_of_the_mlp_are_the_traced_matrix_products():
  """The analytic count of experiments/benchmarks/cnn.py against the step's own dot_generals
  (an MLP has no custom VJPs, so its jaxpr holds every product: forward, weight gradients,
  input gradients above the first layer)."""
  from genjax.flops import traced_dot_flops
  flops = _load_file(REPO_ROOT / "experiments" / "benchmarks" / "cnn.py", "bench_cnn")
  config = _config("mlp")
  state = jax.eval_shape(lambda key: classifier.create_state(key, config), KEY)
  b = config.data.batch_size
  batch = {"image": jax.ShapeDtypeStruct((b, 28, 28, 1), jnp.float32),
           "label": jax.ShapeDtypeStruct((b,), jnp.int32)}
  jaxpr = jax.make_jaxpr(classifier.train_step)(state, batch, KEY).jaxpr
  macs = 784 * 800 + 800 * 800 + 800 * 10
  assert flops.classifier_step_flops(config) == traced_dot_flops(jaxpr)
  assert flops.classifier_step_flops(config) == 2 * b * (3 * macs - 784 * 800)
  # LeNet-5: C1, C3, C5, F6, output.
  lenet = [28 * 28 * 25 * 6, 10 * 10 * 25 * 6 * 16, 400 * 120, 120 * 84, 84 * 10]
  assert flops.classifier_step_flops(_config("lenet5")) == 2 * b * (3 * sum(lenet) - lenet[0])


# ----------------------------------------------------------------------------- forward passes


def _max_pool(x):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _conv(x, kernel, padding):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_lenet5_forward_matches_lax_convolutions(activation):
  module = LeNet5(activation=activation)
  x = _batch()["image"]
  params = jax.jit(module.init)(KEY, x)["params"]
  act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[activation]

  @jax.jit
  def reference(params, x):
    h = _max_pool(act(_conv(x, params["Conv_0"]["kernel"], "SAME") + params["Conv_0"]["bias"]))
    assert h.shape == (B, 14, 14, 6)
    h = _max_pool(act(_conv(h, params["Conv_1"]["kernel"], "VALID") + params["Conv_1"]["bias"]))
    assert h.shape == (B, 5, 5, 16)
    h = h.reshape(B, 400)
    for name in ("Dense_0", "Dense_1"):
      h = act(h @ params[name]["kernel"] + params[name]["bias"])
    return h @ params["Dense_2"]["kernel"] + params["Dense_2"]["bias"]

  want = reference(params, x)
  got = jax.jit(module.apply)({"params": params}, x)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _numpy_batch_norm(h, scale, bias, mean, var, eps=1e-5):
  return (h - mean) / np.sqrt(var + eps) * scale + bias


def test_small_cnn_forward_in_both_modes_matches_a_reference():
  """Training mode normalises with the batch's (biased) statistics and moves the running ones
  10 % of the way to them; inference uses the running statistics."""
  module = SmallCNN(widths=(4, 8), hidden=16)
  x = _batch()["image"]
  variables = jax.jit(module.init)(KEY, x)
  p = jax.tree.map(np.asarray, variables["params"])
  # Non-trivial running statistics, so that inference does not reduce to the identity.
  rs = np.random.RandomState(3)
  stats = jax.tree.map(lambda v: rs.uniform(0.5, 1.5, v.shape).astype(np.float32),
                       variables["batch_stats"])

  def reference(train):
    h, new_stats = np.asarray(x, np.float64), {}
    layers = [("Conv_0", "BatchNorm_0"), ("Conv_1", "BatchNorm_1"), ("Dense_0", "BatchNorm_2")]
    for i, (layer, norm) in enumerate(layers):
      if layer.startswith("Conv"):
        h = np.asarray(_conv(jnp.asarray(h, jnp.float32), p[layer]["kernel"], "SAME"),
                       np.float64)
        axes = (0, 1, 2)
      else:
        h = h.reshape(B, -1) @ p[layer]["kernel"]
        axes = (0,)
      mean, var = h.mean(axes), h.var(axes)
      s = stats[norm]
      new_stats[norm] = {"mean": 0.9 * s["mean"] + 0.1 * mean, "var": 0.9 * s["var"] + 0.1 * var}
      if not train:
        mean, var = s["mean"], s["var"]
      h = np.maximum(_numpy_batch_norm(h, p[norm]["scale"], p[norm]["bias"], mean, var), 0.0)
      if i < 2:
        h = np.asarray(_max_pool(jnp.asarray(h)), np.float64)
    return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], new_stats

  full = {"params": variables["params"], "batch_stats": stats}
  apply = jax.jit(module.apply, static_argnames=("train", "mutable"))
  got, updates = apply(full, x, train=True, mutable=("batch_stats",))
  want, want_stats = reference(train=True)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  for norm, s in want_stats.items():
    for k in ("mean", "var"):
      np.testing.assert_allclose(updates["batch_stats"][norm][k], s[k], rtol=1e-4, atol=1e-5,
                                 err_msg=f"{norm}.{k}")
  np.testing.assert_allclose(apply(full, x, train=False), reference(train=False)[0],
                             rtol=1e-4, atol=1e-4)


def test_mlp_dropout_only_in_training():
  module = MLPClassifier(hidden=(32,), dropout_rate=0.5, input_dropout_rate=0.2)
  x = _batch()["image"]
  params = jax.jit(module.init)(KEY, x)["params"]
  eval_logits = module.apply({"params": params}, x)
  h = np.maximum(np.asarray(x).reshape(B, -1) @ params["Dense_0"]["kernel"]
                 + params["Dense_0"]["bias"], 0)
  np.testing.assert_allclose(eval_logits, h @ params["Dense_1"]["kernel"]
                             + params["Dense_1"]["bias"], rtol=1e-4, atol=1e-5)
  a = module.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
  b = module.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(a, eval_logits) and not np.allclose(a, b)


# ----------------------------------------------------------------------------- one step


def test_mlp_sgd_step_is_backpropagation_by_hand():
  """One classifier.train_step of a small MLP (no dropout, plain SGD, weight decay on the
  kernels) against the gradient of the mean cross-entropy written out in NumPy (float64)."""
  lr, wd = 0.1, 0.01
  config = _config("mlp", {"model.hidden": (12, 7), "model.dropout_rate": 0.0,
                           "model.input_dropout_rate": 0.0, "optim.name": "sgd",
                           "optim.momentum": 0.0, "optim.schedule": "constant",
                           "optim.learning_rate": lr, "optim.weight_decay": wd})
  state = classifier.create_state(KEY, config)
  batch = _batch(16, seed=4)
  p = jax.tree.map(lambda v: np.asarray(v, np.float64), state.model.params)
  x = np.asarray(batch["image"], np.float64).reshape(16, -1)
  y = np.asarray(batch["label"])

  a1 = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
  h1 = np.maximum(a1, 0)
  a2 = h1 @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
  h2 = np.maximum(a2, 0)
  z = h2 @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]
  z = z - z.max(1, keepdims=True)
  prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
  loss = -np.mean(np.log(prob[np.arange(16), y]))
  dz = (prob - np.eye(10)[y]) / 16
  da2 = (dz @ p["Dense_2"]["kernel"].T) * (a2 > 0)
  da1 = (da2 @ p["Dense_1"]["kernel"].T) * (a1 > 0)
  grads = {"Dense_2": {"kernel": h2.T @ dz, "bias": dz.sum(0)},
           "Dense_1": {"kernel": h1.T @ da2, "bias": da2.sum(0)},
           "Dense_0": {"kernel": x.T @ da1, "bias": da1.sum(0)}}

  new, metrics = jax.jit(classifier.train_step)(state, batch, KEY)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"], np.mean(z.argmax(1) == y), rtol=1e-7)
  for layer, g in grads.items():
    for name, g_leaf in g.items():
      decay = wd if name == "kernel" else 0.0
      want = p[layer][name] - lr * (g_leaf + decay * p[layer][name])
      np.testing.assert_allclose(new.model.params[layer][name], want, rtol=1e-4, atol=1e-6,
                                 err_msg=f"{layer}.{name}")
  assert int(new.step) == 1


@pytest.mark.slow
def test_cnn_warmup_makes_the_first_update_zero_and_later_ones_move():
  """The CNN's schedule starts its linear warm-up at 0: step 0 leaves the parameters where they
  were (batch statistics still move); the next step changes them."""
  config = _config("cnn", {"model.widths": (4, 8), "model.hidden": 16})
  state = classifier.create_state(KEY, config)
  step = jax.jit(classifier.train_step)
  one, _ = step(state, _batch(seed=1), KEY)
  for a, b in zip(jax.tree.leaves(one.model.params), jax.tree.leaves(state.model.params),
                  strict=True):
    np.testing.assert_array_equal(a, b)
  assert not np.allclose(one.model.batch_stats["BatchNorm_0"]["mean"], 0.0)
  two, _ = step(one, _batch(seed=2), KEY)
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(two.model.params),
                                                    jax.tree.leaves(one.model.params),
                                                    strict=True)]
  assert all(moved)


# ----------------------------------------------------------------------------- end to end


def _check_smoke_run(workdir, result) -> dict:
  assert result.returncode == 0, result.stderr[-4000:]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [10, 20]
  assert all(set(r) == {"step", "loss", "accuracy"} for r in records)
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["10", "20"]
  results = json.loads((workdir / "results.json").read_text())
  # eval_step's loss and accuracy, and the classification evaluator's scores beside them.
  assert results["step"] == 20 and set(results["test"]) >= {"loss", "accuracy", "error",
                                                           "log_loss", "ece"}
  test = results["test"]
  np.testing.assert_allclose(test["accuracy"] + test["error"], 1.0, rtol=1e-6)
  assert 0.2 < test["accuracy"] <= 1.0  # 10 classes: chance is 0.1
  assert np.isfinite(test["loss"]) and test["loss"] < np.log(10)
  return json.loads((workdir / "config.json").read_text())


def _evaluate_classifier_module():
  # It imports its sibling experiments/evaluate.py, and both define absl flags.
  return load_experiment_script("evaluate_classifier")


@pytest.mark.slow  # ~35 s: the loop itself is covered by test_classifier's domain_cnn run
def test_cnn_smoke_config_end_to_end(tmp_path, run_train_cli):
  """The smoke run through experiments/train.py, then experiments/evaluate_classifier.py's
  scores of its checkpoint (genjax.evals.classification): the loop's test accuracy and loss
  again, and a calibration error within its bounds."""
  workdir = tmp_path / "cnn"
  result = run_train_cli(workdir, {"train.tensorboard": False}, config=CONFIG_FILES["cnn"])
  config = _check_smoke_run(workdir, result)
  assert config["model"]["arch"] == "cnn" and config["data"]["name"] == "mnist"
  loop = json.loads((workdir / "results.json").read_text())["test"]
  evaluate_classifier = _evaluate_classifier_module()
  scores = evaluate_classifier.evaluate_workdir(str(workdir))
  assert scores["step"] == 20 and scores["family"] == "neural_classifier"
  np.testing.assert_allclose(scores["test"]["accuracy"], loop["accuracy"], atol=1e-6)
  np.testing.assert_allclose(scores["test"]["log_loss"], loop["loss"], rtol=1e-4)
  # Binning sits between no binning and one bin: mean |confidence - correct| >= ECE >=
  # |mean confidence - accuracy|.
  family, config, state = train.restore_for_eval(str(workdir))
  log_probs, labels = predict_log_proba(family, state, train.load_split(config, "test"),
                                        jax.random.key(0))
  confidence = np.exp(np.asarray(log_probs, np.float64).max(1))
  correct = np.asarray(log_probs).argmax(1) == np.asarray(labels)
  ece = scores["test"]["ece"]
  assert abs(confidence.mean() - correct.mean()) - 1e-5 <= ece
  assert ece <= np.abs(confidence - correct).mean() + 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "lenet5"])
def test_smoke_configs_end_to_end(tmp_path, run_train_cli, arch):
  workdir = tmp_path / arch
  result = run_train_cli(workdir, {"train.tensorboard": False}, config=CONFIG_FILES[arch])
  assert _check_smoke_run(workdir, result)["model"]["arch"] == arch


@pytest.mark.slow  # ~40 s: each step also runs 20 SGLD steps
def test_mlp_smoke_config_trains_as_a_jem(tmp_path, run_train_cli):
  """mlp_mnist's smoke run with joint_weight 0.5 through experiments/train.py: the JEM metrics
  logged and finite, the weight in results.json, the replay buffer in the checkpoint."""
  workdir = tmp_path / "jem"
  result = run_train_cli(workdir, {"train.tensorboard": False, "model.joint_weight": 0.5},
                         config=CONFIG_FILES["mlp"])
  assert result.returncode == 0, result.stderr[-4000:]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [10, 20]
  assert all(set(r) == {"step", "loss", "accuracy", "cross_entropy", "energy_data",
                        "energy_sample"} for r in records)
  assert all(np.isfinite(v) for r in records for v in r.values())
  results = json.loads((workdir / "results.json").read_text())
  assert results["joint_weight"] == 0.5 and results["step"] == 20
  assert np.isfinite(results["test"]["loss"]) and 0.0 <= results["test"]["accuracy"] <= 1.0
  _, config, state = train.restore_for_eval(str(workdir))
  assert config.model.joint_weight == 0.5
  assert state.buffer.shape == (config.model.buffer_size, 28, 28, 1)
  assert np.all(np.isfinite(np.asarray(state.buffer)))


@pytest.mark.parametrize("arch", sorted(CONFIG_FILES))
def test_configs_name_their_dataset(arch):
  assert _config(arch, arg="fashion_mnist").data.name == "fashion_mnist"
  assert _config(arch, arg="fashion_mnist,smoke").train.num_steps == 20
  assert _config(arch, arg="smoke").data.name == "mnist"
  with pytest.raises(ValueError, match="unknown config argument"):
    _config(arch, arg="cifar10")
