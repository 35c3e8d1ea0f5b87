"""Fit one classical classifier on one dataset and write its test metrics to results.json.

  python experiments/classify.py --model=logistic --dataset=mnist --workdir=runs/cls/logistic_mnist
  python experiments/classify.py --model=knn --dataset=mnist --hp=k=3 --workdir=runs/cls/knn3_mnist
  python experiments/classify.py --model=kernel_svm --dataset=mnist \
      --hp=num_features=4000,l2=2e-6,max_iter=300 --workdir=runs/cls/kernel_svm_mnist

Models are the names of genjax.classical.estimators.ESTIMATORS (logistic, linear_svm,
kernel_svm, knn, gaussian_nb, bernoulli_nb, multinomial_nb, categorical_nb, lda, qda);
datasets are mnist and fashion_mnist (TFDS's train and test splits, or raw IDX files with
--idx_dir) and the UCI sets breast_cancer, wine, iris and digits (a seeded stratified split,
--test_fraction of the rows held out). `--hp=name=value,...` sets hyper-parameters.

Preprocessing (`--preprocess=auto` picks per model and dataset, see `AUTO`; statistics come
from the training rows only):
- `unit`: images to [0, 1] (pixel / 255); tabular features min-max scaled to [0, 1];
- `standardize`: zero mean, unit variance per feature (constant features left at 0);
- `quantize`: integer levels 0..3 (images: pixel // 64; tabular: training quartiles), for
  categorical naive Bayes;
- `none`: raw values (pixels 0..255).
Images take `unit` for every model but categorical NB: pixels share one scale, and the
RBF kernels' and kNN's distances are those of the images. Tabular features have unrelated
scales, so the models that compare features (logistic, SVMs, kNN, LDA/QDA, Bernoulli NB's
threshold at 0) take `standardize`; Gaussian NB is scale-free (`none`); multinomial NB needs
non-negative features (`unit`).

results.json holds accuracy, log-loss (nats) and expected calibration error
(genjax.metrics.classification) on the test rows, fit and predict seconds (wall clock,
compilation included), the sizes, the hyper-parameters and the preprocessing.
"""

import ast
import os
import sys
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IMAGES = ("mnist", "fashion_mnist")
PREPROCESS = ("auto", "none", "unit", "standardize", "quantize")
AUTO = {  # model -> (images, tabular)
    "logistic": ("unit", "standardize"),
    "linear_svm": ("unit", "standardize"),
    "kernel_svm": ("unit", "standardize"),
    "knn": ("unit", "standardize"),
    "lda": ("unit", "standardize"),
    "qda": ("unit", "standardize"),
    "gaussian_nb": ("unit", "none"),
    "bernoulli_nb": ("unit", "standardize"),
    "multinomial_nb": ("unit", "unit"),
    "categorical_nb": ("quantize", "quantize"),
}

flags.DEFINE_string("model", "logistic", "A model of genjax.classical.estimators.ESTIMATORS.")
flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, breast_cancer, wine, iris, digits.")
flags.DEFINE_string("workdir", None, "Where results.json goes.")
flags.DEFINE_string("hp", "", "Hyper-parameters as name=value,name=value (Python literals).")
flags.DEFINE_enum("preprocess", "auto", PREPROCESS, "Feature preprocessing (see the docstring).")
flags.DEFINE_integer("train_size", 0, "Use this many training rows (a seeded subset); 0: all.")
flags.DEFINE_float("test_fraction", 0.25, "Held-out share of a UCI set.")
flags.DEFINE_integer("seed", 0, "Seed of the UCI split and of the training subset.")
flags.DEFINE_string("idx_dir", None, "Read mnist/fashion_mnist from raw IDX files here.")
FLAGS = flags.FLAGS


