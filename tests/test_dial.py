"""experiments/dial.py end to end on a UCI set: points as workdirs, resumed studies, the
table's numbers against each point's results.json, the refusals."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

CONFIG = "bernoulli_nb:breast_cancer"
LABELS = ["50", "all"]
SEEDS = 2
CONFIG_DIR = str(REPO_ROOT / "experiments" / "configs")


@pytest.fixture(scope="module")
def dial(experiment_script):
  return experiment_script("dial")


@pytest.fixture
def fits(monkeypatch) -> list:
  """The workdirs genjax.train trains or fits in, in order (reading one back is not a fit)."""
  from genjax import train
  calls = []
  real = train.train_and_evaluate

  def counting(config, workdir, *args, **kwargs):
    calls.append(workdir)
    return real(config, workdir, *args, **kwargs)

  monkeypatch.setattr(train, "train_and_evaluate", counting)
  return calls


def read(path) -> dict:
  return json.loads(path.read_text())


def test_dial_resumes_adds_rows_and_tabulates_the_points(dial, fits, tmp_path):
  rows = dial.dial(CONFIG, str(tmp_path), ["0", "1"], LABELS, SEEDS)
  assert len(rows) == 4 and len(fits) == 2 * 2 * SEEDS
  first = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("w*/results.json")}
  assert len(first) == 8

  # A later invocation with one more weight reads the four points back and fits only the new.
  del fits[:]
  rows = dial.dial(CONFIG, str(tmp_path), ["0", "0.5", "1"], LABELS, SEEDS)
  assert sorted(fits) == sorted(str(tmp_path / f"w0.5_l{label}_s{i}")
                                for label in LABELS for i in range(SEEDS))
  again = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("w[01]_*/results.json")}
  assert again == first
  assert [(r["labels"], r["joint_weight"]) for r in rows] == [
      (label, w) for label in LABELS for w in (0.0, 0.5, 1.0)]
  assert read(tmp_path / "dial.json") == rows
  assert (tmp_path / "dial.png").stat().st_size > 0

  # Each row is its points' results.json: mean and sample sd over the seeds.
  train_rows = 569 - 142  # breast_cancer's rows less its test part, round(0.25 * 569) (splits)
  for r in rows:
    points = [tmp_path / f"w{r['joint_weight']:g}_l{r['labels']}_s{i}" for i in range(SEEDS)]
    results = [read(p / "results.json") for p in points]
    configs = [read(p / "config.json") for p in points]
    assert [c["seed"] for c in configs] == list(range(SEEDS))
    assert {c["model"]["joint_weight"] for c in configs} == {r["joint_weight"]}
    assert {c["data"]["train_size"] for c in configs} == {50 if r["labels"] == "50" else 0}
    fitted = [json.loads((p / "metrics.jsonl").read_text().splitlines()[0]) for p in points]
    assert [f["num_train"] for f in fitted] == [50 if r["labels"] == "50" else train_rows] * SEEDS
    errors = np.array([1.0 - x["test"]["accuracy"] for x in results])
    losses = np.array([x["test"]["log_loss"] for x in results])
    # The same float64 sums in another order: a few ulps of numbers below 10.
    assert r["error_mean"] == pytest.approx(errors.mean(), abs=1e-12)
    assert r["error_sd"] == pytest.approx(errors.std(ddof=1), abs=1e-12)
    assert r["log_loss_mean"] == pytest.approx(losses.mean(), abs=1e-12)
    assert r["log_loss_sd"] == pytest.approx(losses.std(ddof=1), abs=1e-12)
    assert r["test_log_likelihood"] is None and r["steps"] is None
    assert (r["config"], r["seeds"]) == (CONFIG, SEEDS)
  # The seeds' subsets of 50 rows differ, so the two fits of a point differ.
  subsets = [read(tmp_path / f"w1_l50_s{i}" / "results.json")["test"]["log_loss"]
             for i in range(SEEDS)]
  assert subsets[0] != subsets[1]

  # lambda = 1 on every row is the config as it is: the same fit as a plain run of it.
  from genjax import studies, train
  plain = train.train_and_evaluate(
      studies.load_config(f"{CONFIG_DIR}/bernoulli_nb.py:breast_cancer"),
      str(tmp_path / "plain"))
  point = read(tmp_path / "w1_lall_s0" / "results.json")["test"]
  assert (plain["test"]["accuracy"], plain["test"]["log_loss"]) == (point["accuracy"],
                                                                    point["log_loss"])

  table = (tmp_path / "dial.md").read_text()
  for label in LABELS:
    ours = [r for r in rows if r["labels"] == label]
    lowest = min(r["error_mean"] for r in ours)
    chosen = min(r["joint_weight"] for r in ours if r["error_mean"] == lowest)
    inside = "strictly inside (0, 1)" if 0 < chosen < 1 else "not inside (0, 1)"
    assert re.search(rf"Best lambda with {label} labels: {chosen:g} \(test error "
                     rf"{100 * lowest:.2f} %\), [^\n]*{re.escape(inside)}", table)
  assert table.count("\n| ") == 2 + len(rows)  # header, rule, a line per row


def test_a_study_of_another_config_or_seed_count_is_refused(dial, tmp_path):
  (tmp_path / "dial.json").write_text(json.dumps([{"config": CONFIG, "seeds": 3}]))
  with pytest.raises(ValueError, match=f"holds a dial of {CONFIG} with 3 seeds"):
    dial.dial(CONFIG, str(tmp_path), ["1"], ["all"], SEEDS)


@pytest.mark.parametrize("weights, labels, message", [
    (["1.5"], ["all"], r"joint_weight must be in \[0, 1\]"),
    (["-0.1"], ["all"], r"joint_weight must be in \[0, 1\]"),
    (["nan"], ["all"], r"joint_weight must be in \[0, 1\]"),
    (["half"], ["all"], "joint_weight must be a number"),
    (["0", "0"], ["all"], "distinct joint weights"),
    (["1"], ["0"], "positive numbers or 'all'"),
])
def test_bad_weights_and_labels_are_refused_before_anything_runs(dial, fits, tmp_path, weights,
                                                                labels, message):
  with pytest.raises(ValueError, match=message):
    dial.dial(CONFIG, str(tmp_path / "w"), weights, labels, SEEDS)
  assert not fits and not (tmp_path / "w").exists()


def test_a_model_without_a_joint_likelihood_is_refused(dial, fits, tmp_path):
  with pytest.raises(ValueError, match=r"^knn:iris has no joint likelihood to weigh .*; the "
                     r"dial applies to .*bernoulli_nb"):
    dial.dial("knn:iris", str(tmp_path / "w"), ["0", "1"], ["all"], SEEDS)
  assert not fits and not (tmp_path / "w").exists()


def test_the_command_line_refuses_in_one_line(tmp_path, subprocess_env):
  done = subprocess.run(
      [sys.executable, str(REPO_ROOT / "experiments" / "dial.py"),
       f"--config={REPO_ROOT}/experiments/configs/bernoulli_nb.py:breast_cancer",
       f"--workdir={tmp_path / 'w'}", "--weights=0,2"],
      cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True, timeout=300)
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert lines[0] == ("error: --weights: joint_weight must be in [0, 1] (1 generative, 0 "
                      "discriminative), got 2")
  assert len(lines) == 2 and "--debug" in lines[1]
  assert not (tmp_path / "w").exists()


STAND_IN = f'''"""softmax_sgd with a model.joint_weight its objective ignores: cheap, stepped."""

from genjax import config as gconfig


def get_config(arg=None):
  c = gconfig.load({CONFIG_DIR + "/softmax_sgd.py"!r} + ":" + (arg or "iris"))
  c.unlock()
  c.model.joint_weight = 1.0
  return c
'''


def test_a_step_family_trains_each_point_as_a_population_for_its_budget(dial, fits, tmp_path,
                                                                        monkeypatch):
  from genjax import studies
  config = tmp_path / "softmax_weighted.py"
  config.write_text(STAND_IN)
  monkeypatch.setattr(studies, "steps_per_second", lambda c: 50.0)
  workdir = tmp_path / "dial"
  rows = dial.dial(f"{config}:iris,smoke", str(workdir), ["0", "1"], ["all"], SEEDS,
                   budget_minutes=0.01)
  assert read(workdir / "budget.json")["steps"] == 30  # 0.01 min x 60 s x 50 steps/s
  assert sorted(fits) == [str(workdir / "w0_lall"), str(workdir / "w1_lall")]
  for r in rows:
    point = workdir / f"w{r['joint_weight']:g}_lall"
    recorded = read(point / "config.json")
    assert (recorded["population"], recorded["train"]["num_steps"]) == (SEEDS, 30)
    assert recorded["model"]["joint_weight"] == r["joint_weight"]
    members = [read(point / "members" / str(i) / "results.json") for i in range(SEEDS)]
    assert [m["seed"] for m in members] == list(range(SEEDS))
    errors = np.array([m["test"]["error"] if "error" in m["test"] else 1 - m["test"]["accuracy"]
                       for m in members])
    assert r["error_mean"] == pytest.approx(errors.mean(), abs=1e-12)
    assert r["error_sd"] == pytest.approx(errors.std(ddof=1), abs=1e-12)
    assert r["steps"] == 30
  monkeypatch.setattr(studies, "steps_per_second", lambda c: pytest.fail("timed again"))
  assert dial.dial(f"{config}:iris,smoke", str(workdir), ["0", "1"], ["all"], SEEDS,
                   budget_minutes=0.01) == rows
  assert len(fits) == 2


def test_a_taggers_error_is_one_minus_its_token_accuracy_in_percent():
  """The sequence evaluators report token accuracy in percent, the classifiers a fraction."""
  from genjax import studies
  assert studies.test_error({"test": {"accuracy": 90.25, "f1": 84.0, "num_tokens": 47377}}) \
      == pytest.approx(0.0975, abs=1e-12)
  assert studies.test_error({"test": {"accuracy": 0.9}}) == pytest.approx(0.1, abs=1e-12)
  assert studies.test_error({"test": {"error": 0.07, "accuracy": 0.93}}) == 0.07
