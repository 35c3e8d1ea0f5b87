"""experiments/paper_runs.py: the list of anchored runs with their costs, the smoke table of every
run, and the rules by which a run's workdir is read back.

The smoke table reads back the smoke runs of the configs that tests/test_every_config.py would
otherwise run (its check, run here into the table's workdir: PRE_MADE), so the suite trains each
of those once; the table's own runs (the classification RBM's variants) train here.
"""

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from test_every_config import (  # noqa: F401 (a module fixture)
  PAPER_RUNS,
  SMOKE,
  check_smoke_run,
  read_each_split_once,
)
from test_readme import defined_flags

SCRIPT = REPO_ROOT / "experiments" / "paper_runs.py"


@pytest.fixture(scope="module")
def paper_runs(experiment_script):
  return experiment_script("paper_runs")


@pytest.fixture(scope="module")
def listed(paper_runs, tfds_data_dir) -> list[dict]:
  """--list's rows at the default throughput (every run's step traced once for the module)."""
  return paper_runs.listing(paper_runs.Throughput())


def smoke_configs(paper_runs) -> dict[str, str]:
  """{smoke workdir name: smoke config} of every run."""
  return {r.dirname(smoke=True): r.smoke for r in paper_runs.RUNS}


# ----------------------------------------------------------------------------- --list

def test_list_names_every_run_with_its_anchor(paper_runs, listed):
  assert [r["name"] for r in listed] == [r.name for r in paper_runs.RUNS]
  assert len(listed) == 18  # Burda 4, Salimans 1, Kingma 2 x 4, Larochelle & Bengio 4, S&M 1
  text = paper_runs.list_markdown(listed, paper_runs.Throughput())
  for run in paper_runs.RUNS:
    assert f"| `{run.name}` | {run.metric.label}: {run.anchor.text(run.metric)}" in text
  by_name = {r["name"]: r for r in listed}
  assert by_name["ssgan_100"]["anchor"] == {"value": 0.93, "sd": 0.065, "seeds": 10,
                                           "source": "Salimans et al. 2016, section 5"}
  assert by_name["rbm_cd25"]["anchor"]["value"] == -86.34
  assert by_name["iwae_burda2"]["anchor"]["value"] == 82.90


def test_list_steps_and_flops_are_the_schedules_and_the_layers(listed):
  """The steps of each schedule, and the traced FLOPs against genjax.flops' closed form of an
  MLP VAE's step (784-200-200-(50, 50), 50-200-200-784, batch 20; M1: 600 units, batch 100)."""
  from genjax.flops import vae_step_flops
  by_name = {r["name"]: r for r in listed}
  burda = vae_step_flops((784, 200, 200, 100), (50, 200, 200, 784), 20, 1)
  assert by_name["vae_burda1"]["flops_per_step"] == burda == 44_560_000
  assert by_name["iwae_burda1"]["flops_per_step"] == vae_step_flops(
      (784, 200, 200, 100), (50, 200, 200, 784), 20, 50)
  m1 = vae_step_flops((784, 600, 600, 100), (50, 600, 600, 784), 100, 1)
  for n in (100, 600, 1000, 3000):
    assert by_name[f"m1m2_{n}"]["pretrain_flops_per_step"] == m1
    assert by_name[f"m1m2_{n}"]["pretrain_steps"] == 120_000
  steps = {"vae_burda1": 9_840_000, "iwae_burda2": 9_840_000, "ssgan_100": 180_000,
           "m2_600": 180_000, "classrbm_generative": 25_000, "rbm_cd25": 120_000}
  assert {k: by_name[k]["steps"] for k in steps} == steps
  assert by_name["ssgan_100"]["members"] == 10 and by_name["m2_100"]["members"] == 5
  assert by_name["vae_burda1"]["members"] == 1


def test_list_estimate_is_steps_times_flops_over_the_assumed_throughput(paper_runs, listed):
  peak, utilisation, floor = 67e12, 0.25, 100e-6  # the stated defaults
  assert paper_runs.Throughput() == paper_runs.Throughput(67.0, 0.25, 100.0)
  for r in listed:
    step = max(r["members"] * r["flops_per_step"] / (peak * utilisation), floor)
    pretrain = max(r["pretrain_flops_per_step"] / (peak * utilisation), floor)
    want = r["steps"] * step + r["members"] * r["pretrain_steps"] * pretrain
    assert want > 0 and math.isclose(r["device_seconds"], want, rel_tol=1e-12), r["name"]
    assert r["total_flops"] == (r["steps"] * r["members"] * r["flops_per_step"]
                                + r["members"] * r["pretrain_steps"] * r["pretrain_flops_per_step"])
  # Burda's batch-20 steps are below the floor: 9.84M steps of 100 us.
  assert {r["name"]: r["device_seconds"] for r in listed}["vae_burda1"] == pytest.approx(984.0)


