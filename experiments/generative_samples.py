"""Fit every generative classifier on MNIST (or Fashion-MNIST): test metrics and sample grids.

  python experiments/generative_samples.py --dataset=mnist --workdir=runs/generative_mnist \
      --config.data.idx_dir=../shared/data/mnist

Each model is its config in experiments/configs (<model>.py:<dataset>) fitted by the classical
fit family through the generic loop, in <workdir>/<model>/ (a finished workdir is read back,
genjax.studies.read_or_train): fitted in closed form on the whole training split, scored on the
test split (accuracy, log-loss, ECE: <workdir>/results.json) and asked for class-conditional
draws from its P(x | y): <workdir>/<model>.png has one row per class. Inputs are the configs'
(genjax.families.classical.PREPROCESS): Gaussian NB, Bernoulli NB, LDA and QDA see pixels in
[0, 1]; multinomial NB the raw 0..255 intensities as counts; categorical NB 4 grey levels.

`--config.FIELD=VALUE` overrides a field of every model's config (`--config.data.idx_dir`: raw
IDX files instead of TFDS; `--config.data.train_size=N`: a seeded subset of N training images);
`--models=lda@model.hp.shrinkage=0.1` overrides one model's. With --shrinkage_grid, LDA's and
QDA's shrinkage is picked by accuracy on the last --validation_size training images, each
value fitted in <workdir>/select/<model>_shrinkage<value>/ (validation accuracies in
results.json), then the model is fitted on the whole training split with the best.
"""

import copy
import os

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
MODELS = ("gaussian_nb", "bernoulli_nb", "multinomial_nb", "categorical_nb", "lda", "qda")
SHRUNK = ("lda", "qda")  # the models with a covariance shrinkage to select
IMAGE_SETS = ("mnist", "fashion_mnist")

flags.DEFINE_string("dataset", "mnist", "mnist or fashion_mnist.")
flags.DEFINE_string("workdir", "runs/generative_mnist",
                    "Where each model's workdir, the grids and results.json go.")
flags.DEFINE_list("models", list(MODELS), "Models, NAME or NAME@field=value,... (a bare field "
                  f"is model.FIELD), of {', '.join(MODELS)}.")
flags.DEFINE_integer("per_class", 10, "Samples per class in each grid.")
flags.DEFINE_list("shrinkage_grid", [], "LDA/QDA: pick the shrinkage from these by accuracy on "
                  "the last --validation_size training images (empty: the configs').")
