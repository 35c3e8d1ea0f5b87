"""Classical classifiers as one fit family: every model of genjax.classical is a config.

`config.model.name` names a functional core of genjax.classical by its name in
genjax.classical.estimators.ESTIMATORS (logistic, linear_svm, kernel_svm, knn, gaussian_nb,
bernoulli_nb, multinomial_nb, categorical_nb, lda, qda); `config.model.hp` holds its
hyper-parameters: the module's HYPERPARAMETERS updated by the estimator's DEFAULTS (kernel_svm is
svm with kernel="nystroem"), then by the config. An unknown name is refused with the known ones.

`fit` is the core's `fit(x_NxD, y_N, num_classes, **hp)` in one call over the training split;
`log_proba` the core's on a batch. The features are the split's model inputs as rows: a UCI
split's `x`, an image split's pixels flattened, as `data.preprocess` gives them (`unit`: [0, 1];
`none`: 0..255; `quantize`: levels 0..3). Which preprocessing a model gets is the config's choice
(`PREPROCESS`, applied by `experiment_config`), not the family's. `data.train_size > 0` fits on a
seeded subset of that many training rows (`np.random.default_rng(config.seed)`, as
experiments/classify.py's --train_size drew it); the smoke configs use it.

Bernoulli and Gaussian naive Bayes and LDA (genjax.classical.hybrid.MODELS) have
`model.joint_weight` (default 1.0) and `model.max_iter`: the fit maximises joint_weight *
log p(x, y) + (1 - joint_weight) * log p(y | x) over the same parameters (1: the core's closed
form; below 1: L-BFGS from it, at most max_iter iterations). A weight outside [0, 1], or one on
a model without a joint likelihood, fails in create_state, before anything compiles.

The state holds the core's fitted params (dicts of arrays, or flax struct dataclasses such as
SVMParams and KNNParams) and the model's settings as static fields, rebuilt from the config;
`create_state` gives zeros of the fitted shapes (`jax.eval_shape` of the core's fit on the
training split's shapes), so that a checkpoint restores without refitting.
"""

import dataclasses
import functools
import importlib
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from genjax.classical import estimators, hybrid
from genjax.data.rows import features, num_features

DEFAULT_EVALS = {"classification": {}}
MODELS = tuple(estimators.ESTIMATORS)
FITTED_STEP = 1  # the step of the fitted state's log record (genjax.train.FITTED_STEP)

# model -> data.preprocess for (image sets, UCI sets); statistics come from the training rows.
# Images: [0, 1] pixels (they share one scale, and the RBF kernels' and kNN's distances are
# those of the images), except multinomial NB (raw 0..255 intensities as counts, as its reported
# MNIST figure was measured) and categorical NB (4 grey levels, pixel // 64). UCI features have
# unrelated scales: standardised for the models that compare features (logistic, SVMs, kNN,
# LDA/QDA, Bernoulli NB's threshold at 0), raw for the scale-free Gaussian NB, min-max to [0, 1]
# for multinomial NB (non-negative counts), training quartiles for categorical NB.
PREPROCESS = {
    "logistic": ("unit", "standardize"),
    "linear_svm": ("unit", "standardize"),
    "kernel_svm": ("unit", "standardize"),
    "knn": ("unit", "standardize"),
    "lda": ("unit", "standardize"),
    "qda": ("unit", "standardize"),
    "gaussian_nb": ("unit", "none"),
    "bernoulli_nb": ("unit", "standardize"),
    "multinomial_nb": ("none", "unit"),
    "categorical_nb": ("quantize", "quantize"),
}
SMOKE_TRAIN_SIZE = 1000  # training images of an image set's smoke config


@struct.dataclass
class ClassicalState:
  """The core's fitted params, and (static) the model, its hyper-parameters as sorted
  (name, value) pairs, the number of classes and the training subset's size and seed."""

  params: Any
  name: str = struct.field(pytree_node=False)
  hyperparameters: tuple = struct.field(pytree_node=False)
  num_classes: int = struct.field(pytree_node=False)
  train_size: int = struct.field(pytree_node=False, default=0)
  subset_seed: int = struct.field(pytree_node=False, default=0)
  # (name, value) pairs of the blended objective (genjax.classical.hybrid): joint_weight and
  # max_iter, for the models whose config has model.joint_weight; () for the others.
  objective: tuple = struct.field(pytree_node=False, default=())


