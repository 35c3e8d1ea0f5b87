"""The family contract: what the generic loop (genjax.train) and the evaluators call.

Every model of either family of the generative/discriminative split is a *family* module
under genjax.families, named by `config.family`. There are two kinds:

- a **step family** (GAN, VAE, neural classifier, RBM) trains by many small steps: the loop
  draws batches from the training split, calls `train_step` inside one compiled program per
  step (or per device), logs, checkpoints and resumes;
- a **fit family** (naive Bayes, GDA, logistic regression, SVMs, kNN, TAN, HMM tagger, CRF)
  fits its state in one call over the whole training split (closed form, streaming statistics
  or an inner L-BFGS); the loop times it, checkpoints the fitted state and evaluates it.

Both kinds leave the same workdir and are scored by the same evaluators (genjax.evals), which
use whichever of the optional hooks a family has. Every optional hook is declared in `HOOKS`
(its signature and its caller); the loop and the evaluators look hooks up only through `hook`
and `has_hook`, and `load` refuses a module that lacks a required function, naming it. Inputs are `genjax.data.splits.Split`
objects: the loop never looks inside a batch.
"""

import dataclasses
import importlib
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import jax
import ml_collections

State = Any  # a pytree; step families' states carry an integer `step`
Batch = dict  # name -> array, as a Split's `element_spec` describes one example


@runtime_checkable
class StepFamily(Protocol):
  """A family trained by steps.

  Optional: `sample(state, key, num)` (generative families); `init_from_data(state, train,
  key) -> state` (statistics of the training split, e.g. an RBM's visible biases; called once
  on a fresh state, with create_state's key); `log_proba(state, batch) -> [B, C]` (classifiers).
  """

  def create_state(self, key: jax.Array, config: ml_collections.ConfigDict) -> State: ...

  def train_step(self, state: State, batch: Batch, key: jax.Array,
                 axis_name: str | None = None) -> tuple[State, dict]: ...

  def eval_step(self, state: State, batch: Batch, key: jax.Array,
                axis_name: str | None = None) -> dict: ...


@runtime_checkable
class FitFamily(Protocol):
  """A family fitted in one call over the whole training split.

  `create_state` builds the unfitted state, whose structure is also the checkpoint's (it may
  read the training split for shapes and vocabularies, which are static fields rebuilt on
  restore); `fit` returns the fitted state and may call `log(step, scalars)` per iteration
  (written to metrics.jsonl). Optional evaluation hooks: `eval_step(state, batch, key)`,
  `log_proba(state, batch) -> [B, C]`, `predict_split(state, split) -> predictions` (sequence
  labels), `sample(state, key, num)`.
  """

  def create_state(self, key: jax.Array, config: ml_collections.ConfigDict, train) -> State: ...

  def fit(self, state: State, train, key: jax.Array, log=None) -> State: ...


@dataclasses.dataclass(frozen=True)
class Hook:
  """An optional function (or constant) a family may define for the loop or the evaluators:
  its signature as the caller calls it, and who calls it."""

  signature: str
  used_by: str


