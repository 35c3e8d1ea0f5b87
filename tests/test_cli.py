"""genjax.cli: renamed flags and `--config.FIELD` overrides fail or pass in one line, before absl
parses argv; a full disk is one line; the library computes no path into experiments/."""

import ast
import errno
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO_ROOT

from genjax import cli

RENAMED = {"c2": "--config.model.c2", "conll_dir": "--config.data.data_dir",
           "verbose": "--config.train.progress"}


@pytest.mark.parametrize("arg", ["--c2=0.5", "-c2=0.5", "--c2", "--conll_dir=/x"])
def test_a_renamed_flag_names_its_new_form(arg):
  old = arg.lstrip("-").partition("=")[0]
  assert cli.renamed_flag_error(RENAMED, ["prog", "--workdir=w", arg]) == (
      f"--{old} is now {RENAMED[old]}")


def test_a_renamed_boolean_flag_is_caught_in_its_no_form():
  assert cli.renamed_flag_error(RENAMED, ["prog", "--noverbose"]) == (
      "--verbose is now --config.train.progress")


@pytest.mark.parametrize("argv", [
    ["prog", "--workdir=w", "--c2x=1", "--config.model.c2=1"],  # other flags, new forms
    ["prog", "c2", "--", "--c2=1"],  # a positional value; anything after `--`
    ["prog"],
])
def test_other_arguments_pass(argv):
  assert cli.renamed_flag_error(RENAMED, argv) is None


def test_config_overrides_are_taken_out_of_argv():
  argv = ["prog", "--workdir=w", "--config.model.l2=0.5", "-config.data.data_dir=/d",
          "--config.model.name=a=b", "--", "--config.model.l1=1"]
  rest, overrides = cli.split_config_overrides(argv)
  assert rest == ["prog", "--workdir=w", "--", "--config.model.l1=1"]
  assert overrides == {"model.l2": "0.5", "data.data_dir": "/d", "model.name": "a=b"}


@pytest.mark.parametrize("arg", ["--config.model.l2", "--config.=1"])
def test_a_config_override_without_a_value_is_refused(arg):
  with pytest.raises(ValueError, match="--config.FIELD=VALUE"):
    cli.split_config_overrides(["prog", arg])


SCRIPT = textwrap.dedent("""\
    from absl import flags
    from genjax import cli
    flags.DEFINE_string("workdir", None, "A folder.")

    def main(argv, overrides):
      print(sorted(overrides.items()), flags.FLAGS.workdir, argv[1:])

    cli.run(main, renamed={"c2": "--config.model.c2"}, config_overrides=True)
    """)


def run_script(tmp_path, *args):
  path = tmp_path / "script.py"
  path.write_text(SCRIPT)
  return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                        timeout=120, cwd=REPO_ROOT)


def test_run_refuses_a_renamed_flag_in_one_line_with_exit_2(tmp_path):
  proc = run_script(tmp_path, "--workdir=w", "--c2=0.5")
  assert proc.returncode == 2
  assert proc.stderr.strip() == "error: --c2 is now --config.model.c2"
  assert proc.stdout == ""


def test_run_hands_the_overrides_to_main(tmp_path):
  proc = run_script(tmp_path, "--config.model.c2=0.5", "--workdir=w")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "[('model.c2', '0.5')] w []"


RAISES = textwrap.dedent("""\
    import sys
    from genjax import cli

    def main(argv):
      raise OSError(int(sys.argv[1]), "no room", "/w/checkpoints")

    cli.run(main)
    """)


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EACCES])
def test_run_reports_a_full_disk_in_one_line_with_exit_2(tmp_path, number):
  """A full disk, a quota or a file-size limit (genjax.checkpoint.CheckpointWriteError is one)
  is one line; another OS error keeps its traceback."""
  path = tmp_path / "raises.py"
  path.write_text(RAISES)
  proc = subprocess.run([sys.executable, str(path), str(number)], capture_output=True, text=True,
                        timeout=120, cwd=REPO_ROOT)
  if number == errno.EACCES:
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    return
  assert proc.returncode == 2
  assert proc.stderr.splitlines() == [f"error: [Errno {number}] no room: '/w/checkpoints'",
                                      "(run again with --debug for the traceback)"]


