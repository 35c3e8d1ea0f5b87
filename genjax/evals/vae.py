"""A VAE's evaluation figures: prior samples, reconstructions, interpolations, the z = 2
scatter and manifold, and the active units of every stochastic layer.

Written from a trained state into <workdir>/samples/: prior samples and, for a two-dimensional
unconditional latent space, the decoded manifold over a grid of prior quantiles (no data
needed); then from the test images (binarised as every likelihood figure,
genjax.evals.likelihood.binarized): reconstructions (rows of originals above rows of their
reconstructions), interpolations between test images' posterior means, the z = 2 scatter of
those means coloured by class. Uses the family's `sample`, `encode`, `decode_mean`,
`reconstruct`, `interpolate_latents` and `num_classes` hooks.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from genjax.evals.base import Context
from genjax.evals.likelihood import BINARIZE_SEED, model_inputs
from genjax.evals.samples import num_classes
from genjax.metrics import likelihood

STREAM = 3  # folded into the evaluation key


def posterior_means(family, state, x: np.ndarray, labels: np.ndarray | None, key: jax.Array,
                    samples: int = 20, batch: int = 1000) -> list[np.ndarray]:
  """E_q[z_l | x] of every stochastic layer (N, z_l): exact for the first, averaged over
  `samples` draws of the layers below for the others."""
  encode = jax.jit(family.encode)
  outs = None
  for start in range(0, len(x), batch):
    xb = jnp.asarray(x[start:start + batch])
    yb = None if labels is None else jnp.asarray(labels[start:start + batch])
    first = encode(state, xb, yb, jax.random.fold_in(key, start * samples))
    draws = [first]
    if len(first) > 1:  # one layer: the mean needs no draws
      draws += [encode(state, xb, yb, jax.random.fold_in(key, start * samples + s))
                for s in range(1, samples)]
    if outs is None:
      outs = [[] for _ in first]
    for level in range(len(first)):
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


def latents(ctx: Context, split: str, binarize_seed: int = BINARIZE_SEED,
            manifold_side: int = 20, num_examples: int = -1) -> dict:
  """The grids above (paths under `details`) and `active_units` (all layers; per layer
  `active_units_<l>` and, in `details`, the sorted variances), over the split's first
  `num_examples` images (-1: all)."""
  ctx.require("sample", "encode", "decode_mean", "reconstruct", "interpolate_latents")
  family, state, step = ctx.family, ctx.state, ctx.step
  key = jax.random.fold_in(ctx.key, STREAM)
  conditional = num_classes(family, state) > 0
  paths = []

  def grid(name, images, ncol):
    if ctx.writer is not None:
      paths.append(ctx.writer.write_grid(step, name, np.asarray(images), ncol=ncol))

  # The model's functions jitted: called eagerly, a convolutional decoder compiles each of its
  # operations on its own (some 400 small programs, most of this evaluator's time).
  sample = jax.jit(family.sample, static_argnums=2)
  reconstruct, decode_mean = jax.jit(family.reconstruct), jax.jit(family.decode_mean)
  grid("eval_prior_samples", sample(state, jax.random.fold_in(key, 0), 100), 10)
  data = ctx.split(split)
  x = model_inputs(data, ctx.config.data.preprocess, jax.random.fold_in(key, 1), binarize_seed)
  all_labels = data.arrays["label"]
  if num_examples > 0:
    x, all_labels = x[:num_examples], all_labels[:num_examples]
  labels = all_labels if conditional else None
  # Reconstructions: 4 rows of 16 originals, each above its reconstructions.
  n = 64
  recon = np.asarray(reconstruct(state, jnp.asarray(x[:n]),
                                        None if labels is None else jnp.asarray(labels[:n])))
  pairs = np.stack([x[:n].reshape(4, 16, *x.shape[1:]), recon.reshape(4, 16, *x.shape[1:])], 1)
  grid("eval_reconstructions", pairs.reshape(-1, *x.shape[1:]), 16)
  means = posterior_means(family, state, x, labels, jax.random.fold_in(key, 2))
  # Interpolations between the top-layer posterior means of pairs of test images.
  rows, steps = 8, 10
  z = family.interpolate_latents(jnp.asarray(means[-1][:rows]),
                                 jnp.asarray(means[-1][rows:2 * rows]), steps)
  y = None if labels is None else jnp.repeat(jnp.asarray(labels[:rows]), steps)
  grid("eval_interpolations", decode_mean(state, z, None, y), steps)
  if means[-1].shape[1] == 2:
    if not conditional:
      grid("eval_manifold", decode_mean(state, manifold_latents(manifold_side)),
           manifold_side)
    if ctx.writer is not None:
      path = os.path.join(ctx.workdir, "samples", f"eval_latent_scatter_{step:08d}.png")
      scatter_png(path, means[-1], all_labels)
      paths.append(path)
  out: dict = {}
  layers = []
  for level, m in enumerate(means):
    count, var = likelihood.active_units(jnp.asarray(m))
    out[f"active_units_{level + 1}"] = int(count)
    layers.append({"layer": level + 1, "active": int(count), "units": int(m.shape[1]),
                   "variances": [float(v) for v in np.sort(np.asarray(var))[::-1]]})
  out["active_units"] = sum(layer["active"] for layer in layers)
  out["details"] = {"active_units": layers,
                    "grids": [os.path.relpath(p, ctx.workdir) for p in paths if p]}
  return out
