"""Benchmarks that are not a config's train step (fit/predict of classical models, sequence
models, evaluations): each module here exposes `TASKS`, a dict from an entry name to a
function `(windows, window_seconds, peak_size) -> dict` that returns one JSON-able result.

`experiments/benchmark.py --model=NAME` runs a train-step entry of its own `BENCHMARKS` or a
task of any module in this package (found by listing it: a new module needs no registration;
modules whose name starts with "_" are helpers, not tasks). A task that takes `peers` and
`repeats` keywords also times the library a user would otherwise pick (`_peers`).
"""

import importlib
import pkgutil


def tasks() -> dict:
  """Every task of every module of this package, by entry name."""
  found = {}
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{__name__}.{info.name}")
    for entry, fn in module.TASKS.items():
      if entry in found:
        raise ValueError(f"benchmark entry {entry!r} defined twice")
      found[entry] = fn
  return found
