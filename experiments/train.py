"""Train any model of either family from a config, in a workdir, then evaluate it.

  python experiments/train.py --config=experiments/configs/gan_mnist.py --workdir=runs/gan_mnist
  python experiments/train.py --config=experiments/configs/logistic.py:iris --workdir=runs/lr_iris
  python experiments/train.py --list                      # every config, one line each
  python experiments/train.py --config=...py:ARG --config.optim.learning_rate=1e-3 --show

Running the same command again resumes from the workdir's latest checkpoint (a fit family's
fitted state is restored, not refitted); a config that differs from the workdir's in a field
that changes the computation is refused unless `--override` is given; `--resume_step=N`
resumes from an older checkpoint. SIGTERM or Ctrl-C checkpoints the current step and exits. `--show` prints the resolved config (after the
overrides) and exits without touching the workdir.
"""

import json
import os
import sys

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and results.")
config_flags.DEFINE_config_file("config", None, "A config file (`path.py` or `path.py:arg`).",
                                lock_config=True)
flags.DEFINE_bool("list", False, "List every config in experiments/configs and exit.")
flags.DEFINE_bool("show", False, "Print the resolved config (after overrides) and exit.")
flags.DEFINE_bool("override", False,
                  "Continue a workdir with a config that differs in fields that change the "
                  "computation; the change and its step are recorded in config_changes.jsonl.")
flags.DEFINE_integer("resume_step", None,
                     "Resume from this checkpoint instead of the newest (newer ones are moved "
                     "to checkpoints.superseded/).")
FLAGS = flags.FLAGS
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a mistyped `--config.field` reported in one line, not a traceback."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:  # what ml_collections raises for an unknown field
    message = e
    while isinstance(message, BaseException) and message.args:
      message = message.args[0]
    print(f"error: unknown config field {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.list:
    configs = cli.list_configs(CONFIG_DIR)
    width = max(len(name) for name, _ in configs)
    for name, line in configs:
      print(f"{name:<{width}}  {line}")
    return
  if FLAGS.config is None:
    raise app.UsageError("--config is required (see --list)")
  if FLAGS.show:
    print(json.dumps(FLAGS.config.to_dict(), indent=2, default=str))
    return
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  from genjax import distributed, train
  distributed.maybe_initialize()
  results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir, override=FLAGS.override,
                                     resume_step=FLAGS.resume_step)
  print(json.dumps(results, default=str))


if __name__ == "__main__":
  cli.run(main, flags_parser=parse_flags)
