"""Fit every generative classifier on MNIST (or Fashion-MNIST): test metrics and sample grids.

  python experiments/generative_samples.py --dataset=mnist --workdir=runs/generative_mnist \
      --idx_dir=../shared/data/mnist

Each model is fitted in closed form on the whole training split, scored on the test split
(accuracy, log-loss, ECE: <workdir>/results.json) and asked for class-conditional draws from
its P(x | y): <workdir>/<model>.png has one row per class. Inputs per model: Gaussian NB, LDA
and QDA see pixels in [0, 1]; Bernoulli NB the same, thresholded at `binarize`; multinomial
NB the raw 0..255 intensities as counts; categorical NB the pixels cut into `levels` equal
bins. Without --idx_dir the data comes from TFDS (TFDS_DATA_DIR). With --shrinkage_grid,
LDA's and QDA's shrinkage is picked on held-out training images (validation accuracy in
results.json) from one set of streaming statistics.
"""

import importlib
import os
import time

import numpy as np
from absl import app, flags

flags.DEFINE_string("dataset", "mnist", "mnist or fashion_mnist.")
flags.DEFINE_string("idx_dir", None, "Raw IDX directory (e.g. ../shared/data/mnist); else TFDS.")
flags.DEFINE_string("workdir", "runs/generative_mnist", "Where the grids and results.json go.")
flags.DEFINE_alias("outdir", "workdir")  # the earlier name
flags.DEFINE_list("models", ["gaussian_nb", "bernoulli_nb", "multinomial_nb", "categorical_nb",
                             "lda", "qda"], "Modules of genjax.classical to fit.")
flags.DEFINE_integer("per_class", 10, "Samples per class in each grid.")
flags.DEFINE_integer("levels", 4, "Categorical NB: intensity bins per pixel.")
flags.DEFINE_float("lda_shrinkage", 1e-3, "LDA covariance shrinkage (genjax.classical.gda).")
flags.DEFINE_float("qda_shrinkage", 1e-2, "QDA covariance shrinkage (genjax.classical.gda).")
flags.DEFINE_list("shrinkage_grid", [], "LDA/QDA: pick the shrinkage from these by accuracy on "
                  "the last --validation_size training images (empty: use the flags above).")
flags.DEFINE_integer("validation_size", 10_000, "Held-out training images for --shrinkage_grid.")
flags.DEFINE_integer("max_train", 0, "Use only the first N training images (0: all).")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


def model_inputs(name: str, images_u8: np.ndarray, levels: int) -> np.ndarray:
  """The float32 (or int32 for categorical NB) rows [N, D] model `name` is fitted on."""
  flat = images_u8.reshape(len(images_u8), -1)
  if name == "multinomial_nb":
    return flat.astype(np.float32)
  if name == "categorical_nb":
    return (flat.astype(np.int32) * levels) // 256
  return flat.astype(np.float32) / 255.0


def to_image(name: str, x_NxD: np.ndarray, levels: int, shape: tuple) -> np.ndarray:
  """Samples back to [0, 1] images for display."""
  x = np.asarray(x_NxD, np.float32)
  if name == "multinomial_nb":
    x = x / np.maximum(x.max(axis=1, keepdims=True), 1.0)
  elif name == "categorical_nb":
    x = x / (levels - 1)
  return np.clip(x, 0.0, 1.0).reshape(len(x), *shape)


def hyperparameters(name: str) -> dict:
  """The flags' settings for the models that have them."""
  return {"lda": {"shrinkage": FLAGS.lda_shrinkage}, "qda": {"shrinkage": FLAGS.qda_shrinkage},
          "categorical_nb": {"num_categories": FLAGS.levels}}.get(name, {})


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp

  from genjax import writers as gl
  from genjax.data.images import load_arrays
  from genjax.metrics.classification import summary

  train = load_arrays(FLAGS.dataset, "train", idx_dir=FLAGS.idx_dir)
  test = load_arrays(FLAGS.dataset, "test", idx_dir=FLAGS.idx_dir)
  n = FLAGS.max_train or len(train)
  shape = train.images.shape[1:]
  num_classes = int(train.labels.max()) + 1
  y_grid = jnp.repeat(jnp.arange(num_classes), FLAGS.per_class)
  results = {"dataset": FLAGS.dataset, "num_train": n, "num_test": len(test), "models": {}}
  for i, name in enumerate(FLAGS.models):
    model = importlib.import_module(f"genjax.classical.{name}")
    x_tr = jnp.asarray(model_inputs(name, train.images[:n], FLAGS.levels))
    x_te = jnp.asarray(model_inputs(name, test.images, FLAGS.levels))
    hp = hyperparameters(name)
    y_tr = jnp.asarray(train.labels[:n])
    t = time.perf_counter()
    validation = {}
    if FLAGS.shrinkage_grid and name in ("lda", "qda"):
      # Streaming statistics: fit on all but the held-out rows, try every shrinkage on the
      # same statistics, then fold the held-out rows in and refit with the best.
      v = n - FLAGS.validation_size
      stats = model.update_stats(model.init_stats(x_tr.shape[1], num_classes), x_tr[:v],
                                 y_tr[:v])
      for s in FLAGS.shrinkage_grid:
        pred = model.predict(model.finalize(stats, shrinkage=float(s)), x_tr[v:])
        validation[s] = float(jnp.mean(pred == y_tr[v:]))
      hp = {"shrinkage": float(max(validation, key=validation.get))}
      stats = model.update_stats(stats, x_tr[v:], y_tr[v:])
      params = jax.block_until_ready(model.finalize(stats, **hp))
    else:
      params = jax.block_until_ready(model.fit(x_tr, y_tr, num_classes, **hp))
    fit_s = time.perf_counter() - t
    metrics = summary(model.log_proba(params, x_te), jnp.asarray(test.labels))
    x = model.sample(params, jax.random.fold_in(jax.random.key(FLAGS.seed), i), y_grid)
    path = os.path.join(FLAGS.workdir, f"{name}.png")
    gl.save_png(path, gl.image_grid(to_image(name, x, FLAGS.levels, shape), FLAGS.per_class))
    results["models"][name] = {**metrics, "hyperparameters": hp, "fit_seconds": fit_s,
                               "samples": path, "validation_accuracy": validation}
    print(f"{name:16s} accuracy {metrics['accuracy']:.4f}  log-loss {metrics['log_loss']:.3f}"
          f"  ece {metrics['ece']:.3f}  fit {fit_s:.1f}s  -> {path}", flush=True)
  gl.write_json(os.path.join(FLAGS.workdir, "results.json"), results)


if __name__ == "__main__":
  app.run(main)
