"""Evaluation from samples (genjax.evals.sample_quality, genjax.evals.samples): chunked
generation, metrics against a perfect generator, experiments/evaluate.py on a conditional GAN."""

import json
import subprocess
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import rng
from genjax.data import images as image_data
from genjax.evals import sample_quality
from genjax.families import gan

REPO_ROOT = Path(__file__).resolve().parents[1]
CGAN_CONFIG = REPO_ROOT / "experiments" / "configs" / "cgan_mnist.py"
EVALUATE_SCRIPT = REPO_ROOT / "experiments" / "evaluate.py"


def _tiny_gan(num_classes=0, ema_decay=0.0):
  c = types.SimpleNamespace(
      data=gconfig.image_data("mnist", "symmetric", 8),
      model=gan.model_config(arch="mlp", hidden_dim=4, num_classes=num_classes,
                             ema_decay=ema_decay),
      optim=gconfig.adam(1e-3))
  return gan.create_state(jax.random.key(0), c), c


def test_generate_images_is_chunk_size_independent_and_in_unit_range():
  state, config = _tiny_gan()
  key = jax.random.key(3)
  a = sample_quality.generate_images(gan, state, key, 7, "symmetric", chunk=7)
  b = sample_quality.generate_images(gan, state, key, 7, "symmetric", chunk=7)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (7, 28, 28, 1) and a.min() >= 0.0 and a.max() <= 1.0
  # Chunk i is drawn from fold_in(key, i): the first chunk of a chunked draw is that sample.
  c = sample_quality.generate_images(gan, state, key, 7, "symmetric", chunk=3)
  first = image_data.postprocess(gan.sample(state, jax.random.fold_in(key, 0), 3), "symmetric")
  np.testing.assert_allclose(c[:3], np.asarray(first), atol=1e-6)
  assert c.shape == (7, 28, 28, 1)


def test_interpolation_rows_walk_between_two_latents():
  state, _ = _tiny_gan(num_classes=10)
  key = jax.random.key(1)
  x = gan.interpolate(state, key, rows=3, steps=5).reshape(3, 5, 28, 28, 1)
  k0, k1 = jax.random.split(key)
  z0, z1 = rng.normal(k0, 3, (64,)), rng.normal(k1, 3, (64,))
  labels = gan.sample_labels(3, 10)
  np.testing.assert_allclose(x[:, 0], gan.generate(state, z0, labels), atol=1e-5)
  np.testing.assert_allclose(x[:, -1], gan.generate(state, z1, labels), atol=1e-5)
  np.testing.assert_allclose(x[:, 2], gan.generate(state, 0.5 * (z0 + z1), labels), atol=1e-5)


def test_a_generator_that_returns_the_test_images_scores_perfectly(tfds_data_dir):
  """Fakes identical to the reference set: FID 0, precision = recall = coverage = 1."""
  del tfds_data_dir
  test = image_data.load_arrays("mnist", "test", image_shape=(28, 28, 1))
  real = test.images[:600]

  def sample(state, key, num):  # the first `num` test images, whatever the key
    del state, key
    return jnp.asarray(real[:num], jnp.float32) / 255.0

  out = sample_quality.evaluate_samples(types.SimpleNamespace(sample=sample), None, "mnist",
                                        "unit", jax.random.key(0), real, test.images[600:1200],
                                        num_samples=600)
  g, floor = out["generator"], out["floor"]
  assert abs(g["fid"]) < 1e-2 * floor["fid"]
  assert g["precision"] == g["recall"] == g["coverage"] == 1.0
  # Unbiased MMD^2 of a set against itself is 2 (sum(K) / m - trace(K)) / (m (m - 1)) < 0:
  # the cross term keeps the self-similarities the within-set terms leave out. Subsets
  # clipped to the whole set are all the same set, so the spread is nil.
  assert g["kid"] < 0 and g["kid_std"] < 1e-3 * abs(g["kid"])
  # Two different real sets: positive FID, near-perfect but imperfect manifold metrics.
  assert floor["fid"] > 0.05 and 0.5 < floor["precision"] < 1.0 and 0.5 < floor["recall"] < 1.0
  assert 9.0 < g["inception_score"] <= 10.0 and out["num_samples"] == 600


@pytest.fixture(scope="module")
def cgan_workdir(tmp_path_factory, run_train_cli):
  """A conditional GAN with EMA and tiny widths, trained for 2 steps."""
  workdir = tmp_path_factory.mktemp("cgan")
  overrides = {"model.hidden_dim": 4, "model.d_hidden_dim": 4, "model.ema_decay": 0.5,
               "train.num_steps": 2, "train.log_every": 1, "train.checkpoint_every": 2,
               "train.sample_every": 1000}
  done = run_train_cli(workdir, overrides, config=CGAN_CONFIG)
  assert done.returncode == 0, done.stderr[-3000:]
  return workdir


@pytest.mark.slow  # 45 s; experiments/evaluate.py's evaluators run by default in test_every_config
@pytest.mark.parametrize("with_data", [True, False])
def test_evaluate_cli_writes_metrics_and_grids(cgan_workdir, subprocess_env, tmp_path,
                                               with_data):
  """Metrics beside their floor for the raw and EMA generators, and every grid."""
  workdir = cgan_workdir
  args = [sys.executable, str(EVALUATE_SCRIPT), f"--workdir={workdir}", "--num_samples=300"]
  if not with_data:  # raw files that are not there: grids only
    args.append(f"--idx_dir={tmp_path}")
  (workdir / "results.json").unlink(missing_ok=True)
  done = subprocess.run(args, cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((workdir / "results.json").read_text())
  names = {p.name for p in (workdir / "samples").iterdir()}
  for grid in ("eval_samples", "eval_interpolation", "eval_classes"):
    for suffix in ("", "_ema"):
      assert f"{grid}{suffix}_00000002.png" in names
  assert results["step"] == 2 and results["family"] == "gan"
  if not with_data:
    assert "test" not in results and "sample_quality" not in results.get("details", {})
    return
  test = results["test"]
  samples = results["details"]["sample_quality"]
  assert test["num_samples"] == 300 and samples["classifier"]["dataset"] == "mnist"
  names = {"fid", "kid", "kid_std", "inception_score", "inception_score_std", "precision",
           "recall", "density", "coverage"}
  for entry in ("floor", "generator", "generator_ema"):
    assert set(samples[entry]) == names
  for suffix, entry in (("", "generator"), ("_ema", "generator_ema"), ("_floor", "floor")):
    assert {name: test[name + suffix] for name in names} == samples[entry]
  # Two training steps are far from the data; the real training set is close to the test set.
  assert test["fid"] > 10 * test["fid_floor"]
  assert test["inception_score_floor"] > test["inception_score"] + 2
  assert set(test) >= {"d_loss", "g_loss", "d_accuracy"}
