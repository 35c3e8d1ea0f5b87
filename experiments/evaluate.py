"""Evaluate any workdir's checkpoint with every evaluator its config names (genjax.evals).

  python experiments/evaluate.py --workdir=runs/dcgan_mnist [--step=N] [--evals=a,b]

Restores the latest (or --step) checkpoint of any family, step or fit, and runs the config's
evaluators (its `evals` section, else the family's DEFAULT_EVALS), those the training loop
leaves for later (`on_train_end: False`: sample quality, the k = 5000 NLL, AIS) included. The
numbers go into <workdir>/results.json (merged into what the loop wrote for the same step) and
are printed; grids go to <workdir>/samples/. An evaluator whose data is not at hand (e.g.
--idx_dir names files that are not there) is skipped with a note, so sample grids are still
drawn.

Flags override evaluator options: --num_samples (sample_quality), --metrics=false (skip
sample_quality), --nll_k (0 skips the NLL), --nll_examples, --nll_batch, --nll_chunk (nll);
--evals=a,b runs only the evaluators named (a registered type not in the config runs with its
defaults, e.g. --evals=ais or --evals=classification).
"""

import json
import os

from absl import app, flags, logging

from genjax import cli

flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.DEFINE_list("evals", None, "Run only these evaluators (names or types; default: all).")
flags.DEFINE_integer("num_samples", 10_000, "sample_quality: generated (and real) images per "
                     "metric.")
flags.DEFINE_bool("metrics", True, "Run sample_quality (the domain-classifier sample metrics).")
flags.DEFINE_string("idx_dir", None, "Read the data from these raw IDX files instead of what "
                    "config.json names (e.g. a run trained elsewhere); '' means TFDS.")
flags.DEFINE_integer("nll_k", 5000, "nll: importance samples per test image (0 skips it).")
flags.DEFINE_integer("nll_examples", -1, "nll: test images scored (-1: all).")
flags.DEFINE_integer("nll_batch", 20, "nll: test images per batch.")
flags.DEFINE_integer("nll_chunk", 1000, "nll: samples per image held in memory at once.")
FLAGS = flags.FLAGS

# Flag -> (evaluator type, option) it overrides when given on the command line.
OPTION_FLAGS = {
    "num_samples": ("sample_quality", "num_samples"),
    "nll_k": ("nll", "nll_k"),
    "nll_examples": ("nll", "nll_examples"),
    "nll_batch": ("nll", "nll_batch"),
    "nll_chunk": ("nll", "nll_chunk"),
}


def select(evaluators: dict[str, dict], only: list[str] | None) -> dict[str, dict]:
  """The evaluators named in `only` (by name or type; a registered type the config does not
  name is added with its defaults), in that order; all of them when `only` is None."""
  from genjax import evals
  if only is None:
    return evaluators
  out = {}
  for name in only:
    matches = {n: o for n, o in evaluators.items() if name in (n, o["type"])}
    if not matches:
      if name not in evals.REGISTRY:
        raise ValueError(f"no evaluator {name!r} in the config, and no such type; expected "
                         f"one of {sorted({*evaluators, *evals.REGISTRY})}")
      matches = {name: {"type": name, "split": "test", "on_train_end": False}}
    out.update(matches)
  return out


def merge(old: dict, new: dict) -> dict:
  """`new` results over `old` ones of the same step (per split and per evaluator); `new` alone
  when the steps differ."""
  if old.get("step") != new.get("step") or old.get("family") != new.get("family"):
    return new
  out = dict(old)
  for k, v in new.items():
    if isinstance(v, dict) and not v:  # a split no evaluator scored
      continue
    out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
  return out


def evaluate(workdir: str, step: int | None = None, only: list[str] | None = None,
             options: dict[str, dict] | None = None, idx_dir: str | None = None,
             write: bool = True) -> dict:
  """Run the workdir's evaluators (`only` some; `options`: type -> option overrides; a None
  option value drops that type's evaluators) and return the results (merged into
  <workdir>/results.json when `write`), holding the workdir's lock (genjax.workdir): a run
  still writing there is not evaluated under it."""
  from genjax import train
  from genjax import workdir as workdir_lib
  train.read_config(workdir)  # not a workdir: one clear error, and no lock file left behind
  with workdir_lib.Lock(workdir):
    return _evaluate(workdir, step, only, options, idx_dir, write)


def _evaluate(workdir, step, only, options, idx_dir, write) -> dict:
  from genjax import evals, population, train, writers

  family, config, state = train.restore_for_eval(workdir, step)
  if idx_dir is not None:
    config.data.idx_dir = idx_dir or None
  evaluators = select(evals.resolve(config, family), only)
  for kind, opts in (options or {}).items():
    for name in [n for n, o in evaluators.items() if o["type"] == kind]:
      if opts is None:
        del evaluators[name]
      else:
        evaluators[name].update(opts)
  size = population.size(config)
  if size == 1:
    return _evaluate_run(family, config, state, workdir, evaluators, write)[0]
  # A population: each member in its own folder, then the mean and spread of what each member's
  # results.json now holds.
  members = [_evaluate_run(family, population.member_config(config, i),
                           population.member(state, i), population.member_dir(workdir, i),
                           evaluators, write)[1] for i in range(size)]
  results = population.aggregate(members, [config.seed + i for i in range(size)])
  if write:
    writers.write_json(os.path.join(workdir, "results.json"), results)
  return results


def _evaluate_run(family, config, state, workdir, evaluators, write) -> tuple[dict, dict]:
  """One run's evaluators: (their results, those merged into workdir/results.json, which is
  written when `write`)."""
  from genjax import evals, train, writers
  from genjax import family as family_lib
  from genjax.data.images import DatasetNotFoundError

  writer = writers.MetricWriter(workdir, tensorboard=False)
  # A fit family's state has no step counter: its one checkpoint is train.FITTED_STEP.
  step = train.FITTED_STEP if family_lib.is_fit(family) else int(state.step)
  ctx = evals.Context(family=family, state=state, config=config, step=step,
                      key=train.RunKeys.from_seed(config.seed).eval, workdir=workdir,
                      writer=writer)
  results = {"step": ctx.step, "family": config.family}
  for name, opts in evaluators.items():
    try:
      out = evals.run(ctx, {name: opts})
    except (DatasetNotFoundError, FileNotFoundError) as e:
      print(f"skipping {name}: its data is not at hand ({e})")
      continue
    results = merge(results, out)
  writer.close()
  if write:
    path = os.path.join(workdir, "results.json")
    old = {}
    if os.path.exists(path):
      with open(path) as f:
        old = json.load(f)
    merged = merge(old, results)
    writers.write_json(path, merged)
    return results, merged
  return results, results


def flag_options() -> dict[str, dict | None]:
  """Evaluator option overrides from the flags given on the command line."""
  options: dict[str, dict | None] = {}
  for flag, (kind, option) in OPTION_FLAGS.items():
    if FLAGS[flag].present:
      options.setdefault(kind, {})[option] = FLAGS[flag].value
  if not FLAGS.metrics:
    options["sample_quality"] = None
  if FLAGS["nll_k"].present and FLAGS.nll_k <= 0:
    options["nll"] = None
  return options


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  results = evaluate(FLAGS.workdir, FLAGS.step, FLAGS.evals, flag_options(), FLAGS.idx_dir)
  print(json.dumps(results, indent=2))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  cli.run(main)
