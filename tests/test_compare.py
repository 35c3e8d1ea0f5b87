"""experiments/compare.py and genjax.studies: classifiers found in their configs, override rows,
finished workdirs read back, budgets."""

import json
import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from genjax import studies

CONFIG_DIR = str(REPO_ROOT / "experiments" / "configs")

# compare.py's hard-coded table before the configs declared themselves: it must still be there.
EARLIER = ("gaussian_nb", "bernoulli_nb", "multinomial_nb", "categorical_nb", "lda", "qda", "tan",
           "logistic", "linear_svm", "kernel_svm", "knn", "mlp_mnist", "lenet5_mnist",
           "cnn_mnist")


@pytest.fixture(scope="module")
def compare(experiment_script):
  return experiment_script("compare")


def declaring_configs() -> set[str]:
  """Config files with a module-level CLASSIFIER, found by reading their text (not by
  genjax.studies' parser)."""
  return {p.stem for p in sorted(Path(CONFIG_DIR).glob("*.py"))
          if re.search(r"^CLASSIFIER\s*=", p.read_text(), re.MULTILINE)}


def test_every_declared_classifier_is_discovered_and_its_configs_load(compare):
  found = studies.classifiers(CONFIG_DIR)
  assert {c.config for c in found} == declaring_configs()
  assert set(EARLIER) <= {c.config for c in found}
  for name in ("ssgan_mnist", "m2_mnist", "bayes_vae_mnist"):
    assert name in {c.config for c in found}
  for c in found:
    assert c.side in studies.SIDES
    for dataset in c.datasets:
      for smoke in (False, True):
        config = studies.load_config(c.spec(dataset, smoke))
        assert config.data.name == dataset
        if c.config in ("ssgan_mnist", "m2_mnist", "bayes_vae_mnist"):
          assert config.data.num_labels == -1  # the table trains them with all labels
  on_mnist = {e.label for e in compare.models_for("mnist", [])}
  assert on_mnist == {c.key for c in found if "mnist" in c.datasets}
  on_iris = {e.label for e in compare.models_for("iris", [])}
  assert "mlp_mnist" not in on_iris and "bernoulli_nb" in on_iris and "tan" in on_iris
  assert "tan" not in {e.label for e in compare.models_for("fashion_mnist", [])}


def test_a_new_config_joins_by_declaring_itself(tmp_path):
  (tmp_path / "plain.py").write_text('"""Not a classifier."""\n')
  (tmp_path / "new_nb.py").write_text(
      '"""A classifier."""\n\nCLASSIFIER = {"name": "new NB", "side": "generative"}\n')
  (tmp_path / "rbm.py").write_text(
      '"""Two rows."""\n\nCLASSIFIER = [\n'
      '    {"variant": "a", "name": "A", "side": "hybrid", "datasets": ("mnist",), '
      '"arg": "{variant}"},\n'
      '    {"variant": "b", "name": "B", "side": "discriminative", "arg": "{dataset},{variant}"},'
      '\n]\n')
  found = studies.classifiers(str(tmp_path))
  assert [c.key for c in found] == ["new_nb", "rbm:a", "rbm:b"]
  assert found[0].datasets == studies.DATASETS
  assert found[1].spec("mnist", smoke=True).endswith("rbm.py:a,smoke")
  assert found[2].spec("iris").endswith("rbm.py:iris,b")
  (tmp_path / "bad.py").write_text(
      'SIDE = "generative"\nCLASSIFIER = {"name": "x", "side": SIDE}\n')
  with pytest.raises(ValueError, match="must be a literal"):
    studies.classifiers(str(tmp_path))
  (tmp_path / "bad.py").write_text('CLASSIFIER = {"name": "x", "side": "both"}\n')
  with pytest.raises(ValueError, match="side must be one of"):
    studies.classifiers(str(tmp_path))


def test_model_specs_and_overrides():
  assert studies.parse_model("bernoulli_nb") == ("bernoulli_nb", {})
  assert studies.parse_model("bernoulli_nb@joint_weight=0,model.hp.alpha=2,seed=3") == (
      "bernoulli_nb", {"model.joint_weight": "0", "model.hp.alpha": "2", "model.seed": "3"})
  assert studies.parse_model("classrbm_mnist:hybrid@data.batch_size=10") == (
      "classrbm_mnist:hybrid", {"data.batch_size": "10"})
  # absl splits --models at commas: an override's continuation joins its model again.
  assert studies.join_models(["nb@joint_weight=0", "model.hp.alpha=2", "knn"]) == [
      "nb@joint_weight=0,model.hp.alpha=2", "knn"]
  for bad in ("nb@", "nb@joint_weight", "nb@=1"):
    with pytest.raises(ValueError, match="override|bad model"):
      studies.parse_model(bad)
  config = studies.load_config(f"{CONFIG_DIR}/bernoulli_nb.py:iris",
                               {"model.hp.alpha": "2", "seed": 3})
  assert config.model.hp.alpha == 2.0 and config.seed == 3
  with pytest.raises(ValueError, match="has no field 'model.nope'"):
    studies.load_config(f"{CONFIG_DIR}/knn.py:iris", {"model.nope": "1"})
  with pytest.raises(ValueError, match=r"joint_weight must be in \[0, 1\]"):
    studies.check_joint_weight(1.5)
  with pytest.raises(ValueError, match="joint_weight must be a number"):
    studies.check_joint_weight("high")


