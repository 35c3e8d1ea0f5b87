"""The README and the docs stay true: their examples run, their commands name what exists.

The research-code example runs on 2 simulated CPU devices and the classical-model examples on
small random data; every other Python block must say it is an excerpt (`...`), and the
"Adding a model" excerpts must be the template families' own code. Every command
in a code block or in inline code names a script, flags, a config and config fields that
exist; every config has a row in the model tables; CI runs the README's set-up and test lines.
"""

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250


def code_blocks(path: Path, language: str) -> list[str]:
  """The fenced blocks of `language` ("" for none) in `path`, each as its source text."""
  blocks, current, info = [], None, None
  for line in path.read_text().split("\n"):
    if current is None and line.startswith("```"):
      current, info = [], line[3:].strip()
    elif current is not None and line.strip() == "```":
      if info == language:
        blocks.append("\n".join(current) + "\n")
      current = None
    elif current is not None:
      current.append(line)
  return blocks


def python_blocks() -> list[tuple[str, str]]:
  """(page name, source) of every ```python block of the README and the docs."""
  return [(path.name, block) for path in PAGES for block in code_blocks(path, "python")]


def the_block(marker: str) -> str:
  """The one Python block, over the README and every docs page, that contains `marker`."""
  (block,) = [block for _, block in python_blocks() if marker in block]
  return block


# A block containing one of these runs in a test below; every other block is an excerpt.
RESEARCH_EXAMPLE = "DataParallel("
GENERATIVE_EXAMPLE = "gaussian_nb.init_stats("
DISCRIMINATIVE_EXAMPLE = "logistic.fit(x_NxD"
RUN = (RESEARCH_EXAMPLE, GENERATIVE_EXAMPLE, DISCRIMINATIVE_EXAMPLE)


def test_research_code_example_runs_under_jit_and_pmap():
  block = the_block(RESEARCH_EXAMPLE)
  check = """
import numpy as np
assert int(state.step) == 2, int(state.step)
assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
assert np.asarray(metrics["d_loss"]).shape == (2,)  # one copy per device under pmap
assert np.all(np.isfinite(np.asarray(metrics["d_loss"])))
print("ok")
"""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", block + check], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().endswith("ok")


def small_problem() -> dict:
  """The names the classical examples use, bound to 3 well-separated classes in 5 dimensions."""
  import jax
  import jax.numpy as jnp
  rs = np.random.RandomState(0)
  y_N = np.repeat(np.arange(3), 20)
  x_NxD = rs.normal(size=(60, 5)) + 3.0 * np.eye(3, 5)[y_N]
  x_NxD, y_N = jnp.asarray(x_NxD, jnp.float32), jnp.asarray(y_N, jnp.int32)
  return {"x_NxD": x_NxD, "y_N": y_N, "num_classes": 3, "x": x_NxD, "x_test": x_NxD,
          "x_batch": x_NxD, "y_batch": y_N, "D": 5, "C": 3, "key": jax.random.key(0)}


def assert_posterior(log_probs_NxC, y_hat_N) -> None:
  """Rows of a normalised log P(y | x) (float32: C = 3 terms, a few ulps), and their arg max."""
  log_probs_NxC = np.asarray(log_probs_NxC, np.float64)
  np.testing.assert_allclose(np.log(np.exp(log_probs_NxC).sum(axis=1)), 0.0, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(y_hat_N), log_probs_NxC.argmax(axis=1))


def test_generative_classifier_example_runs_and_streams_to_the_closed_form():
  names = small_problem()
  exec(the_block(GENERATIVE_EXAMPLE), names)
  gaussian_nb = names["gaussian_nb"]
  # The example's last params come from the streaming fit; it claims `== fit(...)`. One batch
  # of 60 rows: the two sum in another order, so they agree to float32 rounding of 60 terms.
  closed = gaussian_nb.fit(names["x_NxD"], names["y_N"], 3, var_smoothing=1e-9)
  assert set(names["params"]) == set(closed)
  for name in closed:
    np.testing.assert_allclose(np.asarray(names["params"][name]), np.asarray(closed[name]),
                               rtol=1e-5, atol=1e-6, err_msg=name)
  log_probs_NxC = gaussian_nb.log_proba(closed, names["x_NxD"])
  assert_posterior(log_probs_NxC, gaussian_nb.predict(closed, names["x_NxD"]))
  assert gaussian_nb.sample(closed, names["key"], names["y_N"]).shape == (60, 5)


