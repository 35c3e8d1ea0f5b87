"""Sample grids of generative families: what the model draws from the same noise each time.

`grids` is the final sample grid of training; `sample_grids` the evaluation's set: samples, a
latent interpolation (families with `interpolate`), one row per class (families whose
`num_classes(state)` hook is > 0), each for every generator the family names in its
`sample_variants(state)` hook (a GAN's EMA copy, suffix `_ema`).
"""

import os
from types import ModuleType

import jax
import numpy as np

from genjax import family as family_lib
from genjax.data import images as image_data
from genjax.evals.base import Context


def write_sample_grid(family, state, key: jax.Array, postprocess, writer, step: int,
                      side: int, name: str = "samples") -> str:
  """A side x side grid of `family.sample`, drawn from `key`, saved by `writer`."""
  x = jax.jit(family.sample, static_argnums=2)(state, key, side * side)
  if postprocess is not None:
    x = postprocess(x)
  return writer.write_grid(step, name, np.asarray(jax.device_get(x)), ncol=side)


def grids(ctx: Context, split: str, side: int | None = None) -> dict:
  """The final sample grid (samples/samples_<step>.png), from the evaluation key."""
  ctx.require("sample")
  if ctx.writer is None:
    return {}
  side = side or ctx.config.train.get("sample_grid", 5)
  path = write_sample_grid(ctx.family, ctx.state, ctx.key, ctx.split(split).postprocess,
                           ctx.writer, ctx.step, side)
  return {"details": {"path": path}} if path else {}


def sample_variants(family: ModuleType, state) -> dict[str, dict]:
  """Name suffix -> extra `family.sample` arguments of every generator the family has
  (its `sample_variants(state)` hook; else the one generator, suffix "")."""
  if family_lib.has_hook(family, "sample_variants"):
    return family.sample_variants(state)
  return {"": {}}


def num_classes(family, state) -> int:
  """Classes the model is conditioned on (its `num_classes(state)` hook; else 0)."""
  return int(family.num_classes(state)) if family_lib.has_hook(family, "num_classes") else 0


def sample_grids(ctx: Context, split: str, side: int | None = None, rows: int = 8,
                 steps: int = 10) -> dict:
  """samples/eval_samples, eval_interpolation (rows x steps) and eval_classes (10 per class)
  grids, with each variant's suffix. Needs no data: images are postprocessed by the config's
  `data.preprocess`, so a workdir is drawn whatever data is at hand."""
  del split
  ctx.require("sample")
  if ctx.writer is None:
    return {}
  family, state, key = ctx.family, ctx.state, ctx.key

  def grid(name, images, ncol):
    x = np.asarray(jax.device_get(image_data.postprocess(images, ctx.config.data.preprocess)))
    return ctx.writer.write_grid(ctx.step, name, x, ncol=ncol)

  side = side or ctx.config.train.get("sample_grid", 5)
  classes = num_classes(family, state)
  paths = []
  # The same keys for every variant, so that the grids compare generators on the same noise.
  for suffix, kwargs in sample_variants(family, state).items():
    static = tuple(kwargs)
    sample = jax.jit(family.sample, static_argnums=2, static_argnames=static)
    paths.append(grid("eval_samples" + suffix, sample(state, key, side * side, **kwargs), side))
    if family_lib.has_hook(family, "interpolate"):
      interpolate = jax.jit(family.interpolate, static_argnums=(2, 3), static_argnames=static)
      paths.append(grid("eval_interpolation" + suffix,
                        interpolate(state, jax.random.fold_in(key, 1), rows, steps, **kwargs),
                        steps))
    if classes:
      paths.append(grid("eval_classes" + suffix,
                        sample(state, jax.random.fold_in(key, 2), 10 * classes, **kwargs), 10))
  return {"details": {"paths": [os.path.relpath(p, ctx.workdir) for p in paths if p]}}
