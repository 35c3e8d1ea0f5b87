"""Evaluate a workdir's checkpoint: test metrics, sample quality beside its floor, and grids.

  python experiments/evaluate.py --workdir=runs/dcgan_mnist [--step=N] [--num_samples=10000]

Sampling needs no dataset: the grids (samples, a latent interpolation, one row per class
for a conditional GAN, each also for the EMA generator where there is one) are written to
<workdir>/samples/eval_*.png whatever data is at hand. The test split adds the family's
eval metrics and, for MNIST and Fashion-MNIST, the domain-classifier metrics (FID, KID, IS,
precision/recall, density/coverage; genjax.sample_eval); the training split adds their
floor. Everything numeric goes to <workdir>/results.json.

A family that names an evaluation module (`EVAL_MODULE`: genjax.vae_eval for VAEs) gets its
outputs instead of the sample-quality metrics: for a VAE, reconstructions, prior samples,
latent interpolations, (z = 2) the latent scatter and manifold, the active units and the
importance-sampled test NLL with --nll_k samples (5000, as Burda et al.).
"""

import json
import os

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.DEFINE_integer("num_samples", 10_000, "Generated (and real) images per metric.")
flags.DEFINE_bool("metrics", True, "Compute the domain-classifier sample metrics.")
flags.DEFINE_string("idx_dir", None, "Read the data from these raw IDX files instead of what "
                    "config.json names (e.g. a run trained elsewhere); '' means TFDS.")
flags.DEFINE_integer("nll_k", 5000, "VAE: importance samples per test image for the test NLL "
                     "(0 skips it).")
flags.DEFINE_integer("nll_examples", -1, "VAE: test images in the NLL (-1: all).")
flags.DEFINE_integer("nll_batch", 20, "VAE: test images per NLL batch.")
flags.DEFINE_integer("nll_chunk", 1000, "VAE: samples per image held in memory at once.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def _load(config, split):
  """A split's arrays, or None (with a note) where the data is not at hand."""
  from genjax import train
  from genjax.data.images import DatasetNotFoundError
  try:
    return train.load_split(config, split)
  except (DatasetNotFoundError, FileNotFoundError) as e:
    print(f"no {split} split ({e}); skipping what needs it")
    return None


def write_grids(family, state, config, key, writer, step: int) -> list[str]:
  """Sample, interpolation and (conditional GAN) per-class grids; returns their paths."""
  import jax
  import numpy as np

  from genjax.data.images import postprocess

  def grid(name, images, ncol):
    x = np.asarray(jax.device_get(postprocess(images, config.data.preprocess)))
    return writer.write_grid(step, name, x, ncol=ncol)

  hp = getattr(state, "hparams", None)
  num_classes = getattr(hp, "num_classes", 0)
  emas = [False, True] if getattr(state, "generator_ema", None) is not None else [False]
  side = config.train.sample_grid
  paths = []
  for ema in emas:
    kwargs, suffix = ({"ema": True}, "_ema") if ema else ({}, "")
    paths.append(grid("eval_samples" + suffix, family.sample(state, key, side * side, **kwargs),
                      side))
    if hasattr(family, "interpolate"):
      paths.append(grid("eval_interpolation" + suffix,
                        family.interpolate(state, jax.random.fold_in(key, 1), 8, 10, **kwargs),
                        10))
    if num_classes:
      paths.append(grid("eval_classes" + suffix,
                        family.sample(state, jax.random.fold_in(key, 2), 10 * num_classes,
                                      **kwargs), 10))
  return paths


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  import jax

  from genjax import sample_eval, train, writers
  from genjax.metrics import domain

  family, config, state = train.restore_for_eval(FLAGS.workdir, FLAGS.step)
  if FLAGS.idx_dir is not None:
    config.data.idx_dir = FLAGS.idx_dir or None
  step = int(state.step)
  writer = writers.MetricWriter(FLAGS.workdir, tensorboard=False)
  key = train.RunKeys.from_seed(config.seed).eval
  results = {"step": step}
  if hasattr(family, "EVAL_MODULE"):
    return _family_evaluation(family, state, config, key, results)
  if hasattr(family, "sample"):
    for path in write_grids(family, state, config, key, writer, step):
      print(f"wrote {path}")
  test = _load(config, "test")
  if test is not None:
    results["test"] = train.evaluate(family, state, test, jax.random.fold_in(key, 1),
                                     config.data.preprocess)
  if (FLAGS.metrics and hasattr(family, "sample") and test is not None
      and config.data.name in domain.DATASETS):
    train_split = _load(config, "train")
    emas = (False, True) if getattr(state, "generator_ema", None) is not None else (False,)
    results["samples"] = sample_eval.evaluate_samples(
        family, state, config, jax.random.fold_in(key, 2), test.images,
        None if train_split is None else train_split.images, FLAGS.num_samples, emas)
  writers.write_json(os.path.join(FLAGS.workdir, "results.json"), results)
  writer.close()
  print(json.dumps(results, indent=2))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


def _family_evaluation(family, state, config, key, results: dict) -> None:
  """The family's own offline outputs (genjax.vae_eval.evaluate_offline for VAEs)."""
  import importlib

  import jax

  from genjax import train, writers
  module = importlib.import_module(family.EVAL_MODULE)
  test = _load(config, "test")
  if test is not None:
    results["test"] = train.evaluate(family, state, test, jax.random.fold_in(key, 1),
                                     config.data.preprocess)
  results[config.family] = module.evaluate_offline(
      state, config, FLAGS.workdir, jax.random.fold_in(key, 3), test, nll_k=FLAGS.nll_k,
      nll_examples=FLAGS.nll_examples, nll_batch=FLAGS.nll_batch, nll_chunk=FLAGS.nll_chunk)
  writers.write_json(os.path.join(FLAGS.workdir, "results.json"), results)
  print(json.dumps(results, indent=2))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  app.run(main)
