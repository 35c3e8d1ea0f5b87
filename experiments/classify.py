"""Fit one classical classifier on one dataset: a thin command line over the classical fit family.

  python experiments/classify.py --model=logistic --dataset=mnist --workdir=runs/cls/logistic_mnist
  python experiments/classify.py --model=knn --dataset=mnist --hp=k=3 --workdir=runs/cls/knn3_mnist
  python experiments/classify.py --model=kernel_svm --dataset=mnist \
      --hp=num_features=4000,l2=2e-6,max_iter=300 --workdir=runs/cls/kernel_svm_mnist

Models are the names of genjax.classical.estimators.ESTIMATORS (logistic, linear_svm,
kernel_svm, knn, gaussian_nb, bernoulli_nb, multinomial_nb, categorical_nb, lda, qda);
datasets are mnist and fashion_mnist (TFDS's train and test splits, or raw IDX files with
--idx_dir) and the UCI sets breast_cancer, wine, iris and digits (a seeded stratified split,
--test_fraction of the rows held out). `--hp=name=value,...` sets hyper-parameters.

Preprocessing (`--preprocess=auto` picks per model and dataset, see
genjax.families.classical.PREPROCESS; statistics come from the training rows only), the config's
`data.preprocess` (genjax.data.images.preprocess, genjax.data.splits.scale_features):
- `unit`: images to [0, 1] (pixel / 255); tabular features min-max scaled to [0, 1];
- `standardize`: zero mean, unit variance per feature (constant features left at 0; UCI sets
  only);
- `quantize`: integer levels 0..3 (images: pixel // 64; tabular: training quartiles), for
  categorical naive Bayes;
- `none`: raw values (pixels 0..255: multinomial naive Bayes' counts on images).

The run is `genjax.train.train_and_evaluate` on the config that
`genjax.families.classical.classical_config` builds (the same as experiments/configs/<model>.py,
with `--hp` on the module's defaults instead of the reported figures' settings), so the workdir
is the generic loop's: config.json, checkpoints/ (the fitted params), fit.json, metrics.jsonl
(rows fitted and the solver's report) and results.json, with accuracy, log-loss (nats) and
expected calibration error under results["test"], `fit_seconds` and
results["test"]["predict_seconds"] (wall clock, compilation included). Running again on the
same workdir restores the fitted params instead of refitting.
"""

import ast

from absl import app, flags

PREPROCESS = ("auto", "none", "unit", "standardize", "quantize")

flags.DEFINE_string("model", "logistic", "A model of genjax.classical.estimators.ESTIMATORS.")
flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, breast_cancer, wine, iris, digits.")
flags.DEFINE_string("workdir", None, "The run's workdir (results.json, checkpoints, ...).")
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


def build_config(model: str, dataset: str, hyperparameters: dict, preprocessing: str = "auto",
                 train_size: int = 0, test_fraction: float = 0.25, seed: int = 0,
                 idx_dir: str | None = None):
  """The classical family's config of one run; unknown models, hyper-parameters and
  preprocessing modes fail here, before any data is read."""
  from genjax.data import splits
  from genjax.families import classical
  c = classical.classical_config(model, dataset, hyperparameters, preprocess=preprocessing)
  c.seed = seed  # also seeds the training subset
  c.data.train_size = train_size
  if dataset in splits.TABULAR:
    c.data.test_fraction = test_fraction
    c.data.split_seed = seed
  elif idx_dir:
    c.data.idx_dir = idx_dir
  return c


def run(model: str, dataset: str, workdir: str, hyperparameters: dict, preprocessing: str = "auto",
        train_size: int = 0, test_fraction: float = 0.25, seed: int = 0,
        idx_dir: str | None = None) -> dict:
  """Fit `model` on `dataset` through the generic loop, evaluate on its test rows; returns
  results.json's contents."""
  from genjax import train
  config = build_config(model, dataset, hyperparameters, preprocessing, train_size,
                        test_fraction, seed, idx_dir)
  config.train.progress = False
  return train.train_and_evaluate(config, workdir)


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  results = run(FLAGS.model, FLAGS.dataset, FLAGS.workdir, parse_hyperparameters(FLAGS.hp),
                FLAGS.preprocess, FLAGS.train_size, FLAGS.test_fraction, FLAGS.seed,
                FLAGS.idx_dir)
  flat = {"model": FLAGS.model, "dataset": FLAGS.dataset, **results.get("test", {}),
          "fit_seconds": results["fit_seconds"], "backend": results["backend"]}
  print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in flat.items()))


if __name__ == "__main__":
  app.run(main)
