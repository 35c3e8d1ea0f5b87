"""Learning curves: a step family's test error during its run against the run's wall clock.

With `train.eval_every > 0` the loop (genjax.train) evaluates the family's eval_step on
`train.eval_split` every that many steps and logs `<split>/error` (or `<split>/accuracy`) in
each member's metrics.jsonl (`members/<i>/` of a population, else the workdir's own).
`Clock` is the loop's `on_eval` hook: at each of those steps it records the seconds since the
invocation began in the workdir's curve.json (data, compilation, pre-training in the family's
init_from_data and the evaluations themselves included: the wall clock one waits for), and
when the run ends, the invocation's whole time (`wall_seconds`). `read` joins the two into the
curve: per evaluation step, the seconds and each member's error.

A resumed run's clock continues from its last evaluation before the step it resumed at: the
time between that evaluation and the interruption is lost, the resumed invocation's start-up
is counted (curve.json's `invocations` says how many there were).
"""

import json
import os
import time

import ml_collections

FILE = "curve.json"


def with_evaluations(config: ml_collections.ConfigDict, points: int, steps: int) -> None:
  """Evaluate `config`'s test error `points` times over a run of `steps` loop steps (every
  `steps // points` steps, at least every step), on the test split; `points` 0 leaves the
  config's own evaluation settings."""
  if points <= 0:
    return
  config.train.eval_every = max(1, steps // points)
  config.train.eval_split = "test"
  config.train.eval_from = 0


def _load(workdir: str) -> dict:
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    return {"seconds": {}, "wall_seconds": None, "invocations": 0}
  with open(path) as f:
    return json.load(f)


class Clock:
  """The wall clock of one invocation of a run in `workdir`: pass it as train_and_evaluate's
  `on_eval` (it never stops the run), then call `finish()` when the run returns. Records in
  curve.json, rewritten at every evaluation (a stopped run keeps its steps' times)."""

  def __init__(self, workdir: str, now=time.perf_counter):
    self.workdir = workdir
    self.now = now  # seconds on a monotonic clock
    self.record = _load(workdir)
    self.record["invocations"] += 1
    self.base = None  # the seconds of earlier invocations this one continues from
    self.start = now()

  def _continue_from(self, step: int | None) -> None:
    """At this invocation's first evaluation (at `step`; None: it ends without one): keep the
    earlier invocations' times of the steps before it, and continue from the last of them."""
    if self.base is None:
      kept = {k: v for k, v in self.record["seconds"].items() if step is None or int(k) < step}
      self.record["seconds"] = kept
      self.base = max(kept.values(), default=0.0)

  def _write(self) -> None:
    from genjax import writers
    writers.write_json(os.path.join(self.workdir, FILE), self.record)

  def __call__(self, step: int, metrics: dict) -> bool:
    del metrics  # the members' own numbers are in their metrics.jsonl
    self._continue_from(step)
    self.record["seconds"][str(step)] = self.base + self.now() - self.start
    self._write()
    return False

  def finish(self) -> float:
    """Record the run's wall seconds (this invocation's and the earlier ones' it continued);
    returns them."""
    self._continue_from(None)
    self.record["wall_seconds"] = self.base + self.now() - self.start
    self._write()
    return self.record["wall_seconds"]


def record_error(record: dict, split: str) -> float | None:
  """A metrics.jsonl record's error on `split` (1 - accuracy where it logs no error), or None
  where it holds no evaluation."""
  if f"{split}/error" in record:
    return float(record[f"{split}/error"])
  if f"{split}/accuracy" in record:
    return 1.0 - float(record[f"{split}/accuracy"])
  return None


def read(workdir: str) -> dict:
  """The curve of the run in `workdir` (its recorded config says the members and the split):
  {"points": [{"step", "seconds" (None where curve.json has no time for it), "errors" (one per
  member)}], "wall_seconds" (None where no invocation finished), "invocations"}. Only the
  steps every member evaluated at."""
  from genjax import population, train, writers
  config = train.read_config(workdir)
  split = train.eval_split_name(config)
  size = population.size(config)
  dirs = [workdir] if size == 1 else [population.member_dir(workdir, i) for i in range(size)]
  errors = []
  for d in dirs:
    records = writers.read_metrics(os.path.join(d, "metrics.jsonl"))
    errors.append({r["step"]: e for r in records
                   if (e := record_error(r, split)) is not None})
  steps = sorted(set.intersection(*(set(e) for e in errors)))
  clock = _load(workdir)
  points = [{"step": s, "seconds": clock["seconds"].get(str(s)), "errors": [e[s] for e in errors]}
            for s in steps]
  return {"points": points, "wall_seconds": clock["wall_seconds"],
          "invocations": clock["invocations"]}
