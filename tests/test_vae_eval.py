"""Tests of genjax.vae_eval on a tiny z = 2 VAE: the files it writes and the numbers it returns."""

import json

import jax
import numpy as np
import pytest
from scipy import stats

from genjax import vae_eval
from genjax.data.images import ImageArrays
from genjax.families import vae
from genjax.metrics import likelihood


def tiny_state(**model):
  m = vae.model_config(z_dims=(2,), hidden=((5,),), eval_k=4, **model)
  c = vae.experiment_config("mnist", "binarize_dynamic", 4, 1, m, vae.optim_config(1e-2))
  c.data.image_shape = (4, 4, 1)
  return vae.create_state(jax.random.key(0), c), c


def test_manifold_latents_are_prior_quantiles():
  z = np.asarray(vae_eval.manifold_latents(4))
  q = stats.norm.ppf([0.125, 0.375, 0.625, 0.875])
  np.testing.assert_allclose(z[:4, 0], q, rtol=1e-5)  # the first row sweeps z[0] ...
  np.testing.assert_allclose(z[::4, 1], q[::-1], rtol=1e-5)  # ... rows descend in z[1]


@pytest.mark.slow
def test_offline_outputs_and_numbers(tmp_path):
  state, config = tiny_state()
  rng = np.random.default_rng(0)
  test = ImageArrays(images=rng.integers(0, 256, (64, 4, 4, 1)).astype(np.uint8),
                     labels=rng.integers(0, 10, 64).astype(np.int32))
  out = vae_eval.evaluate_offline(state, config, str(tmp_path), jax.random.key(1), test,
                                  nll_k=20, nll_examples=8, nll_batch=4, nll_chunk=10)
  names = sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "samples").glob("*.png"))
  assert names == ["eval_interpolations", "eval_latent_scatter", "eval_manifold",
                   "eval_prior_samples", "eval_reconstructions"]
  json.dumps(out)  # results.json material
  # The NLL is the estimator's, on the binarised test images the evaluation draws.
  x = vae_eval.model_inputs(test.images, "binarize_dynamic", jax.random.fold_in(jax.random.key(1),
                                                                               1))
  assert set(np.unique(x)) <= {0.0, 1.0}
  want = likelihood.dataset_log_likelihood(vae.log_weight_fn(state), x[:8].reshape(8, -1),
                                           jax.random.fold_in(jax.random.key(1), 3), k=20,
                                           batch=4, chunk=10)
  assert out["nll"]["nll"] == pytest.approx(-want.mean(), rel=1e-6)
  assert out["nll"]["examples"] == 8 and out["nll"]["k"] == 20
  means = vae_eval.posterior_means(state, x, None, jax.random.key(2))[0]
  count, _ = likelihood.active_units(means)
  assert out["active_units"][0]["active"] == count and out["active_units"][0]["units"] == 2
