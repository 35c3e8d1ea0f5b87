"""Every config file is written one way (genjax.config's module docstring): its get_config is
a single `return <family>.experiment_config(arg, ...)`, `<family>` the genjax.families module
whose family the config names; no other builder name is left. Reads the files (ast) and
builds each config once; nothing trains."""

import ast
import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
NAMES = sorted(p.stem for p in CONFIGS.glob("*.py"))
# The builders' names before there was one (`git grep` finds none outside this file).
OLD_BUILDERS = ("classical" + "_config", "config" + "_for", "burda" + "_config")


def builder_call(name: str) -> tuple[str, ast.Call]:
  """(the module get_config calls experiment_config of, the call) of config `name`; fails
  unless get_config's body is that one return statement."""
  tree = ast.parse((CONFIGS / f"{name}.py").read_text())
  families = {alias.asname or alias.name: alias.name for node in tree.body
              if isinstance(node, ast.ImportFrom) and node.module == "genjax.families"
              for alias in node.names}
  (get_config,) = [node for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name == "get_config"]
  body = [s for s in get_config.body
          if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]  # a docstring
  assert len(body) == 1 and isinstance(body[0], ast.Return), (
      f"{name}: get_config must be one return statement, has {[type(s).__name__ for s in body]}")
  call = body[0].value
  assert (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
          and call.func.attr == "experiment_config" and isinstance(call.func.value, ast.Name)
          and call.func.value.id in families), (
      f"{name}: get_config must return <family>.experiment_config(arg, ...), a module of "
      f"genjax.families, not {ast.unparse(call)}")
  return families[call.func.value.id], call


@pytest.mark.parametrize("name", NAMES)
def test_get_config_is_one_call_of_its_familys_builder(name):
  from test_every_config import SMOKE

  from genjax import config as gconfig

  family, call = builder_call(name)
  # The argument goes through untouched, as the first positional argument, and only there.
  assert [ast.unparse(a) for a in call.args] == ["arg"], ast.unparse(call)
  assert all(k.arg is None or ast.unparse(k.value) != "arg" for k in call.keywords)
  # The module called is the family the config trains (classical for every classical model).
  assert gconfig.load(f"{CONFIGS / name}.py:{SMOKE[name]}").family == family


def test_no_other_builder_name_is_left():
  pattern = re.compile("|".join(OLD_BUILDERS))
  this = Path(__file__).resolve()
  found = []
  paths = [REPO_ROOT / "README.md"]
  for top in ("genjax", "experiments", "tests", "docs"):
    paths += [Path(d) / f for d, _, files in os.walk(REPO_ROOT / top) for f in files]
  for path in paths:
    if path.suffix in (".py", ".md") and path != this:
      found += [f"{path.relative_to(REPO_ROOT)}:{i}"
                for i, line in enumerate(path.read_text().splitlines(), 1)
                if pattern.search(line)]
  assert not found, found


def test_dcgan_fashion_mnist_is_dcgan_mnist_on_fashion_mnist():
  from genjax import config as gconfig
  for arg in ("", ":smoke"):
    mnist = gconfig.load(f"{CONFIGS / 'dcgan_mnist'}.py{arg}").to_dict()
    fashion = gconfig.load(f"{CONFIGS / 'dcgan_fashion_mnist'}.py{arg}").to_dict()
    assert (mnist["data"].pop("name"), fashion["data"].pop("name")) == ("mnist", "fashion_mnist")
    assert mnist == fashion

