"""AIS evaluation of an RBM workdir: experiments/evaluate.py with only the `ais` evaluator.

  python experiments/rbm_ais.py --workdir=runs/rbm_budget [--num_runs=100 --num_repeats=5]

From the latest checkpoint (or --step), genjax.evals.ais estimates log Z (its spread over
--num_repeats estimates of --num_runs runs each) and scores the test set, binarised once as
every likelihood figure (genjax.evals.likelihood.binarized, seed 0), as the mean log p(v) in
nats; grids of chains go to <workdir>/samples/ais_*.png. The figures are merged into
<workdir>/results.json (test: log_likelihood, nll, log_z, log_z_repeat_std; details.ais: the
rest) and printed. The same as `evaluate.py --evals=ais`, except that the AIS runs are seeded
by --seed (as this script always did) rather than by the run's evaluation key.
"""

import json
import os

import evaluate  # experiments/evaluate.py: --workdir, --step, --idx_dir
from absl import app, flags, logging

from genjax import cli

flags.DEFINE_integer("num_runs", None, "AIS runs per estimate (default: config.ais.num_runs).")
flags.DEFINE_integer("num_repeats", None, "Independent estimates (default: config.ais).")
flags.DEFINE_integer("num_betas", None, "Intermediate temperatures (default: config.ais).")
flags.DEFINE_integer("seed", 0, "Seed of the AIS runs.")
flags.DEFINE_integer("num_train_eval", 10_000, "Training images also scored (overfitting).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  options = {"num_runs": FLAGS.num_runs, "num_repeats": FLAGS.num_repeats,
             "num_betas": FLAGS.num_betas, "seed": FLAGS.seed,
             "num_train_eval": FLAGS.num_train_eval}
  results = evaluate.evaluate(FLAGS.workdir, FLAGS.step, ["ais"], {"ais": options},
                              FLAGS.idx_dir)
  print(json.dumps(results, indent=1))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  cli.run(main)
