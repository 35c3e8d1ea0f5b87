"""Side-by-side timing against the library a user would otherwise pick (scikit-learn,
CRFsuite, hmmlearn), on the same data in the same process run.

A task that has a peer takes `peers: bool` and `repeats: int`. With `peers`, it times the
peer's run and genjax's alternately (peer, genjax, peer, genjax, ...), so that a change in the
machine's load falls on both, and reports both medians, their ratio and both qualities. The
peers are the optional `bench` extra (`pip install -e ".[bench]"`); a task whose peer is not
installed still runs genjax's side and says that the peer is missing.
"""

import importlib
import statistics
import time
from collections.abc import Callable
from types import ModuleType

INSTALL = "pip install -e '.[bench]'"


def load(module: str) -> ModuleType | None:
  """The peer's module, or None when it is not installed."""
  try:
    return importlib.import_module(module)
  except ImportError:
    return None


def timed(fn: Callable[[], dict]) -> dict:
  """`fn`'s result (its quality figures) with the wall seconds it took."""
  start = time.perf_counter()
  result = fn()
  return {**result, "seconds": time.perf_counter() - start}


def side_by_side(genjax: Callable[[], dict], peer: Callable[[], dict] | None, peer_name: str,
                 repeats: int) -> dict:
  """Runs `peer` and `genjax` alternately, `repeats` times each (peer first). Each returns a
  dict of quality figures (accuracy, F1, final objective...) and is timed whole.

  Returns {"genjax": {...}, "peer": {...} or {"missing": ...}, "time_ratio": genjax seconds /
  peer seconds (medians)}; each side holds its median seconds, every run's seconds, and the
  quality figures of its last run.
  """
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  runs = {"genjax": [], "peer": []}
  for _ in range(repeats):
    if peer is not None:
      runs["peer"].append(timed(peer))
    runs["genjax"].append(timed(genjax))
  result = {"genjax": _summary(runs["genjax"])}
  if peer is None:
    result["peer"] = {"name": peer_name, "missing": f"not installed ({INSTALL})"}
    return result
  result["peer"] = {"name": peer_name, **_summary(runs["peer"])}
  result["time_ratio"] = result["genjax"]["seconds"] / result["peer"]["seconds"]
  return result


def _summary(runs: list[dict]) -> dict:
  seconds = [r["seconds"] for r in runs]
  return {**runs[-1], "seconds": statistics.median(seconds), "seconds_each": seconds}
