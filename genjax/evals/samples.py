"""Sample grids of generative families: what the model draws from the same noise each time."""

import jax
import numpy as np

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
