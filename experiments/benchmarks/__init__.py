"""Benchmarks that are not a config's train step (fit/predict of classical models, sequence
models, evaluations): each module here exposes `TASKS`, a dict from an entry name to a
function `(windows, window_seconds, peak_size) -> dict` that returns one JSON-able result.

`experiments/benchmark.py --model=NAME` runs a train-step entry of its own `BENCHMARKS` or a
task of any module listed in `MODULES`.
"""

import importlib

MODULES = ()  # module names under experiments/benchmarks, e.g. "classical"


def tasks() -> dict:
  """Every task of every module in MODULES, by entry name."""
  found = {}
  for name in MODULES:
    module = importlib.import_module(f"benchmarks.{name}")
    for entry, fn in module.TASKS.items():
      if entry in found:
        raise ValueError(f"benchmark entry {entry!r} defined twice")
      found[entry] = fn
  return found
