"""Test log-likelihood in nats by importance sampling (`nll`), and the one binarised test set.

Every "nats on binarised MNIST" figure (the VAE's importance-sampled NLL here, the RBM's AIS
log-likelihood in genjax.evals.ais) scores the same binary images: `binarized(images, seed)`.
"""

import math
import time

import jax
import numpy as np

from genjax.evals.base import Context
from genjax.evals.samples import num_classes
from genjax.metrics import likelihood

STREAM = 6  # folded into the evaluation key
BINARIZE_SEED = 0  # the seed of the binarised test set every likelihood figure uses


def binarized(images_u8: np.ndarray, seed: int = BINARIZE_SEED) -> np.ndarray:
  """float32 {0, 1} images of the same shape: one Bernoulli(intensity / 255) draw per pixel
  from numpy's `default_rng(seed)` (stochastically binarised MNIST, as Salakhutdinov & Murray
  2008). This is the binarisation of every reported likelihood (VAE NLL and RBM AIS) and of
  the VAE's evaluation figures; earlier versions drew the VAE's from a JAX key instead."""
  x = images_u8.astype(np.float64) / 255.0
  return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


def model_inputs(split, preprocess: str, key: jax.Array,
                 seed: int = BINARIZE_SEED) -> np.ndarray:
  """A split's images as the model sees them, fixed once: `binarized(images, seed)` for
  dynamically binarised data, else the split's (deterministic) preprocessing."""
  if preprocess == "binarize_dynamic":
    return binarized(split.arrays["image"], seed)
  return np.asarray(split.inputs(key)["image"])


def importance_sampled_nll(log_weight_fn, x: np.ndarray, labels: np.ndarray | None,
                           key: jax.Array, k: int = 5000, batch: int = 20,
                           chunk: int = 1000) -> dict:
  """-log p(x) (or -log p(x | y) when `labels` are given) by importance sampling with k
  samples per example; the mean, its standard error, k, the examples and the seconds.
  `log_weight_fn(labels_known)` is the family's hook (genjax.metrics.likelihood's form)."""
  flat = x.reshape(len(x), -1)
  if labels is not None:
    flat = np.concatenate([flat, labels[:, None].astype(flat.dtype)], axis=1)
  chunk = math.gcd(k, chunk)
  t = time.perf_counter()
  log_px = likelihood.dataset_log_likelihood(log_weight_fn, flat, key, k=k, batch=batch,
                                             chunk=chunk)
  seconds = time.perf_counter() - t
  return {"nll": float(-log_px.mean()), "nll_stderr": float(log_px.std() / math.sqrt(len(x))),
          "k": k, "examples": len(x), "seconds": seconds}


def nll(ctx: Context, split: str, nll_k: int = 5000, nll_examples: int = -1,
        nll_batch: int = 20, nll_chunk: int = 1000, binarize_seed: int = BINARIZE_SEED) -> dict:
  """`nll` (nats, k = nll_k importance samples, as Burda et al.), its standard error, on the
  first nll_examples images of `split` (all if -1); nothing if nll_k <= 0. The family's
  `log_weight_fn(state, labels_known)` hook gives the log importance weights; conditional
  models (`num_classes(state)` > 0) are scored as p(x | y)."""
  ctx.require("log_weight_fn")
  if nll_k <= 0:
    return {}
  data = ctx.split(split)
  key = jax.random.fold_in(ctx.key, STREAM)
  x = model_inputs(data, ctx.config.data.preprocess, key, binarize_seed)
  count = len(x) if nll_examples < 0 else min(nll_examples, len(x))
  conditional = num_classes(ctx.family, ctx.state) > 0
  labels = data.arrays["label"][:count] if conditional else None
  fn = ctx.family.log_weight_fn(ctx.state, labels_known=conditional)
  out = importance_sampled_nll(fn, x[:count], labels, key, nll_k, nll_batch, nll_chunk)
  return {"nll": out["nll"], "nll_stderr": out["nll_stderr"], "nll_k": nll_k,
          "nll_examples": count,
          "details": {"seconds": out["seconds"], "binarization": binarization(
              ctx.config.data.preprocess, binarize_seed)}}


def binarization(preprocess: str, seed: int) -> str:
  """How the scored images were made, for results.json."""
  if preprocess == "binarize_dynamic":
    return f"bernoulli(intensity), numpy default_rng({seed}) (genjax.evals.likelihood.binarized)"
  return f"data.preprocess {preprocess!r}"
