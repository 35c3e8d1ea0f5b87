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
use whichever of the optional hooks below a family has. Inputs are `genjax.data.splits.Split`
objects: the loop never looks inside a batch.
"""

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


# Family names of earlier versions, kept so that old workdirs' config.json still load.
ALIASES = {
    "classifier": "neural_classifier",
    "genjax.classifier": "neural_classifier",
    "genjax.gan": "gan",
    "genjax.vae": "vae",
    "genjax.structured.rbm": "rbm",
}


def load(name: str) -> ModuleType:
  """The module of the family `name` (`gan` -> genjax.families.gan; a dotted path names any
  importable module); a clear error unless it is a step or a fit family."""
  name = ALIASES.get(name, name)
  module = importlib.import_module(name if "." in name else f"genjax.families.{name}")
  if not (is_step(module) or is_fit(module)):
    raise ValueError(f"family module {module.__name__} has neither create_state/train_step/"
                     "eval_step (a step family) nor create_state/fit (a fit family)")
  return module


def is_step(module: ModuleType) -> bool:
  return all(hasattr(module, f) for f in ("create_state", "train_step", "eval_step"))


def is_fit(module: ModuleType) -> bool:
  return all(hasattr(module, f) for f in ("create_state", "fit")) and not is_step(module)
