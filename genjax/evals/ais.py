"""An RBM's test log-likelihood in nats through an AIS estimate of its log Z, and chain grids.

Any model genjax.structured.ais has a path for: the density RBM (log p(v) = -F(v) - log Z) and
the classification RBM (log p(x) = logsumexp_y -F(x, y) - log Z, the label summed out). The
base-rate model's visible biases are fitted to the training images' pixel intensities (the
on-probabilities of dynamically binarised pixels), and the classification RBM's label biases
to the training labels' frequencies; `num_repeats` independent AIS estimates of log Z are made
from `num_runs` runs each along Salakhutdinov & Murray's temperatures (all runs in one batch);
the evaluation split, binarised as every likelihood figure (genjax.evals.likelihood.binarized),
is scored as the mean log p(x) (log Z pooled over every run). Sample grids, where the family
has the hooks (`sample`, `chain_grid`): independent chains after 1,000 Gibbs sweeps, and chains
started at test images (samples/ais_*.png). Options default to the config's `ais` section.
"""

import os
import time

import jax
import numpy as np

from genjax import family as family_lib
from genjax.evals.base import Context
from genjax.evals.likelihood import BINARIZE_SEED, binarization, binarized
from genjax.structured import ais as ais_lib

STREAM = 7  # folded into the evaluation key


def ais(ctx: Context, split: str, num_runs: int | None = None, num_repeats: int | None = None,
        num_betas: int | None = None, seed: int | None = None,
        binarize_seed: int = BINARIZE_SEED, num_train_eval: int = 10_000,
        train_split: str = "train", grids: bool | None = None) -> dict:
  """`log_likelihood` (mean log p(x), nats), `nll` (its negative), `log_z` and the spread of
  its repeats (`log_z_repeat_std`); everything else under `details`. `seed` (if given) seeds
  the AIS runs with jax.random.key(seed) instead of the evaluation key. `grids`: draw the sample
  grids (True requires the family's `sample` and `chain_grid` hooks; None, the default, draws
  them where the family has both)."""
  hooks = ("sample", "chain_grid")
  if grids:
    ctx.require(*hooks)
  elif grids is None:
    grids = all(family_lib.has_hook(ctx.family, h) for h in hooks)
  a = ctx.config.get("ais") or {}
  num_runs = num_runs or a.get("num_runs", 100)
  num_repeats = num_repeats or a.get("num_repeats", 5)
  num_betas = num_betas or a.get("num_betas", 14_500)
  params = ctx.state.params
  train_u8 = ctx.split(train_split).arrays["image"]
  test_u8 = ctx.split(split).arrays["image"]
  flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
  train_labels = ctx.split(train_split).arrays.get("label")
  path = ais_lib.path_from_data(params, flat(train_u8).astype(np.float64) / 255.0, train_labels)
  test_v = flat(binarized(test_u8, binarize_seed))
  train_v = flat(binarized(train_u8[:num_train_eval], binarize_seed + 1))

  key = jax.random.fold_in(ctx.key, STREAM) if seed is None else jax.random.key(seed)
  t0 = time.perf_counter()
  log_w, log_z0 = ais_lib.runs(path, key, num_runs * num_repeats, num_betas)
  ais_seconds = time.perf_counter() - t0
  pooled = ais_lib.log_mean_exp_interval(log_w, log_z0)
  repeats = [ais_lib.log_mean_exp_interval(w, log_z0)
             for w in log_w.reshape(num_repeats, num_runs)]
  rep_log_z = np.array([r.log_z for r in repeats])
  test_ll = ais_lib.mean_log_likelihood(params, test_v, pooled.log_z)
  train_ll = ais_lib.mean_log_likelihood(params, train_v, pooled.log_z)
  details = {
      "num_hidden": int(params.c.shape[0]),
      "num_betas": num_betas, "num_runs": num_runs, "num_repeats": num_repeats,
      "log_z_minus_3sd": pooled.log_z_minus_3sd,
      "log_z_plus_3sd": pooled.log_z_plus_3sd,
      "log_z_base": log_z0,
      "log_z_repeats": rep_log_z.tolist(),
      "log_z_repeat_range": float(rep_log_z.max() - rep_log_z.min()),
      "effective_sample_size": pooled.effective_sample_size,
      # Each repeat's log Z gives its own test figure; their spread is the estimate's.
      "log_likelihood_repeats": [test_ll + pooled.log_z - z for z in rep_log_z],
      "train_log_likelihood": train_ll,
      "binarization": binarization("binarize_dynamic", binarize_seed),
      "ais_seconds": ais_seconds,
  }
  if grids and ctx.writer is not None:
    k_s, k_c = jax.random.split(jax.random.fold_in(key, 1))
    side = ctx.config.train.get("sample_grid", 10)
    family, state = ctx.family, ctx.state
    x = jax.jit(family.sample, static_argnums=(2, 3))(state, k_s, side * side, 1000)
    paths = [ctx.writer.write_grid(ctx.step, "ais_samples", np.asarray(x), ncol=side)]
    frames = family.chain_grid(params, k_c, jax.numpy.asarray(test_v[:10]), 10, 100)
    frames = np.asarray(frames).transpose(1, 0, 2).reshape(100, *test_u8.shape[1:])
    paths.append(ctx.writer.write_grid(ctx.step, "ais_chains_from_test", frames, ncol=10))
    details["grids"] = [os.path.relpath(p, ctx.workdir) for p in paths if p]
  return {"log_likelihood": test_ll, "nll": -test_ll, "log_z": pooled.log_z,
          "log_z_repeat_std": float(rep_log_z.std(ddof=1)) if num_repeats > 1 else 0.0,
          "details": details}