flags.DEFINE_integer("validation_size", 10_000, "Held-out training images for --shrinkage_grid.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS

# The flags that mirrored config fields, and the overrides that replace them.
RENAMED = {"outdir": "--workdir", "idx_dir": "--config.data.idx_dir",
           "max_train": "--config.data.train_size (a seeded subset)",
           "lda_shrinkage": "--models=lda@model.hp.shrinkage=VALUE",
           "qda_shrinkage": "--models=qda@model.hp.shrinkage=VALUE",
           "levels": "the categorical_nb config's 4 grey levels (data.preprocess=quantize)"}


def model_configs(dataset: str, models: list[str], overrides: dict) -> dict:
  """{model: its config on `dataset`}, `overrides` ({dotted field: value text}) set on each and
  a model's own (`NAME@field=value,...`) after them. Raises ValueError for an unknown model,
  a model named twice, or an unknown field, before anything is fitted."""
  from genjax import studies
  if dataset not in IMAGE_SETS:
    raise ValueError(f"--dataset must be one of {IMAGE_SETS}, got {dataset!r}")
  out = {}
  for spec in studies.join_models(models):
    name, own = studies.parse_model(spec)
    if name not in MODELS:
      raise ValueError(f"--models: unknown model {name!r}; expected some of {MODELS}")
    if name in out:
      raise ValueError(f"--models names {name} twice")
    out[name] = studies.load_config(os.path.join(CONFIG_DIR, f"{name}.py:{dataset}"),
                                    {**overrides, **own})
  return out


def select_shrinkage(name: str, config, grid: list[str], validation_size: int,
                     workdir: str) -> tuple[float, dict]:
  """(the shrinkage of `grid` with the best validation accuracy, {value: accuracy}): each
  value fitted on the training split without its last `validation_size` images, in its own
  workdir under `workdir`/select (read back when finished)."""
  from genjax import studies
  from genjax.families import classical
  accuracy = {}
  for value in grid:
    c = copy.deepcopy(config)
    c.data.validation_size = validation_size
    c.model.hp.shrinkage = float(value)
    # Scored on the held-out images besides the test split (whose figures read_or_train
    # expects of a finished workdir); the classical configs leave evals to the family.
    c.evals = {**classical.DEFAULT_EVALS,
               "validation": {"type": "classification", "split": "validation"}}
    results = studies.read_or_train(c, os.path.join(workdir, "select",
                                                    f"{name}_shrinkage{value}"))
    accuracy[value] = results["validation"]["accuracy"]
  return float(max(accuracy, key=accuracy.get)), accuracy


def to_image(preprocess: str, x_NxD: np.ndarray, levels: int | None,
             shape: tuple) -> np.ndarray:
  """Samples of a model fitted on `preprocess`'d pixels back to [0, 1] images for display:
  counts scaled by each sample's largest, grey levels by the top level."""
  x = np.asarray(x_NxD, np.float32)
  if preprocess == "none":
    x = x / np.maximum(x.max(axis=1, keepdims=True), 1.0)
  elif preprocess == "quantize":
    x = x / (levels - 1)
  return np.clip(x, 0.0, 1.0).reshape(len(x), *shape)


def run(dataset: str, workdir: str, models: list[str], overrides: dict | None = None,
        per_class: int = 10, shrinkage_grid: list[str] = (), validation_size: int = 10_000,
        seed: int = 0) -> dict:
  """Fit (or read back) each model, draw `per_class` samples of every class into
  <workdir>/<model>.png; returns results.json's contents ({"dataset", "models": {model:
  {accuracy, log_loss, ece, hyperparameters, fit_seconds, samples, workdir,
  validation_accuracy}}})."""
  import jax
  import jax.numpy as jnp

  from genjax import studies, train
  from genjax import writers as gl
  from genjax.families import classical

  configs = model_configs(dataset, models, overrides or {})
  results = {"dataset": dataset, "models": {}}
  for i, (name, config) in enumerate(configs.items()):
    validation = {}
    if shrinkage_grid and name in SHRUNK:
      best, validation = select_shrinkage(name, config, shrinkage_grid, validation_size,
                                          workdir)
      config.model.hp.shrinkage = best
    model_dir = os.path.join(workdir, name)
    scores = studies.read_or_train(config, model_dir)
    _, _, state = train.restore_for_eval(model_dir)
    hp = dict(state.hyperparameters)
    y_grid = jnp.repeat(jnp.arange(state.num_classes), per_class)
    x = classical.module(name).sample(state.params, jax.random.fold_in(jax.random.key(seed), i),
                                      y_grid)
    images = to_image(config.data.preprocess, x, hp.get("num_categories"),
                      tuple(config.data.image_shape))
    path = os.path.join(workdir, f"{name}.png")
    gl.save_png(path, gl.image_grid(images, per_class))
    test = scores["test"]
    results["models"][name] = {
        **{k: test[k] for k in ("accuracy", "log_loss", "ece")}, "hyperparameters": hp,
        "fit_seconds": scores["fit_seconds"], "samples": path, "workdir": model_dir,
        "validation_accuracy": validation}
    print(f"{name:16s} accuracy {test['accuracy']:.4f}  log-loss {test['log_loss']:.3f}"
          f"  ece {test['ece']:.3f}  fit {scores['fit_seconds']:.1f}s  -> {path}", flush=True)
  gl.write_json(os.path.join(workdir, "results.json"), results)
  return results


def main(argv, overrides):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  run(FLAGS.dataset, FLAGS.workdir, FLAGS.models, overrides, FLAGS.per_class,
      FLAGS.shrinkage_grid, FLAGS.validation_size, FLAGS.seed)


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED, config_overrides=True)
