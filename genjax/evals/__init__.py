"""Evaluators: every score of every family, computed in one place and named in the config.

A config's `evals` section names what scores a run (big_vision's `evals`): each entry is
`name: {type, split, on_train_end, ...options}`, `type` defaulting to the name. A config
without one gets its family's `DEFAULT_EVALS`. An evaluator is a function

  evaluate(ctx: genjax.evals.base.Context, **options) -> dict

returning flat, JSON-ready metrics (accuracy, log_loss, ece, nll, f1, fid, ...: the same name
for the same quantity in every family) and, under the key `details`, anything else. It uses
only the hooks of genjax.family that the family has, and says clearly which one is missing.

The loop runs the entries with `on_train_end` (default True) after training or fitting;
`experiments/evaluate.py` runs them all. Results land in results.json as
`{"step", "family", <split>: {metrics...}, "details": {name: ...}, "seconds": {name: s}}`.
"""

from genjax.evals.base import REGISTRY, SMOKE_OPTIONS, Context, resolve, run, smoke_evals

__all__ = ["REGISTRY", "SMOKE_OPTIONS", "Context", "resolve", "run", "smoke_evals"]
