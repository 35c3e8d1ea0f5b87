"""The generic loop drives both kinds of family with no image in sight: the toy fit family
(nearest_mean) and the toy step family (softmax_sgd) on the iris split, against NumPy."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import family as family_lib
from genjax import train
from genjax.data import images as image_data
from genjax.data import splits

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def _config(name: str, arg: str = "iris,smoke", **overrides):
  from genjax.cli import load_module
  c = load_module(str(CONFIGS / f"{name}.py")).get_config(arg)
  c.train.progress = False
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split(".")
    node = c
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def _iris(config):
  tr, te = (splits.load(config.data, s) for s in ("train", "test"))
  return (tr.arrays["x"].astype(np.float64), tr.arrays["label"],
          te.arrays["x"].astype(np.float64), te.arrays["label"])


def _scores(results: dict) -> dict:
  """The test metrics without wall-clock timings."""
  return {k: v for k, v in results["test"].items() if not k.endswith("_seconds")}


def _log_softmax(z):
  z = z - z.max(1, keepdims=True)
  return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_families_are_recognised_by_kind():
  assert family_lib.is_fit(family_lib.load("nearest_mean"))
  assert family_lib.is_step(family_lib.load("softmax_sgd"))
  assert family_lib.is_step(family_lib.load("classifier"))  # an old name still loads
  with pytest.raises(ValueError, match="neither"):
    family_lib.load("genjax.writers")


def test_fit_family_through_the_loop_matches_numpy(tmp_path):
  config = _config("nearest_mean")
  results = train.train_and_evaluate(config, str(tmp_path))
  x_tr, y_tr, x_te, y_te = _iris(config)
  means = np.stack([x_tr[y_tr == c].mean(0) for c in range(3)])
  prior = np.log(np.bincount(y_tr, minlength=3) / len(y_tr))
  lp = _log_softmax(prior - 0.5 * ((x_te[:, None] - means[None]) ** 2).sum(-1))
  test = results["test"]
  assert test["accuracy"] == pytest.approx(np.mean(lp.argmax(1) == y_te), abs=1e-7)
  # float32 squared distances of standardised features (|x| < 5, D = 4): ~1e-6 relative.
  assert test["log_loss"] == pytest.approx(-lp[np.arange(len(y_te)), y_te].mean(), rel=1e-5)
  assert results["step"] == train.FITTED_STEP and results["fit_seconds"] > 0
  assert json.loads((tmp_path / "results.json").read_text())["test"] == test
  assert json.loads((tmp_path / "config.json").read_text())["family"] == "nearest_mean"


def test_fit_family_rerun_restores_instead_of_refitting(tmp_path):
  config = _config("nearest_mean")
  first = train.train_and_evaluate(config, str(tmp_path))
  fit_json = (tmp_path / "fit.json").read_text()
  # A refit would run the family's fit: make it impossible and check nothing needs it.
  family = family_lib.load("nearest_mean")
  original = family.fit
  family.fit = lambda *a, **k: pytest.fail("refitted a fitted workdir")
  try:
    again = train.train_and_evaluate(config, str(tmp_path))
  finally:
    family.fit = original
  assert (tmp_path / "fit.json").read_text() == fit_json
  assert _scores(again) == _scores(first) and again["fit_seconds"] == first["fit_seconds"]
  _, _, state = train.restore_for_eval(str(tmp_path))
  assert state.mean_CxD.shape == (3, 4)


def _numpy_sgd(config, x_tr, y_tr, steps):
  """The loop's batches (genjax.data.images.DeviceSampler order) and SGD in float64."""
  keys = train.RunKeys.from_seed(config.seed)
  m = config.model
  w = np.asarray(0.01 * jax.random.normal(keys.init, (m.num_features, m.num_classes)),
                 np.float64)
  b = np.zeros(m.num_classes)
  sampler = image_data.DeviceSampler(len(y_tr), config.data.batch_size)
  lr = config.optim.learning_rate
  for step in range(steps):
    perm = np.asarray(sampler.permutation(keys.data, step // sampler.steps_per_epoch))
    idx = np.asarray(sampler.indices(perm, np.int32(step)))
    x, y = x_tr[idx], y_tr[idx]
    p = np.exp(_log_softmax(x @ w + b))
    p[np.arange(len(y)), y] -= 1.0
    w, b = w - lr * x.T @ p / len(y), b - lr * p.mean(0)
  return w, b


def test_step_family_through_the_loop_matches_numpy_sgd(tmp_path):
  config = _config("softmax_sgd", **{"train.eval_every": 20})
  results = train.train_and_evaluate(config, str(tmp_path))
  _, _, state = train.restore_for_eval(str(tmp_path))
  x_tr, y_tr, x_te, y_te = _iris(config)
  w, b = _numpy_sgd(config, x_tr, y_tr, config.train.num_steps)
  # 40 float32 steps of a well-conditioned problem: the float64 replay agrees to ~1e-5.
  np.testing.assert_allclose(np.asarray(state.w_DxC), w, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(state.b_C), b, rtol=1e-4, atol=1e-5)
  lp = _log_softmax(x_te @ w + b)
  assert results["test"]["accuracy"] == pytest.approx(np.mean(lp.argmax(1) == y_te), abs=1e-7)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  evals = [r for r in records if "test/accuracy" in r]
  assert [r["step"] for r in evals] == [20, 40]
  assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)


def test_step_family_resumes_bit_exactly(tmp_path):
  straight = train.train_and_evaluate(_config("softmax_sgd"), str(tmp_path / "straight"))
  half = _config("softmax_sgd", **{"train.num_steps": 20})
  train.train_and_evaluate(half, str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(_config("softmax_sgd"), str(tmp_path / "resumed"))
  assert _scores(resumed) == _scores(straight)
  a = train.restore_for_eval(str(tmp_path / "straight"))[2]
  b = train.restore_for_eval(str(tmp_path / "resumed"))[2]
  assert np.array_equal(a.w_DxC, b.w_DxC) and np.array_equal(a.b_C, b.b_C)


def test_eval_every_stops_training_when_told(tmp_path):
  config = _config("softmax_sgd", **{"train.eval_every": 10})
  seen = []
  results = train.train_and_evaluate(config, str(tmp_path),
                                     on_eval=lambda step, m: seen.append(step) or step >= 20)
  assert seen == [10, 20] and results["step"] == 20


def test_dataset_argument_and_unknown_names():
  assert gconfig.parse_dataset_arg("wine,smoke", "iris") == ("wine", True)
  with pytest.raises(ValueError, match="unknown config argument"):
    gconfig.parse_dataset_arg("wien", "iris")
  with pytest.raises(splits.UnknownDatasetError, match="did you mean 'mnist'"):
    splits.check_name("mnistt")


def test_an_incomplete_family_is_refused_naming_what_it_lacks():
  import types
  step = types.ModuleType("half_step")
  step.create_state, step.train_step = (lambda *a: None), (lambda *a: None)
  with pytest.raises(ValueError, match=r"^family module half_step is a step family without "
                                       r"eval_step$"):
    family_lib.check(step)
  fit = types.ModuleType("half_fit")
  fit.fit = lambda *a: None
  with pytest.raises(ValueError, match=r"is a fit family without create_state$"):
    family_lib.check(fit)


def test_hooks_are_looked_up_only_by_declared_names():
  family = family_lib.load("softmax_sgd")
  assert family_lib.hook(family, "log_proba") is family.log_proba
  assert family_lib.hook(family, "sample") is None and not family_lib.has_hook(family, "sample")
  with pytest.raises(KeyError, match="not a declared family hook"):
    family_lib.hook(family, "log_probs")


def test_every_hook_a_family_defines_is_declared_and_every_family_loads():
  """Every family module passes family.check, and each declared hook it defines is a function
  (DEFAULT_EVALS, a dict, apart)."""
  import pkgutil

  import genjax.families
  names = [m.name for m in pkgutil.iter_modules(genjax.families.__path__)]
  assert len(names) >= 10
  for name in names:
    module = family_lib.load(name)  # raises for an incomplete family
    for hook in family_lib.HOOKS:
      value = getattr(module, hook, None)
      assert value is None or hook == "DEFAULT_EVALS" or callable(value), (name, hook)


def test_the_public_api_resolves():
  import genjax
  assert {"load_family", "train_and_evaluate", "fit_and_evaluate", "restore_for_eval",
          "DataParallel", "Split", "EVALUATORS"} <= set(genjax.__all__)
  for name in genjax.__all__:
    assert getattr(genjax, name) is not None, name
  assert genjax.load_family is family_lib.load
  with pytest.raises(AttributeError):
    genjax.no_such_name  # noqa: B018
