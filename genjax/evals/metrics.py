"""The family's own evaluation metrics (`eval_step`), averaged over a whole split."""

import jax

from genjax.evals.base import Context

STREAM = 1  # folded into the evaluation key


def evaluate_split(family, state, split, key: jax.Array, batch_size: int = 500) -> dict:
  """Mean of `family.eval_step` over every example of `split`, weighted by batch size (one
  device). Batch i's preprocessing noise and evaluation key come from `fold_in(key, i)`."""
  eval_step = jax.jit(family.eval_step)
  totals, n = {}, 0
  for batch, k_eval in split.eval_batches(batch_size, key):
    size = len(next(iter(batch.values())))
    metrics = jax.device_get(eval_step(state, batch, k_eval))
    for k, v in metrics.items():
      totals[k] = totals.get(k, 0.0) + float(v) * size
    n += size
  return {k: v / n for k, v in totals.items()}


def mean_metrics(ctx: Context, split: str, batch_size: int = 500, num_examples: int = 0) -> dict:
  """`eval_step`'s metrics (loss, accuracy, ELBO, ...) averaged over `split`'s first
  `num_examples` examples (0: every example)."""
  ctx.require("eval_step")
  return evaluate_split(ctx.family, ctx.state, ctx.split(split).head(num_examples),
                        jax.random.fold_in(ctx.key, STREAM), batch_size)