# Every optional hook, in one place: the loop and the evaluators look hooks up here (`hook`,
# `has_hook`, evals.Context.require), so that a name nobody declared cannot be looked for.
HOOKS = {
    "DEFAULT_EVALS": Hook("DEFAULT_EVALS: dict[str, dict]", "evals.resolve: the evaluators a "
                          "config without `evals` runs"),
    "init_from_data": Hook("init_from_data(state, train, key) -> state", "the loop: once, on a "
                           "fresh state, with create_state's key (statistics of the split)"),
    "sample": Hook("sample(state, key, num, **variant) -> [num, H, W, C] in the data's range",
                   "the loop's sample grids; evaluators grids, sample_quality"),
    "sample_variants": Hook("sample_variants(state) -> {suffix: sample kwargs}",
                            "evaluator grids: one grid per generator (e.g. an EMA copy)"),
    "num_classes": Hook("num_classes(state) -> int", "evaluator grids: class-conditional rows "
                        "(0: unconditional)"),
    "interpolate": Hook("interpolate(state, key, rows, steps) -> [rows * steps, H, W, C]",
                        "evaluator grids: latent walks"),
    "eval_step": Hook("eval_step(state, batch, key) -> {metric: scalar}", "evaluator metrics "
                      "(required of a step family; optional for a fit family)"),
    "log_proba": Hook("log_proba(state, batch) -> [B, C] normalised log p(y | x)",
                      "evaluator classification"),
    "predict_split": Hook("predict_split(state, split) -> list of tag sequences",
                          "evaluators tagging, chunking"),
    "unknown_words": Hook("unknown_words(state, split) -> list of [bool] per token",
                          "evaluator tagging: accuracy on words the training split never showed"),
    "log_weight_fn": Hook("log_weight_fn(state, labels_known=False) -> fn(x_bxD, keys_b, n) -> "
                          "[b, n] log importance weights", "evaluator nll"),
    "encode": Hook("encode(state, x, labels=None, key=None) -> [posterior mean per layer]",
                   "evaluator latents"),
    "decode_mean": Hook("decode_mean(state, z, key=None, labels=None) -> images",
                        "evaluator latents"),
    "reconstruct": Hook("reconstruct(state, x, labels=None) -> images", "evaluator latents"),
    "interpolate_latents": Hook("interpolate_latents(z_from, z_to, steps) -> latents",
                                "evaluator latents"),
    "chain_grid": Hook("chain_grid(params, key, v0_BxD, num_frames, steps_between) -> "
                       "[frames, B, D]", "evaluator ais: the Gibbs chains' frames"),
}

STEP_FUNCTIONS = ("create_state", "train_step", "eval_step")
FIT_FUNCTIONS = ("create_state", "fit")


def hook(family: ModuleType, name: str) -> Any:
  """The family's optional hook `name`, or None where it has none. Raises KeyError for a name
  HOOKS does not declare (a misspelt hook would otherwise be silently absent)."""
  if name not in HOOKS:
    raise KeyError(f"{name!r} is not a declared family hook (genjax.family.HOOKS): "
                   f"{sorted(HOOKS)}")
  return getattr(family, name, None)


def has_hook(family: ModuleType, name: str) -> bool:
  """Whether the family defines the declared optional hook `name`."""
  return hook(family, name) is not None


# Family names of earlier versions, kept so that old workdirs' config.json still load.
ALIASES = {
    "classifier": "neural_classifier",
    "genjax.classifier": "neural_classifier",
    "genjax.gan": "gan",
    "genjax.vae": "vae",
    "genjax.structured.rbm": "rbm",
}


def load(name: str) -> StepFamily | FitFamily:
  """The module of the family `name` (`gan` -> genjax.families.gan; a dotted path names any
  importable module). Raises ValueError, in one line naming each missing function, unless it
  is a step family (create_state, train_step, eval_step) or a fit family (create_state, fit)."""
  name = ALIASES.get(name, name)
  module = importlib.import_module(name if "." in name else f"genjax.families.{name}")
  check(module)
  return module


def check(module: ModuleType) -> None:
  """Refuse a module that is not a whole step or fit family, in one line naming what it lacks
  (`train_step` marks a step family, `fit` a fit family)."""
  if is_step(module) or is_fit(module):
    return

  def lacking(functions: tuple[str, ...]) -> str:
    return ", ".join(f for f in functions if not callable(getattr(module, f, None)))

  if hasattr(module, "train_step"):
    what = f"is a step family without {lacking(STEP_FUNCTIONS)}"
  elif hasattr(module, "fit"):
    what = f"is a fit family without {lacking(FIT_FUNCTIONS)}"
  else:
    what = (f"has neither a step family's {', '.join(STEP_FUNCTIONS)} nor a fit family's "
            f"{', '.join(FIT_FUNCTIONS)}")
  raise ValueError(f"family module {module.__name__} {what}")


def is_step(module: ModuleType) -> bool:
  """Whether `module` has a step family's functions (StepFamily)."""
  return all(callable(getattr(module, f, None)) for f in STEP_FUNCTIONS)


def is_fit(module: ModuleType) -> bool:
  """Whether `module` has a fit family's functions (FitFamily) and not a step family's."""
  return all(callable(getattr(module, f, None)) for f in FIT_FUNCTIONS) and not is_step(module)
