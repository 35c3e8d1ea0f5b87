"""Evaluate a workdir's latest checkpoint: test metrics and samples, written to results.json.

  python experiments/evaluate.py --workdir=runs/gan_mnist [--step=N]
"""

import json
import os

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  from genjax import logging as glog
  from genjax import train
  family, config, state = train.restore_for_eval(FLAGS.workdir, FLAGS.step)
  writer = glog.MetricWriter(FLAGS.workdir, tensorboard=False)
  keys = train.RunKeys.from_seed(config.seed)
  results = train.final_evaluation(family, state, config, keys.eval, writer, FLAGS.workdir)
  print(json.dumps(results, indent=2))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  app.run(main)
