"""Classification scores of any classifier, generative or discriminative: accuracy, error,
log-loss (nats), expected calibration error, and the seconds spent predicting.

The family supplies `log_proba(state, batch) -> [B, C]` (normalised log P(class | x)); the
labels are the batch's `label`.
"""

import time

import jax
import numpy as np

from genjax.evals.base import Context
from genjax.metrics import classification as cls_metrics

STREAM = 4  # folded into the evaluation key


def predict_log_proba(family, state, split, key: jax.Array,
                      batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """(log-probabilities [N, C], labels [N]) over a whole split, batch by batch."""
  log_proba = jax.jit(family.log_proba)
  log_probs, labels = [], []
  for batch, _ in split.eval_batches(batch_size, key):
    log_probs.append(np.asarray(log_proba(state, batch)))
    labels.append(np.asarray(batch["label"]))
  return np.concatenate(log_probs), np.concatenate(labels)


def classification(ctx: Context, split: str, batch_size: int = 1000, num_bins: int = 15,
                   num_examples: int = 0) -> dict:
  """accuracy, error, log_loss, ece and predict_seconds (compilation included) on `split`'s
  first `num_examples` examples (0: every example)."""
  ctx.require("log_proba")
  data = ctx.split(split).head(num_examples)
  start = time.perf_counter()
  log_probs, labels = predict_log_proba(ctx.family, ctx.state, data,
                                        jax.random.fold_in(ctx.key, STREAM), batch_size)
  seconds = time.perf_counter() - start
  scores = cls_metrics.summary(log_probs, labels, num_bins)
  return {**scores, "error": 1.0 - scores["accuracy"], "predict_seconds": seconds,
          "num_examples": int(len(labels))}
