"""genjax: generative and discriminative models side by side, in functional JAX.

The public API, for research code that imports genjax rather than running its scripts:

    import genjax
    config = genjax.load_config("experiments/configs/gan_mnist.py:smoke")
    results = genjax.train_and_evaluate(config, "runs/gan")   # a step or a fit family
    family, config, state = genjax.restore_for_eval("runs/gan")
    state, metrics = family.train_step(state, batch, key)      # the pure, jittable step

Names are imported on first use, so `import genjax` stays cheap.
"""

import importlib

__version__ = "0.1.0"

# name -> the module that defines it.
_EXPORTS = {
    # Families: the contract, its optional hooks, and loading one by name.
    "load_family": "genjax.family:load",
    "StepFamily": "genjax.family",
    "FitFamily": "genjax.family",
    "HOOKS": "genjax.family",
    # Configs and the loop: training a step family, fitting a fit family, restoring a workdir.
    "load_config": "genjax.config:load",
    "train_and_evaluate": "genjax.train",
    "fit_and_evaluate": "genjax.train",
    "restore_for_eval": "genjax.train",
    "read_config": "genjax.train",
    "final_evaluation": "genjax.train",
    # Devices and populations.
    "DataParallel": "genjax.parallel",
    "pmean_if": "genjax.parallel",
    # Data: the loop's only view of a dataset.
    "Split": "genjax.data.splits",
    "ArraySplit": "genjax.data.splits",
    "SentenceSplit": "genjax.data.splits",
    "load_split": "genjax.data.splits:load",
    # Evaluators: the registry config.evals names, and adding one.
    "EVALUATORS": "genjax.evals.base:REGISTRY",
    "register_evaluator": "genjax.evals.base:register",
    "run_evaluators": "genjax.evals.base:run",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'genjax' has no attribute {name!r}")
  module, _, attribute = _EXPORTS[name].partition(":")
  value = getattr(importlib.import_module(module), attribute or name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(__all__)
