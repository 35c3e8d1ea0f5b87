"""Test accuracy, log-loss and expected calibration error of any classifier workdir:
experiments/evaluate.py with only the `classification` evaluator.

  python experiments/evaluate_classifier.py --workdir=runs/cnn_mnist [--step=N] [--num_bins=15]

Restores the latest (or `--step`) checkpoint of any family with `log_proba` (a neural
classifier of mlp_mnist.py, lenet5_mnist.py, cnn_mnist.py, domain_cnn.py, or a fit family),
predicts the whole test split and scores it with genjax.evals.classification (accuracy,
error, log_loss, ece, predict_seconds). The figures are merged into <workdir>/results.json
under "test" and printed.
"""

import json
import os

import evaluate  # experiments/evaluate.py: --workdir, --step, --idx_dir
from absl import app, flags, logging

from genjax import cli

flags.DEFINE_integer("num_bins", 15, "Equal-width confidence bins of the calibration error.")
flags.DEFINE_integer("batch_size", 1000, "Test images per forward pass.")
FLAGS = flags.FLAGS


def evaluate_workdir(workdir: str, step: int | None = None, num_bins: int = 15,
                     batch_size: int = 1000, write: bool = True) -> dict:
  """The results of the classification evaluator on a workdir: {"step", "family", "test":
  {"accuracy", "error", "log_loss", "ece", ...}, "seconds"}."""
  return evaluate.evaluate(workdir, step, ["classification"],
                           {"classification": {"num_bins": num_bins, "batch_size": batch_size}},
                           write=write)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  results = evaluate_workdir(FLAGS.workdir, FLAGS.step, FLAGS.num_bins, FLAGS.batch_size)
  print(json.dumps(results))
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  cli.run(main)
