"""What the experiment scripts share: quiet start-up, one-line errors, the config listing.

Scripts call `quiet_startup()` before anything imports TensorFlow or JAX, and run their
`main` through `run(main)`: absl's app.run, with a known user error (a bad config field, an
unknown dataset, a missing workdir or data folder) printed as one line and exit code 2,
unless `--debug` asks for the traceback; a run stopped by SIGTERM / Ctrl-C after checkpointing
says so in one line and exits with 128 + the signal's number.
"""

import glob
import importlib.util
import logging
import os
import sys

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments", "configs")


def quiet_startup() -> None:
  """Keep TensorFlow's and JAX's start-up chatter out of the default output.

  TF (used only to read TFDS files) announces its oneDNN kernels on import; JAX warns about
  accelerator plugins it cannot initialise on a CPU machine. Neither concerns a user here.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)  # orbax and TFDS are chatty at INFO


def first_line(path: str) -> str:
  """The first paragraph of a Python file's module docstring on one line (without importing
  it): a summary that wraps over several lines is joined, never cut mid-sentence."""
  import ast
  with open(path) as f:
    doc = ast.get_docstring(ast.parse(f.read())) or ""
  return " ".join(doc.strip().split("\n\n")[0].split())


def list_configs(config_dir: str = CONFIG_DIR) -> list[tuple[str, str]]:
  """(name, one-line description) of every config file."""
  paths = sorted(glob.glob(os.path.join(config_dir, "*.py")))
  return [(os.path.splitext(os.path.basename(p))[0], first_line(p)) for p in paths
          if not os.path.basename(p).startswith("_")]


def load_module(path: str):
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# Config, data and workdir errors, and a training run stopped by a non-finite loss
# (genjax.train.NonFiniteLossError): one line each.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, FloatingPointError)


def run(main, flags_parser=None) -> None:
  """absl's app.run(main); user errors become one line on stderr and exit status 2
  (`--debug` in argv keeps the traceback). JAX's persistent compilation cache is on
  (genjax.compilation_cache.enable_for_scripts) unless argv has `--nocompilation_cache`."""
  from absl import app
  debug = "--debug" in sys.argv
  if debug:
    sys.argv.remove("--debug")
  cache = "--nocompilation_cache" not in sys.argv
  if not cache:
    sys.argv.remove("--nocompilation_cache")

  def main_with_cache(argv):
    from genjax import compilation_cache
    compilation_cache.enable_for_scripts(cache)
    return main(argv)

  from genjax.preemption import Interrupted
  try:
    if flags_parser is None:
      app.run(main_with_cache)
    else:
      app.run(main_with_cache, flags_parser=flags_parser)
  except Interrupted as e:
    print(str(e), file=sys.stderr)
    sys.exit(e.exit_code)
  except USER_ERRORS as e:
    if debug:
      raise
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"error: {message}", file=sys.stderr)
    print("(run again with --debug for the traceback)", file=sys.stderr)
    sys.exit(2)
