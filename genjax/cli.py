"""What the experiment scripts share: quiet start-up, one-line errors, the config listing.

Scripts call `quiet_startup()` before anything imports TensorFlow or JAX, and run their
`main` through `run(main)`: absl's app.run, with a known user error (a bad config field, an
unknown dataset, a missing workdir or data folder, a full disk) printed as one line and exit
code 2, unless `--debug` asks for the traceback; a run stopped by SIGTERM / Ctrl-C after
checkpointing says so in one line and exits with 128 + the signal's number. A flag that a
script renamed fails in one line naming its new form (`run(main, renamed={...})`), and a
script that builds its configs itself takes `--config.FIELD=VALUE` overrides
(`run(main, config_overrides=True)`).

The data folders have one name each, in every script and config:
- `data_dir`: the folder a dataset's reader reads: TFDS's data folder for the image sets
  (default TFDS_DATA_DIR), the CoNLL-2000 folder for conll2000 (default
  ../shared/data/conll2000); a config's `data.data_dir`;
- `idx_dir`: the raw IDX files of one image dataset (e.g. ../shared/data/mnist), read instead
  of TFDS; a config's `data.idx_dir`.
A script that trains through configs takes them as `--config.data.data_dir` and
`--config.data.idx_dir`; a flag of a script's own has the field's name and meaning (tan.py's
`--idx_dir`, its MNIST fits' only; ng_jordan.py's `--idx_dir` with `{dataset}` for each image
set). The config folder itself is the caller's (the scripts pass their own experiments/configs),
never a default of the library.
"""

import errno
import glob
import importlib.util
import logging
import os
import sys


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


def list_configs(config_dir: str) -> list[tuple[str, str]]:
  """(name, one-line description) of every config file in `config_dir`."""
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
# A full disk, a quota or a file-size limit met while writing (a checkpoint that cannot be
# written: genjax.checkpoint.CheckpointWriteError): one line too.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _flag_name(arg: str) -> str | None:
  """The flag name of a command-line item (`--name=value`, `-name`), or None for a value."""
  if not arg.startswith("-") or arg in ("-", "--"):
    return None
  return arg.lstrip("-").partition("=")[0]


def renamed_flag_error(renamed: dict[str, str], argv: list[str]) -> str | None:
  """The one-line error for the first flag of `argv` (after the program name, up to `--`) that
  `renamed` ({old flag name: its new form}, e.g. {"c2": "--config.model.c2"}) names, its
  `--noNAME` form included; None where argv uses none."""
  for arg in argv[1:]:
    if arg == "--":
      break
    name = _flag_name(arg)
    if name is None:
      continue
    old = name if name in renamed else name[2:] if name.startswith("no") else None
    if old in renamed:
      return f"--{old} is now {renamed[old]}"
  return None


CONFIG_FLAG = "config."


def split_config_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """(argv without its `--config.FIELD=VALUE` items, {FIELD: VALUE text}) for a script that
  builds its configs itself (genjax.studies.override sets them, refusing an unknown field).
  Raises ValueError for an override without a value."""
  rest, overrides = [], {}
  for i, arg in enumerate(argv):
    if arg == "--":
      rest.extend(argv[i:])
      break
    name = _flag_name(arg) if i else None
    if name is None or not name.startswith(CONFIG_FLAG):
      rest.append(arg)
      continue
    field, eq, value = arg.lstrip("-")[len(CONFIG_FLAG):].partition("=")
    if not eq or not field:
      raise ValueError(f"{arg!r}: a config override is --config.FIELD=VALUE, e.g. "
                       "--config.model.l2=0.5")
    overrides[field] = value
  return rest, overrides


def run(main, flags_parser=None, renamed: dict[str, str] | None = None,
        config_overrides: bool = False) -> None:
  """absl's app.run(main); user errors become one line on stderr and exit status 2
  (`--debug` in argv keeps the traceback). JAX's persistent compilation cache is on
  (genjax.compilation_cache.enable_for_scripts) unless argv has `--nocompilation_cache`.

  `renamed` ({old flag name: its new form}): such a flag fails in one line naming the new form
  (exit 2) before absl parses argv. `config_overrides`: the `--config.FIELD=VALUE` items are
  taken out of argv before absl parses it and `main` is called as main(argv, {FIELD: VALUE
  text})."""
  from absl import app
  debug = "--debug" in sys.argv
  if debug:
    sys.argv.remove("--debug")
  cache = "--nocompilation_cache" not in sys.argv
  if not cache:
    sys.argv.remove("--nocompilation_cache")
  error = renamed_flag_error(renamed or {}, sys.argv)
  overrides = {}
  if error is None and config_overrides:
    try:
      sys.argv[:], overrides = split_config_overrides(sys.argv)
    except ValueError as e:
      error = str(e)
  if error is not None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)

  def main_with_cache(argv):
    from genjax import compilation_cache
    compilation_cache.enable_for_scripts(cache)
    return main(argv, overrides) if config_overrides else main(argv)

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
  except OSError as e:
    if debug or e.errno not in DISK_FULL_ERRNOS:
      raise
    print(f"error: {e}", file=sys.stderr)
    print("(run again with --debug for the traceback)", file=sys.stderr)
    sys.exit(2)
