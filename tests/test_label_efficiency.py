"""experiments/label_efficiency.py end to end on iris (a softmax regression trained by the loop,
Gaussian naive Bayes fitted): --minutes as steps recorded in the point, the learning curves,
the table's budgets, a finished study read back, a changed budget refused; M1+M2's minutes
covering its pre-training; the learning-curve clock of a resumed run."""

import json

import numpy as np
import pytest

from genjax import learning_curves, studies, writers

SEEDS = 2
MODELS = {"softmax": ("discriminative", "softmax_sgd", "fields"),
          "gnb": ("generative", "gaussian_nb", "fields")}


@pytest.fixture
def le(experiment_script, monkeypatch):
  """The script with two cheap iris models in place of MNIST's."""
  module = experiment_script("label_efficiency")
  monkeypatch.setattr(module, "MODELS", MODELS)
  return module


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


def test_minutes_become_recorded_steps_with_curves_and_a_finished_study_is_read(le, fits,
                                                                               tmp_path,
                                                                               monkeypatch):
  monkeypatch.setattr(studies, "steps_per_second", lambda c: 50.0)
  rows = le.study("iris", str(tmp_path), ["30"], ["softmax", "gnb"], SEEDS, minutes=0.01,
                  curve_points=3)
  point = tmp_path / "softmax" / "30"
  # 0.01 min x 60 s x 50 steps/s: 30 steps, for the population of both seeds.
  assert read(point / "budget.json")["steps"] == 30
  config = read(point / "config.json")
  assert (config["population"], config["train"]["num_steps"]) == (SEEDS, 30)
  assert (config["train"]["eval_every"], config["train"]["eval_split"]) == (10, "test")
  assert sorted(fits) == sorted([str(point)] + [str(tmp_path / "gnb" / "30" / f"seed{i}")
                                                for i in range(SEEDS)])
  softmax, gnb = rows
  assert (softmax["steps"], softmax["minutes"], softmax["steps_per_sec"]) == (30, 0.01, 50.0)
  assert softmax["seeds"] == [0, 1] and softmax["wall_minutes"] > 0
  members = [read(point / "members" / str(i) / "results.json") for i in range(SEEDS)]
  errors = np.array([1.0 - m["test"]["accuracy"] for m in members])
  assert softmax["error_mean"] == pytest.approx(errors.mean(), abs=1e-12)
  assert softmax["error_sd"] == pytest.approx(errors.std(ddof=1), abs=1e-12)
  # A fit family ignores the minutes: no budget, no curve.
  assert (gnb["fitted"], gnb["steps"], gnb["minutes"]) == (True, None, None)
  assert not list((tmp_path / "gnb").glob("**/budget.json"))

  curves = read(tmp_path / "learning_curves.json")["curves"]
  assert [(c["model"], c["labels"]) for c in curves] == [("softmax", "30")]
  curve = curves[0]
  assert [p["step"] for p in curve["points"]] == [10, 20, 30]
  minutes = [p["minutes"] for p in curve["points"]] + [curve["final"]["minutes"]]
  assert all(0 < a <= b for a, b in zip(minutes, minutes[1:], strict=False))
  assert curve["final"]["minutes"] == softmax["wall_minutes"]
  for p in curve["points"]:
    assert len(p["errors"]) == SEEDS and all(0.0 <= e <= 1.0 for e in p["errors"])
    assert p["error_mean"] == pytest.approx(np.mean(p["errors"]), abs=1e-12)
  # Each seed's curve is its metrics.jsonl; the evaluation at the last step scores the final
  # weights, as results.json does (float32 means over 38 test rows).
  for i in range(SEEDS):
    logged = [r for r in writers.read_metrics(str(point / "members" / str(i) / "metrics.jsonl"))
              if "test/accuracy" in r]
    assert [1.0 - r["test/accuracy"] for r in logged] == [p["errors"][i] for p in
                                                           curve["points"]]
    assert curve["points"][-1]["errors"][i] == pytest.approx(errors[i], abs=1e-6)
  assert (tmp_path / "learning_curves.png").stat().st_size > 0
  assert (tmp_path / "label_efficiency.png").stat().st_size > 0

  table = (tmp_path / "label_efficiency.md").read_text()
  assert "mean +- sd over 2 seeds" in table
  assert "| softmax | discriminative | 0.01 min: 30 steps |" in table
  assert (f"| softmax | 30 | 2 | 0.01 min: 30 steps | 30 |  | 0.01 | "
          f"{softmax['wall_minutes']:.1f} | ") in table
  assert "| gnb | 30 | 2 | fit |  |  |  |" in table

  # Again: every point read back, nothing trained, fitted or timed.
  del fits[:]
  stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("**/*.json")
            if p.parent != tmp_path}
  monkeypatch.setattr(studies, "steps_per_second", lambda c: pytest.fail("timed again"))
  again = le.study("iris", str(tmp_path), ["30"], ["softmax", "gnb"], SEEDS, minutes=0.01,
                   curve_points=3)
  assert not fits and again == rows
  assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
  assert read(tmp_path / "learning_curves.json")["curves"] == curves

  # Another budget for the same point is refused before anything is timed or written.
  for budget in ({"minutes": 0.02}, {"steps": 60}, {}):
    with pytest.raises(ValueError, match=r"softmax/30 holds softmax's run for --minutes=0\.01, "
                       r"not .*: a point keeps its budget; use another --workdir"):
      le.study("iris", str(tmp_path), ["30"], ["softmax"], SEEDS, curve_points=3, **budget)
  assert not fits and read(point / "budget.json")["minutes"] == 0.01


