"""The evaluator registry, the context evaluators read, and the runner that merges results."""

import dataclasses
import importlib
import math
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import ml_collections

from genjax import family as family_lib
from genjax.data import splits as splits_lib

# Evaluator type -> "module:function", imported when first used.
REGISTRY = {
    "metrics": "genjax.evals.metrics:mean_metrics",
    "classification": "genjax.evals.classification:classification",
    "grids": "genjax.evals.samples:grids",
    "sample_grids": "genjax.evals.samples:sample_grids",
    "sample_quality": "genjax.evals.sample_quality:sample_quality",
    "nll": "genjax.evals.likelihood:nll",
    "latents": "genjax.evals.vae:latents",
    "ais": "genjax.evals.ais:ais",
    "tagging": "genjax.evals.sequences:tagging",
    "chunking": "genjax.evals.sequences:chunking",
}


def register(name: str, target: str) -> None:
  """Add an evaluator type (`target` is "module:function")."""
  REGISTRY[name] = target


def _function(kind: str) -> Callable:
  if kind not in REGISTRY:
    raise ValueError(f"unknown evaluator type {kind!r}; expected one of {sorted(REGISTRY)}")
  module, _, fn = REGISTRY[kind].partition(":")
  return getattr(importlib.import_module(module), fn)


@dataclasses.dataclass
class Context:
  """What an evaluator sees: the family, its state and config, the step, a key, where to write.

  `split(name)` loads a split once (cached); `writer` saves grids (may be disabled).
  """

  family: ModuleType
  state: Any
  config: ml_collections.ConfigDict
  step: int
  key: jax.Array
  workdir: str
  writer: Any = None
  _splits: dict = dataclasses.field(default_factory=dict)

  def split(self, name: str):
    if name not in self._splits:
      self._splits[name] = splits_lib.load(self.config.data, name)
    return self._splits[name]

  def add_split(self, split) -> None:
    """Reuse an already loaded split (the training split a fit family was fitted on)."""
    self._splits[split.name] = split

  def require(self, *hooks: str) -> None:
    missing = [h for h in hooks if not family_lib.has_hook(self.family, h)]
    if missing:
      raise ValueError(f"family {self.config.family!r} has no {', '.join(missing)}(), which "
                       "this evaluator needs")


def resolve(config: ml_collections.ConfigDict, family: ModuleType) -> dict[str, dict]:
  """The config's evaluators (`config.evals`, else the family's DEFAULT_EVALS) as
  name -> options, each with `type`, `split` and `on_train_end` filled in."""
  evals = config.get("evals")
  if evals is not None:
    evals = evals.to_dict()
  elif family_lib.has_hook(family, "DEFAULT_EVALS"):
    evals = dict(family.DEFAULT_EVALS)
  else:  # a step family's own metrics, and its samples where it has any
    evals = {"metrics": {}, **({"grids": {}} if family_lib.has_hook(family, "sample") else {})}
  out = {}
  for name, options in evals.items():
    options = dict(options or {})
    options.setdefault("type", name)
    options.setdefault("split", "test")
    options.setdefault("on_train_end", True)
    _function(options["type"])  # unknown types fail before anything runs
    out[name] = options
  return out


# The evaluation budget of a smoke run (a config's `smoke` variant): seconds, not hours, for
# the evaluators whose cost is a size option. genjax.config.apply_variant writes them into the
# config's `evals`, so `--show` and config.json say what a smoke run evaluates.
SMOKE_OPTIONS = {
    "metrics": {"num_examples": 1000},
    "classification": {"num_examples": 1000},
    "sample_quality": {"num_samples": 200},
    "nll": {"nll_k": 8, "nll_examples": 40, "nll_batch": 20, "nll_chunk": 8},
    "ais": {"num_runs": 8, "num_repeats": 2, "num_betas": 100, "num_train_eval": 500},
    "latents": {"num_examples": 500},
}


def smoke_evals(config: ml_collections.ConfigDict, family: ModuleType) -> dict[str, dict]:
  """`resolve(config, family)` with SMOKE_OPTIONS over each evaluator's size options."""
  return {name: {**options, **SMOKE_OPTIONS.get(options["type"], {})}
          for name, options in resolve(config, family).items()}


def _is_metric(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run(ctx: Context, evaluators: dict[str, dict], only_on_train_end: bool = False) -> dict:
  """Run evaluators in order; returns the results.json dict (see the package docstring)."""
  results: dict = {"step": ctx.step, "family": ctx.config.family}
  for name, options in evaluators.items():
    options = dict(options)
    kind, split = options.pop("type"), options.pop("split")
    on_train_end = options.pop("on_train_end")
    if only_on_train_end and not on_train_end:
      continue
    start = time.perf_counter()
    # Every evaluator gets the run's evaluation key and folds in its own stream id, so its
    # numbers do not depend on which other evaluators ran before it.
    out = _function(kind)(ctx, split=split, **options)
    results.setdefault("seconds", {})[name] = time.perf_counter() - start
    details = out.pop("details", None)
    if details is not None:
      results.setdefault("details", {})[name] = details
    # A quantity two evaluators both report (a classifier's eval_step accuracy and the
    # classification evaluator's) keeps the later, whole-split value.
    merged = results.setdefault(split, {})
    for k, v in out.items():
      merged[k] = v if _is_metric(v) else str(v)
  return results
