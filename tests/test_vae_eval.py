"""Tests of the VAE's evaluators (genjax.evals.vae: figures and active units;
genjax.evals.likelihood: the importance-sampled NLL and the one binarised test set) on a tiny
z = 2 VAE: the files they write and the numbers they return."""

import json

import jax
import numpy as np
import pytest
from scipy import stats

from genjax import evals, writers
from genjax.data import splits
from genjax.evals import likelihood as likelihood_eval
from genjax.evals import vae as vae_eval
from genjax.families import vae
from genjax.metrics import likelihood


def tiny_state(**model):
  m = vae.model_config(z_dims=(2,), hidden=((5,),), eval_k=4, **model)
  c = vae.experiment_config(model=m, optim=vae.optim_config(1e-2), preprocess="binarize_dynamic",
                            batch_size=4, num_epochs=1)
  c.data.image_shape = (4, 4, 1)
  return vae.create_state(jax.random.key(0), c), c


def tiny_context(tmp_path, state, config, key):
  rng = np.random.default_rng(0)
  test = splits.ArraySplit("test", {
      "image": rng.integers(0, 256, (64, 4, 4, 1)).astype(np.uint8),
      "label": rng.integers(0, 10, 64).astype(np.int32)})
  ctx = evals.Context(family=vae, state=state, config=config, step=int(state.step), key=key,
                      workdir=str(tmp_path),
                      writer=writers.MetricWriter(str(tmp_path), tensorboard=False))
  ctx.add_split(test)
  return ctx, test


def test_manifold_latents_are_prior_quantiles():
  z = np.asarray(vae_eval.manifold_latents(4))
  q = stats.norm.ppf([0.125, 0.375, 0.625, 0.875])
  np.testing.assert_allclose(z[:4, 0], q, rtol=1e-5)  # the first row sweeps z[0] ...
  np.testing.assert_allclose(z[::4, 1], q[::-1], rtol=1e-5)  # ... rows descend in z[1]


def test_binarized_is_the_seeded_numpy_draw_of_rbm_ais():
  """The one binarisation of every likelihood figure is the draw experiments/rbm_ais.py made
  (numpy default_rng(seed) over the flattened images), in the images' shape."""
  images = np.random.default_rng(1).integers(0, 256, (5, 4, 4, 1)).astype(np.uint8)
  x = likelihood_eval.binarized(images, 3)
  flat = images.reshape(5, -1).astype(np.float64) / 255.0
  want = (np.random.default_rng(3).random(flat.shape) < flat).astype(np.float32)
  assert x.shape == images.shape and x.dtype == np.float32
  np.testing.assert_array_equal(x.reshape(5, -1), want)
  assert not np.array_equal(x, likelihood_eval.binarized(images, 4))


@pytest.mark.slow
def test_figures_and_numbers(tmp_path):
  state, config = tiny_state()
  key = jax.random.key(1)
  ctx, test = tiny_context(tmp_path, state, config, key)
  out = evals.run(ctx, {
      "latents": {"type": "latents", "split": "test", "on_train_end": False},
      "nll": {"type": "nll", "split": "test", "on_train_end": False, "nll_k": 20,
              "nll_examples": 8, "nll_batch": 4, "nll_chunk": 10}})
  names = sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "samples").glob("*.png"))
  assert names == ["eval_interpolations", "eval_latent_scatter", "eval_manifold",
                   "eval_prior_samples", "eval_reconstructions"]
  json.dumps(out)  # results.json material
  # The NLL is the estimator's, on the test images binarised by the one seeded draw.
  x = likelihood_eval.binarized(test.arrays["image"])
  want = likelihood.dataset_log_likelihood(
      vae.log_weight_fn(state), x[:8].reshape(8, -1),
      jax.random.fold_in(key, likelihood_eval.STREAM), k=20, batch=4, chunk=10)
  scores = out["test"]
  assert scores["nll"] == pytest.approx(-want.mean(), rel=1e-6)
  assert scores["nll_examples"] == 8 and scores["nll_k"] == 20
  means = vae_eval.posterior_means(vae, state, x, None, jax.random.key(2))[0]
  count, _ = likelihood.active_units(means)
  layer = out["details"]["latents"]["active_units"][0]
  assert scores["active_units"] == scores["active_units_1"] == layer["active"] == count
  assert layer["units"] == 2


def test_nll_k_zero_skips_the_estimate(tmp_path):
  state, config = tiny_state()
  ctx, _ = tiny_context(tmp_path, state, config, jax.random.key(1))
  assert likelihood_eval.nll(ctx, "test", nll_k=0) == {}