def test_a_point_trained_for_steps_refuses_other_steps(le, fits, tmp_path):
  le.study("iris", str(tmp_path), ["all"], ["softmax"], 1, steps=12, curve_points=2)
  config = read(tmp_path / "softmax" / "all" / "config.json")
  assert (config["population"], config["train"]["num_steps"]) == (1, 12)
  # One seed: the curve is the workdir's own metrics.jsonl.
  curve = read(tmp_path / "learning_curves.json")["curves"][0]
  assert [p["step"] for p in curve["points"]] == [6, 12] and curve["steps"] == 12
  with pytest.raises(ValueError, match=r"holds softmax's run of another length "
                     r"\(train.num_steps 12 -> 24\)"):
    le.study("iris", str(tmp_path), ["all"], ["softmax"], 1, steps=24)
  with pytest.raises(ValueError, match=r"holds softmax's run for --steps=12, not --minutes=1"):
    le.study("iris", str(tmp_path), ["all"], ["softmax"], 1, minutes=1.0)
  assert len(fits) == 1 and not (tmp_path / "softmax" / "all" / "budget.json").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 10, "minutes": 1.0}, "two budgets: give one"),
    ({"minutes": 0.0}, "must be positive"),
    ({"steps": -5}, "must be positive"),
])
def test_bad_budgets_are_refused_before_anything_runs(le, fits, tmp_path, kwargs, message):
  with pytest.raises(ValueError, match=message):
    le.study("iris", str(tmp_path / "w"), ["30"], ["softmax"], SEEDS, **kwargs)
  assert not fits and not (tmp_path / "w").exists()


def test_m1m2_minutes_cover_its_pretraining_in_the_schedules_proportion(
    experiment_script, tmp_path, monkeypatch):
  le = experiment_script("label_efficiency")
  monkeypatch.setattr(studies, "steps_per_second", lambda c: 10.0)  # the population's loop
  monkeypatch.setattr(studies, "pretrain_steps_per_second", lambda c, field: 20.0)
  monkeypatch.setattr(studies, "schedule_steps", lambda c: 40)
  config, is_step, budget = le.point_config("m1m2", "mnist", "100", SEEDS, str(tmp_path), None,
                                            0.5, 5, smoke=True)
  # The smoke schedule: M1 20 steps per seed (one seed after another, 20 steps/s), the loop 40
  # (10 steps/s): 2 + 4 = 6 s; 0.5 min is 5 times that.
  assert is_step and (budget["steps"], budget["pretrain_steps"]) == (200, 100)
  assert (config.train.num_steps, config.model.m1_steps, config.population) == (200, 100, SEEDS)
  assert config.train.eval_every == 40
  assert read(tmp_path / "budget.json") == {
      "minutes": 0.5, "steps": 200, "steps_per_sec": 10.0, "backend": budget["backend"],
      "pretrain": "model.m1_steps", "pretrain_steps": 100, "pretrain_steps_per_sec": 20.0}
  # --steps shrinks M1 in the schedule's proportion of steps: 60 loop steps of its 40 -> 30.
  config, _, budget = le.point_config("m1m2", "mnist", "100", SEEDS, str(tmp_path / "steps"),
                                      60, None, 5, smoke=True)
  assert budget is None and (config.train.num_steps, config.model.m1_steps) == (60, 30)


def test_the_clock_of_a_resumed_run_continues_from_its_last_evaluation_before(tmp_path):
  ticks = iter([0.0, 5.0, 9.0, 10.0])  # the first invocation: start, steps 10 and 20, stop
  first = learning_curves.Clock(str(tmp_path), now=lambda: next(ticks))
  first(10, {})
  first(20, {})
  # The run stopped after step 20's evaluation, its checkpoint at step 15: the second
  # invocation starts there, evaluates step 20 again, then 30, and ends.
  ticks = iter([100.0, 103.0, 107.0, 108.0])
  second = learning_curves.Clock(str(tmp_path), now=lambda: next(ticks))
  second(20, {})
  second(30, {})
  assert second.finish() == 5.0 + 8.0
  record = read(tmp_path / learning_curves.FILE)
  assert record == {"seconds": {"10": 5.0, "20": 8.0, "30": 12.0}, "wall_seconds": 13.0,
                    "invocations": 2}