def module(name: str) -> ModuleType:
  """The functional core of model `name` (`kernel_svm` -> genjax.classical.svm)."""
  if name not in estimators.ESTIMATORS:
    raise ValueError(f"unknown classical model {name!r} (model.name); expected one of {MODELS}")
  return importlib.import_module(estimators.ESTIMATORS[name].MODULE)


def _frozen(value):
  """Lists (JSON's tuples) as tuples, so that hyper-parameters hash as static fields."""
  if isinstance(value, (list, tuple)):
    return tuple(_frozen(v) for v in value)
  return value


def hyperparameters(name: str, hp=None) -> dict:
  """Model `name`'s hyper-parameters: its defaults updated by `hp` (a dict or ConfigDict).

  Raises ValueError for an unknown model or hyper-parameter name, naming the known ones.
  """
  defaults = {**module(name).HYPERPARAMETERS, **estimators.ESTIMATORS[name].DEFAULTS}
  if isinstance(hp, ml_collections.ConfigDict):
    hp = hp.to_dict()
  hp = dict(hp or {})
  unknown = set(hp) - set(defaults)
  if unknown:
    raise ValueError(f"model {name!r} has no hyper-parameters {sorted(unknown)} (model.hp); "
                     f"known: {sorted(defaults)}")
  return {k: _frozen(v) for k, v in {**defaults, **hp}.items()}


def _core_kwargs(hp: dict) -> dict:
  """Hyper-parameters as the core's fit takes them (given class priors as an array)."""
  if hp.get("priors") is not None:
    hp = {**hp, "priors": jnp.asarray(hp["priors"], jnp.float32)}
  return hp


def training_rows(train, train_size: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """The training split as float32 feature rows [N, D] and int32 labels [N] on the host; with
  `train_size > 0`, a seeded subset of that many rows, in their original order (taken before
  the split's preprocessing, which is row by row: only the subset is preprocessed)."""
  if train_size:
    keep = subset_indices(len(train), train_size, seed)
    train = dataclasses.replace(train, arrays={k: v[keep] for k, v in train.arrays.items()})
  batch = train.inputs()
  return np.asarray(features(batch)), np.asarray(batch["label"], np.int32)


def subset_indices(n: int, train_size: int, seed: int) -> np.ndarray:
  """The sorted indices of a seeded subset of `train_size` of `n` rows."""
  if not 0 < train_size <= n:
    raise ValueError(f"data.train_size must be in 1..{n} (the training rows), got {train_size}")
  return np.sort(np.random.default_rng(seed).permutation(n)[:train_size])


def objective_settings(name: str, model: ml_collections.ConfigDict) -> dict:
  """The blended objective's settings of a config's `model` section, {"joint_weight",
  "max_iter"}, or {} where it has no joint_weight. Raises a one-line ValueError for a weight
  outside [0, 1], a model without a joint likelihood, or a max_iter that is not positive."""
  if "joint_weight" not in model:
    return {}
  return {"joint_weight": hybrid.check_joint_weight(name, model.joint_weight),
          "max_iter": hybrid.check_max_iter(model.get("max_iter", hybrid.DEFAULT_MAX_ITER))}


def _fit_params(state: ClassicalState, x_NxD, y_N):
  hp = _core_kwargs(dict(state.hyperparameters))
  if state.objective:  # at joint_weight 1 hybrid.fit is the core's closed-form fit itself
    return hybrid.fit(state.name, x_NxD, y_N, state.num_classes, **hp, **dict(state.objective))
  return module(state.name).fit(x_NxD, y_N, state.num_classes, **hp)


def create_state(key: jax.Array, config: ml_collections.ConfigDict, train) -> ClassicalState:
  """Zeros of the fitted params' shapes (the checkpoint's structure) and the static settings.

  Reads the training split only where categorical NB's `num_categories` is None (then the
  largest training category + 1, as the core's fit would read it).
  """
  del key
  name = config.model.name
  objective = objective_settings(name, config.model)
  hp = hyperparameters(name, config.model.get("hp"))
  if train.num_classes is None:
    raise ValueError(f"the training split of {config.data.name!r} has no class labels")
  train_size = int(config.data.get("train_size", 0) or 0)
  if train_size:
    subset_indices(len(train), train_size, config.seed)  # a clear error for a bad size
  rows = train_size or len(train)
  if name == "categorical_nb" and hp["num_categories"] is None:
    x_NxD, _ = training_rows(train, train_size, config.seed)
    hp["num_categories"] = int(x_NxD.max()) + 1
  state = ClassicalState(params=None, name=name, hyperparameters=tuple(sorted(hp.items())),
                         num_classes=int(train.num_classes), train_size=train_size,
                         subset_seed=int(config.seed), objective=tuple(sorted(objective.items())))
  d = num_features(train)
  shapes = jax.eval_shape(functools.partial(_fit_params, state),
                          jax.ShapeDtypeStruct((rows, d), jnp.float32),
                          jax.ShapeDtypeStruct((rows,), jnp.int32))
  return state.replace(params=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))


