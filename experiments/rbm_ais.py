"""AIS evaluation of an RBM workdir: log Z with its spread over runs, test log-likelihood, grids.

  python experiments/rbm_ais.py --workdir=runs/rbm_budget [--num_runs=100 --num_repeats=5]

From the latest checkpoint (or --step): the base-rate model's visible biases are fitted to the
training images' pixel intensities (the on-probabilities of dynamically binarised pixels),
`num_repeats` independent AIS estimates of log Z are made from `num_runs` runs each along
Salakhutdinov & Murray's 14,500 temperatures (all runs in one batch), and the test set,
binarised once by Bernoulli draws with a fixed seed (as S&M 2008's stochastically binarised
MNIST), is scored as the mean log p(v) = -F(v) - log Z in nats (log Z pooled over every run).
Results go into <workdir>/results.json under "ais" (the rest of the file is kept; every
estimate made so far is listed under "ais_history"), and sample
grids (independent chains after 1,000 Gibbs sweeps; chains started at test images) into
<workdir>/samples/ais_*.png.
"""

import json
import os
import time

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "A training workdir of an RBM config.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("num_runs", None, "AIS runs per estimate (default: config.ais.num_runs).")
flags.DEFINE_integer("num_repeats", None, "Independent estimates (default: config.ais).")
flags.DEFINE_integer("num_betas", None, "Intermediate temperatures (default: config.ais).")
flags.DEFINE_integer("seed", 0, "Seed of the AIS runs and of the test set's binarisation.")
flags.DEFINE_integer("num_train_eval", 10_000, "Training images also scored (overfitting).")
flags.DEFINE_string("idx_dir", None, "Read MNIST from these IDX files instead of config.json's.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def binarize(images_u8, seed: int):
  """Flat float32 {0, 1} rows: Bernoulli(intensity) draws, fixed by `seed`."""
  import numpy as np
  x = images_u8.reshape(len(images_u8), -1).astype(np.float64) / 255.0
  return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


def restore(workdir: str, step: int | None):
  """(family, config, state) from the workdir; as genjax.train.restore_for_eval, but the
  template state starts its visible biases at zero (the checkpoint overwrites them), so
  restoring reads no data."""
  import ml_collections

  from genjax import train
  from genjax.checkpoint import Checkpointer
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  family = train.load_family(config.family)
  template = config.copy_and_resolve_references()
  template.model.visible_bias_init = "zero"
  state = family.create_state(train.RunKeys.from_seed(config.seed).init, template)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
  state = ckpt.restore(state, step)
  ckpt.close()
  return family, config, state


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  import jax
  import numpy as np

  from genjax import train, writers
  from genjax.structured import ais, rbm

  family, config, state = restore(FLAGS.workdir, FLAGS.step)
  if FLAGS.idx_dir is not None:
    config.data.idx_dir = FLAGS.idx_dir or None
  a = config.get("ais", {})
  num_runs = FLAGS.num_runs or a.get("num_runs", 100)
  num_repeats = FLAGS.num_repeats or a.get("num_repeats", 5)
  num_betas = FLAGS.num_betas or a.get("num_betas", 14_500)
  params = state.params
  step = int(state.step)

  train_u8 = train.load_split(config, "train").images
  test_u8 = train.load_split(config, "test").images
  pixel_p = train_u8.reshape(len(train_u8), -1).astype(np.float64).mean(0) / 255.0
  # Base-rate model: log-odds of each pixel's mean intensity, smoothed by one image on and off.
  n = len(train_u8)
  base_bias = np.log((pixel_p * n + 1) / ((1 - pixel_p) * n + 1)).astype(np.float32)
  test_v = binarize(test_u8, FLAGS.seed)
  train_v = binarize(train_u8[:FLAGS.num_train_eval], FLAGS.seed + 1)

  key = jax.random.key(FLAGS.seed)
  t0 = time.perf_counter()
  log_w, log_z0 = ais.ais_runs(params, base_bias, key, num_runs * num_repeats, num_betas)
  ais_seconds = time.perf_counter() - t0
  pooled = ais.log_mean_exp_interval(log_w, log_z0)
  repeats = [ais.log_mean_exp_interval(w, log_z0) for w in log_w.reshape(num_repeats, num_runs)]
  rep_log_z = np.array([r.log_z for r in repeats])
  test_ll = ais.mean_log_likelihood(params, test_v, pooled.log_z)
  train_ll = ais.mean_log_likelihood(params, train_v, pooled.log_z)
  result = {
      "step": step,
      "num_hidden": int(params.w.shape[1]),
      "num_betas": num_betas, "num_runs": num_runs, "num_repeats": num_repeats,
      "log_z": pooled.log_z,
      "log_z_minus_3sd": pooled.log_z_minus_3sd,
      "log_z_plus_3sd": pooled.log_z_plus_3sd,
      "log_z_base": log_z0,
      "log_z_repeats": rep_log_z.tolist(),
      "log_z_repeat_std": float(rep_log_z.std(ddof=1)) if num_repeats > 1 else 0.0,
      "log_z_repeat_range": float(rep_log_z.max() - rep_log_z.min()),
      "effective_sample_size": pooled.effective_sample_size,
      "test_log_likelihood": test_ll,
      # Each repeat's log Z gives its own test figure; their spread is the estimate's.
      "test_log_likelihood_repeats": [test_ll + pooled.log_z - z for z in rep_log_z],
      "train_log_likelihood": train_ll,
      "test_binarization": f"bernoulli(intensity), numpy seed {FLAGS.seed}",
      "ais_seconds": ais_seconds,
  }

  writer = writers.MetricWriter(FLAGS.workdir, tensorboard=False)
  k_s, k_c = jax.random.split(jax.random.fold_in(key, 1))
  side = config.train.sample_grid
  x = jax.jit(family.sample, static_argnums=(2, 3))(state, k_s, side * side, 1000)
  paths = [writer.write_grid(step, "ais_samples", np.asarray(x), ncol=side)]
  frames = rbm.chain_grid(params, k_c, jax.numpy.asarray(test_v[:10]), 10, 100)
  frames = np.asarray(frames).transpose(1, 0, 2).reshape(100, *config.data.image_shape)
  paths.append(writer.write_grid(step, "ais_chains_from_test", frames, ncol=10))
  writer.close()
  result["grids"] = [os.path.relpath(p, FLAGS.workdir) for p in paths]

  path = os.path.join(FLAGS.workdir, "results.json")
  results = {}
  if os.path.exists(path):
    with open(path) as f:
      results = json.load(f)
  # Earlier estimates (other temperatures or run counts) are kept beside the latest.
  history = results.get("ais_history") or ([results["ais"]] if "ais" in results else [])
  results["ais"] = result
  results["ais_history"] = [*history, result]
  writers.write_json(path, results)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  app.run(main)
