"""Train a config in a workdir (resuming from its latest checkpoint), then evaluate.

  python experiments/train.py --config=experiments/configs/gan_mnist.py --workdir=runs/gan_mnist
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.mark_flag_as_required("workdir")
config_flags.DEFINE_config_file("config", None, "A config file (`path.py` or `path.py:smoke`).",
                                lock_config=True)
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a mistyped `--config.field` reported in one line, not a traceback."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:  # what ml_collections raises for an unknown field
    message = e
    while isinstance(message, BaseException) and message.args:
      message = message.args[0]
    sys.exit(f"FATAL Flags parsing error: unknown config field {message}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax and TFDS are chatty at INFO
  from genjax import distributed, train
  distributed.maybe_initialize()
  results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  print({k: v for k, v in results.items()})


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