def test_discriminative_classifier_example_runs():
  names = small_problem()
  exec(the_block(DISCRIMINATIVE_EXAMPLE), names)
  assert names["log_probs_NxC"].shape == (60, 3)
  assert_posterior(names["log_probs_NxC"], names["y_hat"])
  assert names["logistic"].HYPERPARAMETERS["l2"] > 0


@pytest.mark.parametrize("page, block", python_blocks(), ids=lambda v: str(v)[:30])
def test_every_python_block_parses_and_runs_or_is_marked_an_excerpt(page, block):
  ast.parse(block)
  assert any(marker in block for marker in RUN) or "..." in block, (
      f"{page}: a Python block that no test runs must be an excerpt, marked with `...`; "
      f"or run it in tests/test_readme.py:\n{block}")


def test_every_genjax_import_in_the_examples_resolves():
  for page, block in python_blocks():
    for node in ast.walk(ast.parse(block)):
      if isinstance(node, ast.ImportFrom) and node.module.startswith("genjax"):
        module = importlib.import_module(node.module)
        for alias in node.names:
          assert hasattr(module, alias.name) or importlib.util.find_spec(
              f"{node.module}.{alias.name}"), f"{page}: from {node.module} import {alias.name}"


def test_the_adding_a_model_excerpts_are_the_templates_code():
  # Each excerpt follows the paragraph naming its module; its functions must have the module's
  # argument names and its statements (bar `...`) must be statements of the module's code.
  text = (ROOT / "docs" / "adding_a_model.md").read_text()
  pairs = re.findall(r"\(`(genjax/families/\w+\.py)`[^\n]*\n\n```python\n(.*?)```", text, re.S)
  assert len(pairs) == 2
  for module_path, excerpt in pairs:
    module = ast.parse((ROOT / module_path).read_text())
    functions = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}
    top_level = {ast.dump(node) for node in module.body}
    for node in ast.parse(excerpt).body:
      if not isinstance(node, ast.FunctionDef):
        assert ast.dump(node) in top_level, f"{module_path}: {ast.unparse(node)}"
        continue
      real = functions[node.name]
      assert [a.arg for a in node.args.args] == [a.arg for a in real.args.args], node.name
      statements = {ast.dump(s) for s in ast.walk(real) if isinstance(s, ast.stmt)}
      for statement in node.body:
        if ast.unparse(statement) != "...":
          assert ast.dump(statement) in statements, f"{module_path}: {ast.unparse(statement)}"


# ----------------------------------------------------------------------------- commands

def commands() -> list[tuple[str, str]]:
  """(page name, command) for every `python ...` in a shell block or in inline code."""
  found = []
  for path in PAGES:
    text = path.read_text()
    shell = "\n".join(code_blocks(path, "bash") + code_blocks(path, ""))
    shell = shell.replace("\\\n", " ")  # continuation lines
    inline = re.findall(r"`(python [^`]+)`", text)
    for line in shell.split("\n") + inline:
      line = line.split(" #")[0]
      # A launcher's command line holds the script's after `--`.
      for match in re.finditer(r"python (experiments/\S+|-m \S+)(.*?)(?=$| -- | && | ; )", line):
        found.append((path.name, match.group(0)))
  return found


def defined_flags(script: Path) -> set[str]:
  """The absl flags a script defines, or a sibling script it imports defines (`import evaluate`)."""
  source = script.read_text()
  flags = set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", source))
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      for alias in node.names:
        sibling = script.parent / f"{alias.name}.py"
        if sibling.exists() and sibling != script:
          flags |= defined_flags(sibling)
  return flags


def test_every_command_names_a_script_and_flags_that_exist():
  checked = 0
  for page, command in commands():
    target, *args = command.split()[1:]
    if target == "-m":
      module, *args = args
      assert importlib.util.find_spec(module), f"{page}: no module {module} in `{command}`"
      continue
    script = ROOT / target
    assert script.exists(), f"{page}: no script {target} in `{command}`"
    flags = defined_flags(script) | {"helpfull", "help"}
    for arg in args:
      if not arg.startswith("--"):
        continue
      name = arg[2:].split("=")[0]
      if name.startswith("config."):
        continue  # a config field: test_every_config_override_names_a_field
      assert name in flags or (name.startswith("no") and name[2:] in flags), (
          f"{page}: {target} defines no flag --{name} (`{command}`)")
    checked += 1
  assert checked > 40  # the pages' commands were found at all


