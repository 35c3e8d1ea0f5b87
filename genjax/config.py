"""Experiment configs: loading them (`path.py[:arg]`) and the sections they are built from.

Every config file in experiments/configs is written the same way: a docstring, the constants
other code reads (a classifier's `CLASSIFIER` row, ...), and

  def get_config(arg=None):
    return <family>.experiment_config(arg, <settings>)

`<family>` is the module of genjax/families that trains it, and `experiment_config` is that
family's one config builder: it parses `arg` (the text after the colon of
`--config=path.py:ARG`: `smoke`, a dataset, a number of labels, a variant, as the family's
builder documents), builds the whole config from the sections below (step_config or
fit_config; image_data or dataset; few_labels; train_schedule; apply_variant for `smoke`) and
returns it with the argument applied. The keyword settings are the numbers that make the
config file's experiment (a model section, a learning rate, epochs); a paper's preset of them is
a dict of those keywords (genjax.families.vae.burda_settings), not a second builder.
tests/test_config_idiom.py checks every config file against this.
"""

import importlib.util
import os

import ml_collections


def load(spec: str) -> ml_collections.ConfigDict:
  """The config of `path/to/config.py[:arg]`, as `--config=` would give it (locked)."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no config file {path}")
  module_spec = importlib.util.spec_from_file_location("genjax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  config.lock()
  return config


# Building blocks of the configs in experiments/configs: every config has the same
# data / optim / train sections, so that command-line overrides read the same everywhere.


def image_data(name: str, preprocess: str, batch_size: int, image_shape=(28, 28, 1),
               validation_size: int = 0) -> ml_collections.ConfigDict:
  """The `data` section: a TFDS image dataset (or raw IDX files) and its preprocessing."""
  placeholder = ml_collections.config_dict.placeholder
  return ml_collections.ConfigDict({
      "name": name,
      "image_shape": tuple(image_shape),
      "preprocess": preprocess,  # unit | symmetric | binarize_dynamic | binarize_fixed
      "batch_size": batch_size,
      "validation_size": validation_size,
      "in_memory": True,  # hold the split on the device; False streams it through tf.data
      "data_dir": placeholder(str),
      "download": placeholder(bool),
      "idx_dir": placeholder(str),  # raw IDX files instead of TFDS (genjax.data.idx)
      # Few labels (genjax.data.labelled; see few_labels): > 0 keeps that many balanced labels.
      "num_labels": -1,
      "label_seed": placeholder(int),  # None: config.seed
      "semi_supervised": False,
  })


def few_labels(data: ml_collections.ConfigDict, num_labels: int, *, semi_supervised: bool,
               labelled_batch_size: int | None = None,
               label_seed: int | None = None) -> ml_collections.ConfigDict:
  """`data` with the few-labels fields (genjax.data.labelled): `num_labels` balanced labelled
  training examples (<= 0: all) drawn by `label_seed` (None: config.seed); semi-supervised runs
  also draw unlabelled batches of the whole split, with labelled batches of
  `labelled_batch_size` (None: data.batch_size)."""
  data.num_labels = num_labels
  data.label_seed = ml_collections.config_dict.placeholder(int)
  if label_seed is not None:
    data.label_seed = label_seed
  data.semi_supervised = semi_supervised
  data.labelled_batch_size = labelled_batch_size or data.batch_size
  return data


def adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999) -> ml_collections.ConfigDict:
  """The `optim` section for Adam."""
  return ml_collections.ConfigDict({"learning_rate": learning_rate, "b1": b1, "b2": b2})


def train_schedule(num_epochs: int, *, log_every: int = 100, checkpoint_every: int = 5000,
                   sample_every: int = 500, sample_grid: int = 5) -> ml_collections.ConfigDict:
  """The `train` section: length, logging, checkpoints and sample grids."""
  return ml_collections.ConfigDict({
      "num_epochs": num_epochs,
      "num_steps": -1,  # > 0 overrides num_epochs
      "log_every": log_every,
      "checkpoint_every": checkpoint_every,
      "checkpoint_every_seconds": 300.0,  # also checkpoint when this long has passed (0: never)
      "keep_checkpoints": 3,
      "sample_every": sample_every,
      "sample_grid": sample_grid,
      "tensorboard": True,
      "progress": True,
      # Loop steps per compiled call (lax.fori_loop): > 1 saves the host's dispatch per step
      # for small models; logs, checkpoints and results are those of 1 (genjax.train).
      "steps_per_dispatch": 1,
  })


def apply_variant(c: ml_collections.ConfigDict, arg: str | None,
                  smoke_steps: int = 40) -> ml_collections.ConfigDict:
  """`arg` 'smoke' shortens a run to `smoke_steps` steps (seconds on a CPU); None keeps it."""
  if arg == "smoke":
    c.train.num_epochs = -1
    c.train.num_steps = smoke_steps
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.train.sample_every = 20
    set_smoke_evals(c)
  elif arg:
    raise ValueError(f"unknown config variant {arg!r}; expected 'smoke' or nothing")
  return c


def set_smoke_evals(c: ml_collections.ConfigDict) -> None:
  """`c.evals`: its family's evaluators with a smoke run's budget (genjax.evals.SMOKE_OPTIONS:
  the first 1,000 examples for the metrics and classification scores, 200 samples for sample
  quality, a k = 8 NLL of 40 images, a short AIS)."""
  from genjax import evals
  from genjax import family as family_lib
  c.evals = evals.smoke_evals(c, family_lib.load(c.family))


def parse_dataset_arg(arg: str | None, default: str,
                      choices: tuple[str, ...] | None = None) -> tuple[str, bool]:
  """(dataset, smoke) from a config argument `DATASET`, `smoke` or `DATASET,smoke` (None: the
  default dataset). `choices` limits the datasets (default: every known one)."""
  from genjax.data import splits
  choices = choices or splits.known_datasets()
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  datasets = [p for p in parts if p != "smoke"]
  if len(datasets) > 1 or parts.count("smoke") > 1 or any(d not in choices for d in datasets):
    raise ValueError(f"unknown config argument {arg!r}; expected a dataset from {choices}, "
                     "optionally followed by ',smoke'")
  return (datasets[0] if datasets else default), "smoke" in parts


def dataset(name: str, *, batch_size: int = 128, preprocess: str | None = None,
            validation_size: int = 0) -> ml_collections.ConfigDict:
  """The `data` section for any dataset genjax.data.splits reads: an image set (pixels in
  [0, 1] unless `preprocess` says otherwise), a UCI set (standardised with the training rows'
  statistics unless told otherwise; a seeded 25 % test part) or CoNLL-2000."""
  from genjax.data import splits
  if name in splits.TABULAR:
    placeholder = ml_collections.config_dict.placeholder
    return ml_collections.ConfigDict({
        "name": name, "preprocess": preprocess or "standardize", "batch_size": batch_size,
        "validation_size": validation_size, "test_fraction": 0.25, "split_seed": 0,
        "in_memory": True, "data_dir": placeholder(str)})
  if name in splits.SEQUENCES:
    placeholder = ml_collections.config_dict.placeholder
    return ml_collections.ConfigDict({
        "name": name, "batch_size": batch_size, "validation_size": validation_size,
        "data_dir": placeholder(str)})  # the CoNLL-2000 files (default ../shared/data/conll2000)
  return image_data(name, preprocess or "unit", batch_size, validation_size=validation_size)


def fit_config(family: str, data: ml_collections.ConfigDict,
               model: dict | None = None) -> ml_collections.ConfigDict:
  """A fit family's config: the family, a seed, the data, and the model's hyper-parameters."""
  c = ml_collections.ConfigDict()
  c.family = family
  c.seed = 0
  c.data = data
  c.model = ml_collections.ConfigDict(model or {})
  c.train = ml_collections.ConfigDict({"progress": True})  # iterative fits may show progress
  return c


def step_config(family: str, data: ml_collections.ConfigDict, model, optim, train, *,
                population: bool = True) -> ml_collections.ConfigDict:
  """A step family's config: the family, a seed, the data parallelism, a population, and the
  data, model (a ConfigDict or a dict), optim and train sections, in this order (config.json
  and --config overrides read the same for every family). `population=False` leaves the field
  out (the semi-supervised VAE's configs, recorded without one; absent means 1)."""
  c = ml_collections.ConfigDict()
  c.family = family
  c.seed = 0
  c.parallel = "auto"  # auto | none | pmap | shard_map
  if population:
    c.population = 1  # > 1: members with seeds seed, seed+1, ... as one program
  c.data = data
  c.model = model
  c.optim = optim
  c.train = train
  return c