def test_override_rows_have_their_own_workdir_and_config(compare, tmp_path, monkeypatch):
  from genjax import train
  fits = []
  real = train.train_and_evaluate

  def counting(config, workdir, *args, **kwargs):
    fits.append(workdir)
    return real(config, workdir, *args, **kwargs)

  monkeypatch.setattr(train, "train_and_evaluate", counting)
  models = ["bernoulli_nb", "bernoulli_nb@joint_weight=0"]
  rows = compare.compare("iris", str(tmp_path), models)
  assert [r["config"] for r in rows] == models
  assert [r["model"] for r in rows] == ["Bernoulli naive Bayes",
                                        "Bernoulli naive Bayes (joint_weight=0)"]
  default, weighted = (json.loads((tmp_path / m / "config.json").read_text()) for m in models)
  assert default["model"]["joint_weight"] == 1.0 and weighted["model"]["joint_weight"] == 0.0
  assert {k: v for k, v in default["model"].items() if k != "joint_weight"} == {
      k: v for k, v in weighted["model"].items() if k != "joint_weight"}
  assert [r["joint_weight"] for r in rows] == [1.0, 0.0]
  for m, r in zip(models, rows, strict=True):
    results = json.loads((tmp_path / m / "results.json").read_text())
    assert r["accuracy"] == results["test"]["accuracy"]
  table = (tmp_path / "table.md").read_text()
  assert "| Bernoulli naive Bayes (joint_weight=0) | generative |" in table
  assert len(fits) == 2

  # A second invocation reads both back; a workdir holding another config is refused.
  assert compare.compare("iris", str(tmp_path), models) == rows
  assert len(fits) == 2
  (tmp_path / models[0] / "config.json").write_text(json.dumps(weighted))
  with pytest.raises(ValueError, match="different config"):
    compare.compare("iris", str(tmp_path), models[:1])


def test_bad_models_fail_before_anything_trains(compare, tmp_path):
  for models, message in ((["knn@joint_weight=0"], "knn.py:iris has no field 'model.joint_weight' "
                                                   r"\(its model has no joint likelihood"),
                          (["bernoulli_nb@joint_weight=2"], r"must be in \[0, 1\]"),
                          (["mlp_mnist"], "does not run on iris"),
                          (["no_such"], "no classifier config 'no_such'")):
    with pytest.raises(ValueError, match=message):
      compare.compare("iris", str(tmp_path / "w"), models)
  assert not (tmp_path / "w").exists()


def test_budget_steps_are_timed_once_and_recorded(tmp_path, monkeypatch):
  config = studies.load_config(f"{CONFIG_DIR}/softmax_sgd.py:iris,smoke")
  monkeypatch.setattr(studies, "steps_per_second", lambda c: 12.5)
  budget = studies.budget_steps(config, str(tmp_path), 0.5)
  assert budget["steps"] == 375  # 0.5 min x 60 s x 12.5 steps/s
  monkeypatch.setattr(studies, "steps_per_second", lambda c: pytest.fail("timed again"))
  assert studies.budget_steps(config, str(tmp_path), 0.5) == budget
  studies.set_num_steps(config, budget["steps"])
  assert (config.train.num_steps, config.train.num_epochs) == (375, -1)
  assert config.train.checkpoint_every % config.train.log_every == 0


def test_steps_per_second_times_the_loop_step():
  config = studies.load_config(f"{CONFIG_DIR}/softmax_sgd.py:iris,smoke")
  rate = studies.steps_per_second(config, window_seconds=0.05, windows=1)
  assert 0 < rate < float("inf")


def test_a_budgeted_step_family_trains_the_timed_steps_once(compare, tmp_path, monkeypatch):
  from genjax import train
  config = studies.load_config(f"{CONFIG_DIR}/softmax_sgd.py:iris,smoke")
  monkeypatch.setattr(studies, "steps_per_second", lambda c: 100.0)
  results, training = compare.run_model(config, str(tmp_path), budget_minutes=0.05)
  assert results["step"] == 300  # 0.05 min x 60 s x 100 steps/s
  assert training == "300 steps, 0.05 min (100 steps/s on cpu)"
  monkeypatch.setattr(train, "train_and_evaluate", lambda *a, **k: pytest.fail("trained again"))
  config = studies.load_config(f"{CONFIG_DIR}/softmax_sgd.py:iris,smoke")
  assert compare.run_model(config, str(tmp_path), budget_minutes=0.05) == (results, training)