def parse_hyperparameters(text: str) -> dict:
  """'l2=1e-4,kernel=nystroem' -> {"l2": 1e-4, "kernel": "nystroem"} (literals, else strings)."""
  out = {}
  for item in filter(None, (s.strip() for s in text.split(","))):
    name, sep, value = item.partition("=")
    if not sep or not name:
      raise ValueError(f"--hp wants name=value pairs separated by commas, got {item!r}")
    try:
      out[name.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      out[name.strip()] = value.strip()
  return out


def load_dataset(name: str, test_fraction: float, seed: int, idx_dir: str | None = None):
  """(x_train, y_train, x_test, y_test, is_image): float32 rows and int32 labels."""
  if name in IMAGES:
    from genjax.data import images
    parts = [images.load_arrays(name, split, idx_dir=idx_dir) for split in ("train", "test")]
    x_tr, x_te = (p.images.reshape(len(p.images), -1).astype(np.float32) for p in parts)
    return x_tr, parts[0].labels, x_te, parts[1].labels, True
  from genjax.data import tabular
  data = tabular.load(name)
  train, test = tabular.train_test_split(data, len(data) - round(test_fraction * len(data)),
                                         seed)
  return train.x, train.y, test.x, test.y, False


def preprocess(x_tr: np.ndarray, x_te: np.ndarray, mode: str,
               is_image: bool) -> tuple[np.ndarray, np.ndarray]:
  """Apply a preprocessing mode with statistics from the training rows (see the docstring)."""
  if mode == "none":
    return x_tr, x_te
  if mode == "unit":
    if is_image:
      return x_tr / 255.0, x_te / 255.0
    lo, hi = x_tr.min(0), x_tr.max(0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return (x_tr - lo) / scale, np.clip((x_te - lo) / scale, 0.0, None)
  if mode == "standardize":
    mu, sd = x_tr.mean(0), x_tr.std(0)
    sd = np.where(sd > 1e-6 * max(float(np.abs(x_tr).max()), 1.0), sd, 1.0)
    return (x_tr - mu) / sd, (x_te - mu) / sd
  if mode == "quantize":
    if is_image:
      return np.floor(x_tr / 64.0), np.floor(x_te / 64.0)
    edges = np.quantile(x_tr, [0.25, 0.5, 0.75], axis=0)  # [3, D]
    level = lambda x: (x[:, None, :] > edges[None]).sum(1).astype(np.float32)
    return level(x_tr), level(x_te)
  raise ValueError(f"unknown preprocessing {mode!r}; expected one of {PREPROCESS}")


def run(model: str, dataset: str, workdir: str, hyperparameters: dict, preprocessing: str = "auto",
        train_size: int = 0, test_fraction: float = 0.25, seed: int = 0,
        idx_dir: str | None = None) -> dict:
  """Fit `model` on `dataset`, evaluate on its test rows, write workdir/results.json."""
  import jax

  from genjax.classical import estimators
  from genjax.metrics import classification
  from genjax.writers import write_json

  clf = estimators.make(model, **hyperparameters)  # unknown names fail before any data loads
  x_tr, y_tr, x_te, y_te, is_image = load_dataset(dataset, test_fraction, seed, idx_dir)
  if train_size:
    if not 0 < train_size <= len(y_tr):
      raise ValueError(f"--train_size must be in 1..{len(y_tr)}, got {train_size}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(y_tr))[:train_size])
    x_tr, y_tr = x_tr[keep], y_tr[keep]
  mode = AUTO[model][0 if is_image else 1] if preprocessing == "auto" else preprocessing
  x_tr, x_te = preprocess(x_tr, x_te, mode, is_image)
  x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)

  t = time.perf_counter()
  clf.fit(x_tr, y_tr)
  fit_seconds = time.perf_counter() - t
  t = time.perf_counter()
  log_probs = jax.block_until_ready(clf.predict_log_proba(x_te))
  predict_seconds = time.perf_counter() - t
  # classes_ are the sorted training labels; put the columns on the label axis 0..C-1.
  num_classes = int(max(y_tr.max(), y_te.max())) + 1
  full = np.full((len(y_te), num_classes), -np.inf, np.float32)
  full[:, clf.classes_] = log_probs
  results = {
      "model": model, "dataset": dataset, "preprocess": mode,
      "hyperparameters": {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                          for k, v in clf.get_params().items()},
      "num_train": int(len(y_tr)), "num_test": int(len(y_te)),
      **classification.summary(full, y_te),
      "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
      "backend": jax.default_backend(),
  }
  params = clf.params_
  for name in ("num_iterations", "grad_norm", "loss", "temperature"):
    value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
    if value is not None and np.ndim(value) == 0:
      results[name] = value.item() if np.isfinite(value) else str(float(value))
  write_json(os.path.join(workdir, "results.json"), results)
  return results


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  results = run(FLAGS.model, FLAGS.dataset, FLAGS.workdir, parse_hyperparameters(FLAGS.hp),
                FLAGS.preprocess, FLAGS.train_size, FLAGS.test_fraction, FLAGS.seed,
                FLAGS.idx_dir)
  print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in results.items() if k != "hyperparameters"))


if __name__ == "__main__":
  app.run(main)
