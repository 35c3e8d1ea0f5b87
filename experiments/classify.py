"""Fit one classical classifier on one dataset: a thin command line over the classical fit family.

  python experiments/classify.py --model=logistic --dataset=mnist --workdir=runs/cls/logistic_mnist
  python experiments/classify.py --model=knn --dataset=mnist --config.model.hp.k=3 \
      --workdir=runs/cls/knn3_mnist
  python experiments/classify.py --model=kernel_svm --dataset=mnist \
      --config.model.hp.num_features=4000 --config.model.hp.l2=2e-6 \
      --config.model.hp.max_iter=300 --workdir=runs/cls/kernel_svm_mnist

Models are the names of genjax.classical.estimators.ESTIMATORS (logistic, linear_svm,
kernel_svm, knn, gaussian_nb, bernoulli_nb, multinomial_nb, categorical_nb, lda, qda);
datasets are mnist and fashion_mnist (TFDS's train and test splits, or raw IDX files with
--config.data.idx_dir) and the UCI sets breast_cancer, wine, iris and digits (a seeded
stratified split, --config.data.test_fraction of the rows held out). `--config.FIELD=VALUE`
sets any field of the config: `--config.model.hp.NAME=VALUE` a hyper-parameter,
`--config.data.train_size=N` a seeded subset of N training rows.

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
`genjax.families.classical.experiment_config` builds (the same as experiments/configs/<model>.py,
with the overrides on the module's defaults instead of the reported figures' settings), so the
workdir is the generic loop's: config.json, checkpoints/ (the fitted params), fit.json,
metrics.jsonl (rows fitted and the solver's report) and results.json, with accuracy, log-loss
(nats) and expected calibration error under results["test"], `fit_seconds` and
results["test"]["predict_seconds"] (wall clock, compilation included). Running again on the
same workdir restores the fitted params instead of refitting.
"""

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402

PREPROCESS = ("auto", "none", "unit", "standardize", "quantize")
# The flags that mirrored config fields, and the overrides that replace them.
RENAMED = {"hp": "--config.model.hp.NAME=VALUE (e.g. --config.model.hp.k=3)",
           "train_size": "--config.data.train_size", "test_fraction": "--config.data.test_fraction",
           "idx_dir": "--config.data.idx_dir"}

flags.DEFINE_string("model", "logistic", "A model of genjax.classical.estimators.ESTIMATORS.")
flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, breast_cancer, wine, iris, digits.")
flags.DEFINE_string("workdir", None, "The run's workdir (results.json, checkpoints, ...).")
flags.DEFINE_enum("preprocess", "auto", PREPROCESS, "Feature preprocessing (see the docstring).")
flags.DEFINE_integer("seed", 0, "Seed of the UCI split and of the training subset.")
FLAGS = flags.FLAGS


def build_config(model: str, dataset: str, hyperparameters: dict, preprocessing: str = "auto",
                 train_size: int = 0, test_fraction: float = 0.25, seed: int = 0,
                 idx_dir: str | None = None, overrides: dict | None = None):
  """The classical family's config of one run, `overrides` ({dotted field: value text}) set
  last; unknown models, hyper-parameters, fields and preprocessing modes fail here, before any
  data is read."""
  from genjax import studies
  from genjax.data import splits
  from genjax.families import classical
  c = classical.experiment_config(dataset, name=model, hp=hyperparameters,
                                 preprocess=preprocessing)
  c.seed = seed  # also seeds the training subset
  c.data.train_size = train_size
  if dataset in splits.TABULAR:
    c.data.test_fraction = test_fraction
    c.data.split_seed = seed
  elif idx_dir:
    c.data.idx_dir = idx_dir
  c.unlock()
  studies.override(c, overrides or {}, f"the classical config of {model}")
  return c


def run(model: str, dataset: str, workdir: str, hyperparameters: dict, preprocessing: str = "auto",
        train_size: int = 0, test_fraction: float = 0.25, seed: int = 0,
        idx_dir: str | None = None, overrides: dict | None = None) -> dict:
  """Fit `model` on `dataset` through the generic loop, evaluate on its test rows; returns
  results.json's contents."""
  from genjax import train
  config = build_config(model, dataset, hyperparameters, preprocessing, train_size,
                        test_fraction, seed, idx_dir, overrides)
  config.train.progress = False
  return train.train_and_evaluate(config, workdir)


def main(argv, overrides):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  results = run(FLAGS.model, FLAGS.dataset, FLAGS.workdir, {}, FLAGS.preprocess,
                seed=FLAGS.seed, overrides=overrides)
  flat = {"model": FLAGS.model, "dataset": FLAGS.dataset, **results.get("test", {}),
          "fit_seconds": results["fit_seconds"], "backend": results["backend"]}
  print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in flat.items()))


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED, config_overrides=True)