SOLVER_REPORT = ("num_iterations", "loss", "grad_norm", "temperature")


def fit(state: ClassicalState, train, key: jax.Array, log=None) -> ClassicalState:
  """The core's fit over the training split (or its `data.train_size` subset). `log` gets the
  number of rows fitted and the solver's report (iterations, final loss and gradient norm, SVM
  temperature), where the model has one."""
  del key
  x_NxD, y_N = training_rows(train, state.train_size, state.subset_seed)
  params = _fit_params(state, x_NxD, y_N)
  if log is not None:
    get = (lambda k: params.get(k)) if isinstance(params, dict) else (
        lambda k: getattr(params, k, None))
    report = {k: float(get(k)) for k in SOLVER_REPORT
              if get(k) is not None and np.ndim(get(k)) == 0 and np.isfinite(get(k))}
    log(FITTED_STEP, {"num_train": len(y_N), **report})
  return state.replace(params=params)


def log_proba(state: ClassicalState, batch: dict) -> jax.Array:
  """Normalised log P(y | x), [B, C], by the core's log_proba."""
  return module(state.name).log_proba(state.params, features(batch))


def predict(state: ClassicalState, batch: dict) -> jax.Array:
  """The predicted class of each example, [B] int32, by the core's predict."""
  return module(state.name).predict(state.params, features(batch))


DATASETS = ("mnist", "fashion_mnist", "iris", "wine", "breast_cancer", "digits")


def experiment_config(arg: str | None = None, *, name: str, hp: dict | None = None,
                      image_hp: dict | None = None, preprocess: str = "auto",
                      default: str = "mnist") -> ml_collections.ConfigDict:
  """The config of model `name` (genjax.config's idiom) on the dataset that `arg` names
  (`DATASET[,smoke]`; `default` where it names none).

  `hp` sets hyper-parameters on every dataset and `image_hp` on the image sets (the reported
  MNIST figures' settings, where the UCI figures used the defaults); `model.hp` holds them all,
  defaults filled in, so that any can be overridden on the command line
  (`--config.model.hp.l2=1e-3`). `preprocess="auto"` takes the model's `PREPROCESS` entry.
  `smoke` fits an image set on a seeded `SMOKE_TRAIN_SIZE`-row subset (`data.train_size`); the
  UCI sets are small enough to be their own smoke. Unknown names fail here, before any data is
  read.
  """
  from genjax import config as gconfig
  from genjax.data import images, splits
  dataset, smoke = gconfig.parse_dataset_arg(arg, default=default, choices=DATASETS)
  is_image = dataset in splits.IMAGES
  hp = hyperparameters(name, {**((image_hp or {}) if is_image else {}), **(hp or {})})
  mode = PREPROCESS[name][0 if is_image else 1] if preprocess == "auto" else preprocess
  modes = images.PREPROCESS_MODES if is_image else splits.TABULAR_PREPROCESS
  if mode not in modes:
    raise ValueError(f"unknown data.preprocess {mode!r} for {dataset!r}; expected 'auto' or one "
                     f"of {modes}")
  model = {"name": name, "hp": hp}
  if name in hybrid.MODELS:
    # The weight of log p(x, y) against log p(y | x) (1: the closed-form generative fit), and
    # the L-BFGS iteration cap below 1.
    model.update(joint_weight=1.0, max_iter=hybrid.DEFAULT_MAX_ITER)
  c = gconfig.fit_config("classical", gconfig.dataset(dataset, preprocess=mode), model)
  # A seeded subset of the training rows, drawn by this family's fit (0: all of them).
  c.data.train_size = SMOKE_TRAIN_SIZE if smoke and is_image else 0
  return c