def _docstrings(tree: ast.AST) -> set[int]:
  return {id(node.body[0].value) for node in ast.walk(tree)
          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
          and node.body and isinstance(node.body[0], ast.Expr)
          and isinstance(node.body[0].value, ast.Constant)}


def test_the_library_computes_no_path_into_experiments():
  """A path into experiments/ needs the word in a string; docstrings may name the scripts."""
  found = []
  for path in sorted((REPO_ROOT / "genjax").rglob("*.py")):
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}" for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              and "experiments" in node.value and id(node) not in docs]
  assert found == []
  assert not hasattr(cli, "CONFIG_DIR")


SCRIPTS = sorted((REPO_ROOT / "experiments").glob("*.py"))


def _main_call(tree: ast.Module) -> ast.Call | None:
  """The call in the script's `if __name__ == "__main__":` block that runs `main`."""
  for node in tree.body:
    if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
      calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)
               and any(isinstance(a, ast.Name) and a.id == "main" for a in n.args)]
      return calls[0] if calls else None
  return None


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_runs_main_through_cli_run(path):
  call = _main_call(ast.parse(path.read_text()))
  assert call is not None and ast.unparse(call.func) == "cli.run", path.name


RENAMING = ("chunk_crf", "classify", "generative_samples", "hmm_casino", "ng_jordan", "pos_tag",
            "tan")


@pytest.mark.parametrize("name", RENAMING)
def test_a_renamed_flag_is_no_longer_defined(name):
  """A script's RENAMED names flags it no longer defines (else the old name would be refused
  although the script still reads it); each maps to a new form, and the script passes it to
  cli.run."""
  import importlib.util

  from absl import flags
  before = set(flags.FLAGS)
  path = REPO_ROOT / "experiments" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"renaming_{name}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    defined = set(flags.FLAGS) - before
  finally:
    for flag in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, flag)
  assert module.RENAMED and not set(module.RENAMED) & defined
  assert all(isinstance(v, str) and v.strip() for v in module.RENAMED.values())
  assert "renamed=RENAMED" in ast.unparse(_main_call(ast.parse(path.read_text())))


def test_chunk_crf_takes_its_config_fields_as_overrides(experiment_script):
  chunk_crf = experiment_script("chunk_crf")
  config = chunk_crf.build_config({"model.l2": "0.5", "model.optimizer": "adam",
                                   "data.data_dir": "/conll"})
  assert (config.model.l2, config.model.optimizer, config.data.data_dir) == (0.5, "adam",
                                                                              "/conll")
  assert set(chunk_crf.MODEL_FIELDS) <= set(config.model)  # each old flag names a real field
  with pytest.raises(ValueError, match="no field 'model.c2'"):
    chunk_crf.build_config({"model.c2": "1"})


def test_pos_tag_and_tan_set_their_overrides_on_every_fit(experiment_script):
  pos_tag = experiment_script("pos_tag")
  for task in ("pos", "chunk", "chunk_paired"):
    c = pos_tag.task_config(task, {"model.trans_k": "0.2", "data.data_dir": "/conll"})
    assert (c.model.trans_k, c.data.data_dir) == (0.2, "/conll")
    assert c.model.paired_states == (task == "chunk_paired")  # the task's own fields stay
  with pytest.raises(ValueError, match="no field 'model.nope'"):
    pos_tag.task_config("pos", {"model.nope": "1"})
  tan = experiment_script("tan")
  c = tan.fit_config("wine", False, {"model.num_bins": "3"}, split_seed=4)
  assert (c.model.num_bins, c.model.tree, c.data.split_seed) == (3, False, 4)
  assert tan.fit_config("wine", True, {}).model.tree