def test_list_commands_name_a_script_flags_and_a_config_that_exist(paper_runs, listed):
  from genjax import studies
  assert [r["command"] for r in listed] == [
      f"python experiments/paper_runs.py --run={r.name} --workdir=runs/paper"
      for r in paper_runs.RUNS]
  assert {"run", "workdir", "list", "smoke"} <= defined_flags(SCRIPT)
  for r in listed:
    run = paper_runs.BY_NAME[r["name"]]
    # By hand exactly where train.py's command line can set the seeds.
    lacks = r["seeds"] > 1 and "population" not in studies.load_config(run.spec())
    assert (r["by_hand"] is None) == lacks, r["name"]
    for command in r["by_hand"].split(" && ") if r["by_hand"] else []:
      script, *args = command.split()[1:]
      known = defined_flags(REPO_ROOT / script)
      options = dict(a[2:].split("=", 1) for a in args)
      assert all(k in known or k.startswith("config.") for k in options), command
      if script == "experiments/train.py":
        overrides = {k[len("config."):]: v for k, v in options.items() if k.startswith("config.")}
        config = studies.load_config(str(REPO_ROOT / options["config"]), overrides)
        assert config.get("population", 1) == r["seeds"], command
        assert options["workdir"] == f"runs/paper/{r['name']}"
      else:
        assert options == {"workdir": f"runs/paper/{r['name']}", "evals": run.metric.evaluator}


def test_the_docs_hold_the_lists_table_and_commands(paper_runs, listed):
  docs = (REPO_ROOT / "docs" / "accelerators.md").read_text()
  lines = paper_runs.list_markdown(listed, paper_runs.Throughput()).split("\n")
  shown = [line for line in lines if line.startswith(("|", "python", "In all"))]
  missing = [line for line in shown if line not in docs]
  assert not missing, ("docs/accelerators.md is not `python experiments/paper_runs.py --list`'s "
                       f"output: {missing}")