def test_every_config_override_names_a_field():
  from genjax import config as gconfig
  checked = 0
  for page, command in commands():
    spec = re.search(r"--config=(experiments/configs/\w+\.py(?::[\w,]+)?)(?=\s|$)", command)
    if spec is None:
      continue
    config = gconfig.load(str(ROOT / spec.group(1)))
    for dotted in re.findall(r"--config\.([\w.]+)=", command):
      node = config
      for name in dotted.split("."):
        assert name in node, f"{page}: {spec.group(1)} has no field {dotted} (`{command}`)"
        node = node[name]
    checked += 1
  assert checked > 10


def test_every_benchmark_entry_named_exists(experiment_script):
  entries = set(experiment_script("benchmark").entries())
  for page, command in commands():
    if "experiments/benchmark.py" in command:
      for model in re.findall(r"--model=([a-z0-9_]+)(?=\s|$)", command):
        assert model in entries, f"{page}: no benchmark entry {model} (`{command}`)"


def test_every_path_named_exists():
  for path in PAGES:
    for named in set(re.findall(r"\b((?:experiments|genjax|tests)/[a-z0-9_/]+\.py)\b",
                                path.read_text())):
      assert (ROOT / named).exists(), f"{path.name} names {named}, which does not exist"


def test_every_genjax_name_in_code_resolves():
  # `genjax.a.b.c` in inline code: modules and their attributes (a renamed module or function
  # breaks the page, as a moved file does).
  for path in PAGES:
    for name in set(re.findall(r"`(genjax(?:\.\w+)+)", path.read_text())):
      parts = name.split(".")
      target = importlib.import_module("genjax")
      for end, attribute in enumerate(parts[1:], start=2):
        if not hasattr(target, attribute):
          try:  # a submodule not imported yet becomes its package's attribute
            importlib.import_module(".".join(parts[:end]))
          except ModuleNotFoundError:
            pass
        assert hasattr(target, attribute), f"{path.name} names {name}, which does not exist"
        target = getattr(target, attribute)


# ----------------------------------------------------------------------------- the README

def test_every_config_has_a_row_in_the_model_tables():
  configs = sorted(p.stem for p in (ROOT / "experiments" / "configs").glob("*.py"))
  assert len(configs) > 40
  for page in ("README.md", "docs/getting_started.md"):
    text = (ROOT / page).read_text()
    tables = "\n".join(line for line in text.split("\n") if line.startswith("| "))
    missing = [c for c in configs if f"`{c}`" not in tables]
    assert not missing, f"{page}'s model table lacks {missing}"


def test_the_configs_said_to_have_the_dial_are_those_dial_py_weighs(experiment_script):
  weighable = set(experiment_script("dial").weighable())  # configs whose model has joint_weight
  assert len(weighable) >= 4
  configs = {p.stem for p in (ROOT / "experiments" / "configs").glob("*.py")}
  for page in ("README.md", "docs/getting_started.md"):
    (paragraph,) = re.findall(r"^The dial between the two sides.*?\n\n",
                              (ROOT / page).read_text(), flags=re.S | re.M)
    named = {name for name in re.findall(r"`(\w+)`", paragraph) if name in configs}
    assert named == weighable, f"{page}: the dial's configs are {sorted(weighable)}"


def github_anchor(heading: str) -> str:
  """The anchor GitHub (and the site: mkdocs.yml's slugify) gives a Markdown heading."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_readme_link_finds_its_page_and_heading():
  links = re.findall(r"\]\(([^)#:]+)(?:#([^)]+))?\)", (ROOT / "README.md").read_text())
  assert len(links) > 10
  for target, anchor in links:
    assert (ROOT / target).exists(), f"README links {target}, which does not exist"
    if anchor:
      headings = re.findall(r"^#+ (.*)$", (ROOT / target).read_text(), flags=re.M)
      assert anchor in {github_anchor(h) for h in headings}, f"README links {target}#{anchor}"


def test_readme_is_a_front_page():
  assert len((ROOT / "README.md").read_text().splitlines()) <= MAX_README_LINES


def test_ci_runs_the_readme_set_up_and_test_lines():
  (first, *_) = code_blocks(ROOT / "README.md", "bash")
  lines = [line.split(" #")[0].rstrip() for line in first.split("\n")]
  set_up = [line for line in lines if line.startswith("pip install")]
  test = [line for line in lines if line.startswith("pytest")]
  assert len(set_up) == 1 and len(test) == 1, first
  ci = (ROOT / ".ci" / "run").read_text().split("\n")
  assert set_up[0] in ci and test[0] in ci, (set_up, test)
  assert "mkdocs build --strict" in test[0]
