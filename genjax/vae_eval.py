"""Offline evaluation of a VAE: grids, latent scatter and manifold, active units, k=5000 NLL.

`evaluate_offline` writes, from a trained state, into <workdir>/samples/: reconstructions of test
images (rows of originals above rows of their reconstructions), prior samples, latent
interpolations between test images' posterior means, and for a two-dimensional latent space
the test set's posterior means coloured by class and the decoded manifold over a grid of prior
quantiles; it returns the numbers: the importance-sampled test NLL, the active units of every
stochastic layer and the eval_step bounds.
"""

import math
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import writers
from genjax.data import images as image_data
from genjax.families import vae
from genjax.metrics import likelihood


def model_inputs(images_u8: np.ndarray, mode: str, key: jax.Array) -> np.ndarray:
  """The test images as the model sees them: dynamic binarisation drawn once, from `key`
  (the same binary test set on every evaluation with that key)."""
  out = [np.asarray(image_data.preprocess(jnp.asarray(images_u8[i:i + 1000]), mode,
                                          jax.random.fold_in(key, i)))
         for i in range(0, len(images_u8), 1000)]
  return np.concatenate(out)


def importance_sampled_nll(state: vae.VAEState, x: np.ndarray, labels: np.ndarray | None,
                           key: jax.Array, k: int = 5000, batch: int = 20,
                           chunk: int = 1000) -> dict:
  """-log p(x) (or -log p(x | y) for a conditional VAE) by importance sampling with k samples
  from q(z | x), per example; returns the mean, its standard error and the seconds taken."""
  flat = x.reshape(len(x), -1)
  if labels is not None:
    flat = np.concatenate([flat, labels[:, None].astype(flat.dtype)], axis=1)
  fn = vae.log_weight_fn(state, labels_known=labels is not None)
  chunk = math.gcd(k, chunk)
  t = time.perf_counter()
  log_px = likelihood.dataset_log_likelihood(fn, flat, key, k=k, batch=batch, chunk=chunk)
  seconds = time.perf_counter() - t
  return {"nll": float(-log_px.mean()), "nll_stderr": float(log_px.std() / math.sqrt(len(x))),
          "k": k, "examples": len(x), "seconds": seconds}


def posterior_means(state: vae.VAEState, x: np.ndarray, labels: np.ndarray | None,
                    key: jax.Array, samples: int = 20, batch: int = 1000) -> list[np.ndarray]:
  """E_q[z_l | x] of every stochastic layer (N, z_l): exact for the first, averaged over
  `samples` draws of the layers below for the others."""
  hp = state.hparams
  encode = jax.jit(vae.encode)
  outs = [[] for _ in hp.z_dims]
  for start in range(0, len(x), batch):
    xb = jnp.asarray(x[start:start + batch])
    yb = None if labels is None else jnp.asarray(labels[start:start + batch])
    draws = [encode(state, xb, yb, jax.random.fold_in(key, start * samples + s))
             for s in range(samples if len(hp.z_dims) > 1 else 1)]
    for level in range(len(hp.z_dims)):
      outs[level].append(np.mean([np.asarray(d[level]) for d in draws], axis=0))
  return [np.concatenate(o) for o in outs]


def scatter_png(path: str, z_Nx2: np.ndarray, labels: np.ndarray) -> None:
  """The posterior means of a 2-D latent space, coloured by class."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 5.5))
  points = ax.scatter(z_Nx2[:, 0], z_Nx2[:, 1], c=labels, cmap="tab10", s=2, vmin=-0.5,
                      vmax=9.5)
  fig.colorbar(points, ax=ax, ticks=range(10), label="class")
  ax.set_xlabel("z[0]")
  ax.set_ylabel("z[1]")
  ax.set_title("test set posterior means")
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)


def manifold_latents(side: int) -> jax.Array:
  """(side * side, 2) latents at the prior's quantiles (0.5 / side ... 1 - 0.5 / side)."""
  q = jax.scipy.special.ndtri(jnp.linspace(0.5 / side, 1 - 0.5 / side, side))
  a, b = jnp.meshgrid(q, q[::-1])  # rows from top (high z[1]) to bottom
  return jnp.stack([a.ravel(), b.ravel()], -1)


def evaluate_offline(state: vae.VAEState, config: ml_collections.ConfigDict, workdir: str,
                 key: jax.Array, test: image_data.ImageArrays | None, *, nll_k: int = 5000,
                 nll_examples: int = -1, nll_batch: int = 20, nll_chunk: int = 1000) -> dict:
  """Grids and scatter into `workdir`/samples, and the numbers (returned): `nll` (k = nll_k,
  on the first nll_examples test images, all if -1; skipped if nll_k <= 0),
  `active_units` per layer and their variances."""
  hp = state.hparams
  step = int(state.step)
  writer = writers.MetricWriter(workdir, tensorboard=False)
  results: dict = {}
  paths = []
  conditional = hp.num_classes > 0
  paths.append(writer.write_grid(step, "eval_prior_samples",
                                 np.asarray(vae.sample(state, jax.random.fold_in(key, 0), 100)),
                                 ncol=10))
  if hp.z_dims[-1] == 2 and not conditional:
    side = 20
    x = vae.decode_mean(state, manifold_latents(side))
    paths.append(writer.write_grid(step, "eval_manifold", np.asarray(x), ncol=side))
  if test is None:
    return {"grids": paths}
  x = model_inputs(test.images, config.data.preprocess, jax.random.fold_in(key, 1))
  labels = test.labels if conditional else None
  # Reconstructions: 4 rows of 16 originals, each above its reconstructions.
  n = 64
  recon = np.asarray(vae.reconstruct(state, jnp.asarray(x[:n]),
                                     None if labels is None else jnp.asarray(labels[:n])))
  pairs = np.stack([x[:n].reshape(4, 16, *x.shape[1:]), recon.reshape(4, 16, *x.shape[1:])], 1)
  paths.append(writer.write_grid(step, "eval_reconstructions", pairs.reshape(-1, *x.shape[1:]),
                                 ncol=16))
  means = posterior_means(state, x, labels, jax.random.fold_in(key, 2))
  # Interpolations between the top-layer posterior means of pairs of test images.
  rows, steps = 8, 10
  z = vae.interpolate_latents(jnp.asarray(means[-1][:rows]),
                              jnp.asarray(means[-1][rows:2 * rows]), steps)
  y = None if labels is None else jnp.repeat(jnp.asarray(labels[:rows]), steps)
  paths.append(writer.write_grid(step, "eval_interpolations",
                                 np.asarray(vae.decode_mean(state, z, None, y)), ncol=steps))
  if hp.z_dims[-1] == 2:
    path = os.path.join(workdir, "samples", f"eval_latent_scatter_{step:08d}.png")
    scatter_png(path, means[-1], test.labels)
    paths.append(path)
  results["active_units"] = []
  for level, m in enumerate(means):
    count, var = likelihood.active_units(jnp.asarray(m))
    results["active_units"].append({"layer": level + 1, "active": count, "units": m.shape[1],
                                    "variances": [float(v) for v in np.sort(var)[::-1]]})
  if nll_k > 0:
    count = len(x) if nll_examples < 0 else min(nll_examples, len(x))
    results["nll"] = importance_sampled_nll(
        state, x[:count], None if labels is None else labels[:count],
        jax.random.fold_in(key, 3), nll_k, nll_batch, nll_chunk)
  results["grids"] = paths
  writer.close()
  return results