def test_an_unknown_run_fails_in_one_line_naming_the_known_ones(paper_runs):
  with pytest.raises(ValueError, match="expected `all` or some of .*'m1m2_3000'"):
    paper_runs.select(["vae_burda1", "burda3"])
  assert [r.name for r in paper_runs.select(["all"])] == list(paper_runs.BY_NAME)
  out = subprocess.run([sys.executable, str(SCRIPT), "--run=burda3", "--workdir=unused"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 2, out.stderr
  first = out.stderr.splitlines()[0]  # then genjax.cli's hint: --debug for the traceback
  assert first.startswith("error: unknown paper runs ['burda3']") and "'rbm_cd25'" in first


# ----------------------------------------------------------------------------- reading back

def test_a_population_row_is_its_members_mean_and_sample_sd(paper_runs, tmp_path):
  run = paper_runs.BY_NAME["m2_100"]
  config = paper_runs.run_config(run)
  assert config.population == 5
  errors = [0.10, 0.20, 0.30, 0.40, 0.50]
  for i, e in enumerate(errors):
    member = tmp_path / "members" / str(i)
    member.mkdir(parents=True)
    (member / "results.json").write_text(json.dumps({"step": 7, "test": {"error": e}}))
  row = paper_runs.row(run, config, str(tmp_path), {"step": 7, "train_seconds": 60.0})
  assert row["values"] == pytest.approx([10.0, 20.0, 30.0, 40.0, 50.0])  # percent
  assert row["mean"] == pytest.approx(30.0)
  assert row["sd"] == pytest.approx(math.sqrt(250.0))  # sum of squares 1000 over 4
  assert (row["seeds"], row["steps"]) == (5, 7)


def test_a_workdir_is_read_back_only_when_it_holds_the_finished_scored_run(paper_runs, tmp_path):
  from genjax import workdir as workdir_lib
  run = paper_runs.BY_NAME["vae_burda1"]
  config = paper_runs.run_config(run)
  results = {"step": 9_840_000, "test": {"nll": 86.8}}

  def recorded(changes: dict, scored: bool = True):
    recorded_config = config.to_dict()
    for dotted, value in changes.items():
      section, field = dotted.split(".")
      recorded_config[section][field] = value
    (tmp_path / "config.json").write_text(json.dumps(recorded_config, default=str))
    test = results["test"] if scored else {"elbo": -90.0}
    (tmp_path / "results.json").write_text(json.dumps({**results, "test": test}))
    return paper_runs.finished(config, str(tmp_path), run.metric)

  assert paper_runs.finished(config, str(tmp_path), run.metric) is None  # a new workdir
  assert recorded({}) == results
  # What does not change the results: logging, checkpoints (train.py's own run, say).
  assert recorded({"train.progress": True, "train.log_every": 7}) == results
  assert recorded({}, scored=False) is None  # not scored for the anchor's figure yet
  assert recorded({"train.num_epochs": 100}) is None  # a shorter run: trained on, not read
  with pytest.raises(workdir_lib.WorkdirError):
    recorded({"model.k": 5})


def test_a_smoke_table_and_a_full_one_do_not_mix(paper_runs, tmp_path):
  (tmp_path / "paper_runs.json").write_text(json.dumps({"smoke": True, "rows": []}))
  with pytest.raises(ValueError, match="holds a table of smoke runs"):
    paper_runs.run_all([], str(tmp_path), smoke=False)


# ----------------------------------------------------------------------------- --smoke

def pre_made(paper_runs) -> set[str]:
  """The smoke workdirs that tests/test_every_config.py's check makes here."""
  return {name for name, spec in smoke_configs(paper_runs).items() if name in PAPER_RUNS}


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("paper_runs_smoke")


def test_the_smoke_runs_made_here_are_those_test_every_config_leaves(paper_runs):
  made = pre_made(paper_runs)
  assert made == PAPER_RUNS
  for name in made:  # the same smoke config, so that the table reads the check's workdir
    assert smoke_configs(paper_runs)[name] == f"{name}:{SMOKE[name]}"


@pytest.mark.parametrize("name", sorted(PAPER_RUNS))
def test_config_smoke_run_trains_and_evaluates(name, smoke_dir, experiment_script, tfds_data_dir):
  check_smoke_run(name, smoke_dir, experiment_script, tfds_data_dir)


def test_smoke_table_has_every_run_beside_its_anchor(paper_runs, smoke_dir, tfds_data_dir):
  made = {name: (smoke_dir / name / "results.json").stat().st_mtime_ns
          for name in pre_made(paper_runs) if (smoke_dir / name / "results.json").exists()}
  rows = paper_runs.run_all(list(paper_runs.RUNS), str(smoke_dir), smoke=True)

  assert [r["name"] for r in rows] == [r.name for r in paper_runs.RUNS]
  for run, r in zip(paper_runs.RUNS, rows, strict=True):
    assert r["anchor"]["value"] == run.anchor.value and r["metric"] == run.metric.label
    assert r["workdir"] == os.path.abspath(smoke_dir / run.dirname(smoke=True))
    assert r["seeds"] == 1 and len(r["values"]) == 1 and math.isfinite(r["mean"]), r
  by_name = {r["name"]: r for r in rows}
  # The four M2 runs share m2_mnist's smoke run; the classification RBM's four are their own.
  assert len({by_name[f"m2_{n}"]["workdir"] for n in (100, 600, 1000, 3000)}) == 1
  assert len({by_name[f"classrbm_{v}"]["workdir"] for v in
              ("generative", "discriminative", "hybrid", "sparse_hybrid")}) == 4
  assert 0 <= by_name["ssgan_100"]["mean"] <= 100 and by_name["vae_burda1"]["mean"] > 0
  assert by_name["rbm_cd25"]["mean"] < 0  # log p(v) of binary images
  # The configs' own smoke runs were read back, not trained again.
  assert made == {n: (smoke_dir / n / "results.json").stat().st_mtime_ns for n in made}

  saved = json.loads((smoke_dir / "paper_runs.json").read_text())
  assert saved["smoke"] is True and [r["name"] for r in saved["rows"]] == list(by_name)
  table = (smoke_dir / "paper_runs.md").read_text()
  for run in paper_runs.RUNS:
    assert f"| {run.name} | {run.metric.label} ({run.metric.unit}) | " \
           f"{run.anchor.text(run.metric)} ({run.anchor.source}) |" in table
  # Run again: every row is read back.
  times = {p: p.stat().st_mtime_ns for p in smoke_dir.glob("*/results.json")}
  assert paper_runs.run_all(list(paper_runs.RUNS), str(smoke_dir), smoke=True) == rows
  assert times == {p: p.stat().st_mtime_ns for p in smoke_dir.glob("*/results.json")}
