"""The Ng & Jordan study: crossing points by hand, random splits, and a one-size smoke run."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.classical import gaussian_nb


@pytest.fixture(scope="module")
def ng_jordan(experiment_script):
  return experiment_script("ng_jordan")


def test_crossing_interpolates_in_log_m(ng_jordan):
  rng = np.random.default_rng(0)
  noise = lambda: 1e-3 * rng.standard_normal(30)
  # Generative ahead by 0.2 at m = 10, behind by 0.2 at m = 1000: the difference crosses zero
  # halfway in log m, at sqrt(10 * 1000) = 100.
  gen = np.stack([0.2 + noise(), 0.25 + noise(), 0.3 + noise()])
  lr = np.stack([0.4 + noise(), 0.25 + noise() + 1e-2, 0.1 + noise()])
  c = ng_jordan.crossing([10, 100, 1000], gen, lr)
  assert c["two_regimes"] and c["verdict"] == "two regimes"
  # The last sign change lies between m = 100 (d = +0.01) and m = 1000 (d = -0.2).
  d1, d2 = np.mean(lr[1] - gen[1]), np.mean(lr[2] - gen[2])
  expected = np.exp(np.log(100) + np.log(10) * d1 / (d1 - d2))
  assert c["crossing_m"] == pytest.approx(expected, rel=1e-6)
  # LR ahead everywhere: no crossing, no generative regime.
  c = ng_jordan.crossing([10, 100, 1000], gen, gen - 0.1)
  assert c["crossing_m"] is None and not c["generative_better_small_m"] and c["lr_better_large_m"]


def test_training_sizes_are_a_geometric_grid_within_the_training_split(ng_jordan):
  assert ng_jordan.training_sizes(112, 3, 1, 112) == [6]
  assert ng_jordan.training_sizes(1347, 10, 3, 1347) == [20, 164, 1347]  # sqrt(20 * 1347) = 164.1
  assert ng_jordan.training_sizes(11000, 2, 3, 2000) == [6, 110, 2000]
  dense = ng_jordan.training_sizes(100, 2, 200, 100)  # rounded, distinct, both ends kept
  assert dense[0] == 6 and dense[-1] == 100 and dense == sorted(set(dense))
  with pytest.raises(ValueError, match="below the smallest"):
    ng_jordan.training_sizes(5, 2, 3, 5)


SETTINGS = dict(splits=2, num_sizes=1, max_train_images=0, uci_train_fraction=0.5,
                lda_shrinkage=0.05, lr_c=2.0, seed=0)


def test_the_three_models_of_a_split_fit_the_same_rows(ng_jordan):
  """Paired errors: the three configs of a point differ only in the model (and its study
  hyper-parameters), so they draw the same training split and subset; an image pair's configs
  select its two classes and binarise the pixels."""
  settings = {**SETTINGS, "idx_dir": "", "lr_max_iter": 300}
  configs = {model: ng_jordan.point_config(ng_jordan.base_config(model, "iris", settings), model,
                                           10, 3, settings["lr_c"])
             for model in ng_jordan.MODELS}
  for c in configs.values():
    assert (c.seed, c.data.split_seed, c.data.train_size, c.data.test_fraction) == (3, 3, 10, 0.5)
  assert (configs["nb"].model.name, configs["gda"].model.name, configs["lr"].model.name) == (
      "gaussian_nb", "lda", "logistic")
  assert configs["gda"].model.hp.shrinkage == 0.05
  assert (configs["lr"].model.hp.l2, configs["lr"].model.hp.max_iter) == (pytest.approx(1 / 20),
                                                                          300)
  pair = ng_jordan.base_config("nb", "fashion_shirt_v_tshirt",
                               {**settings, "idx_dir": "d/{dataset}"})
  assert (pair.model.name, pair.data.name, tuple(pair.data.classes), pair.data.preprocess,
          pair.data.idx_dir) == ("bernoulli_nb", "fashion_mnist", (6, 0), "binarize_fixed",
                                 "d/fashion_mnist")


@pytest.fixture
def fits(monkeypatch) -> list:
  """The workdirs genjax.train fits in, in order (reading one back is not a fit)."""
  from genjax import train
  calls = []
  real = train.train_and_evaluate
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda config, workdir, *a, **k: calls.append(workdir) or real(
                          config, workdir, *a, **k))
  return calls


def test_smoke_study_matches_a_direct_fit(ng_jordan, tmp_path, fits):
  results = ng_jordan.run_study(["iris"], str(tmp_path), "", **SETTINGS)
  for name in ("iris.png", "summary.png", "results.json", "crossings.md"):
    assert (tmp_path / name).stat().st_size > 0
  saved = json.loads((tmp_path / "results.json").read_text())["datasets"]["iris"]
  (m,) = saved["sizes"]
  assert m == 6 and len(saved["curves"]["nb"]["per_split"][0]) == 2
  assert sorted(fits) == sorted(str(tmp_path / "iris" / model / f"m6_s{s}")
                                for model in ("nb", "gda", "lr") for s in (0, 1))
  assert "| iris | naive Bayes vs LR |" in (tmp_path / "crossings.md").read_text()
  # Split 1's naive Bayes error, recomputed from the data: the UCI set's seeded training half
  # (split seed 1), its seeded subset of 6 rows, Gaussian NB on the raw features.
  from genjax.data import tabular
  from genjax.families.classical import subset_indices
  data = tabular.load("iris")
  train, test = tabular.train_test_split(data, len(data) - round(0.5 * len(data)), 1)
  keep = subset_indices(len(train), m, 1)
  params = gaussian_nb.fit(jnp.asarray(train.x[keep]), jnp.asarray(train.y[keep]), 3)
  err = np.mean(np.asarray(gaussian_nb.predict(params, jnp.asarray(test.x))) != test.y)
  assert saved["curves"]["nb"]["per_split"][0][1] == pytest.approx(err, abs=1e-6)
  assert saved["num_test"] == len(test.y) and saved["lr_max_iterations"][0] > 0
  assert results["iris"]["crossings"]["nb_vs_lr"]["verdict"]


def test_a_finished_fit_is_read_back_and_other_settings_are_refused(ng_jordan, tmp_path, fits):
  first = ng_jordan.run_study(["iris"], str(tmp_path), "", **SETTINGS)
  written = {p: p.stat().st_mtime_ns for p in tmp_path.glob("iris/*/*/results.json")}
  assert len(written) == 6
  del fits[:]
  again = ng_jordan.run_study(["iris"], str(tmp_path), "", **SETTINGS)
  assert fits == [] and again == json.loads(json.dumps(first))
  assert {p: p.stat().st_mtime_ns for p in written} == written
  # Seed 1's splits are seeds 1 and 2: seed 1's fits are read back, seed 2's made now.
  other = ng_jordan.run_study(["iris"], str(tmp_path), "", **{**SETTINGS, "seed": 1})
  assert sorted(fits) == sorted(str(tmp_path / "iris" / model / "m6_s2")
                                for model in ("nb", "gda", "lr"))
  assert other["iris"]["curves"]["nb"]["per_split"][0][0] == (
      first["iris"]["curves"]["nb"]["per_split"][0][1])
  del fits[:]
  with pytest.raises(ValueError, match="m6_s0 holds a run with other settings "
                     "\\(model.hp.shrinkage 0.05 -> 0.1\\)"):
    ng_jordan.run_study(["iris"], str(tmp_path), "", **{**SETTINGS, "lda_shrinkage": 0.1})
  assert fits == []
  for bad, match in ((["iriss"], "unknown \\['iriss'\\]"),):
    with pytest.raises(ValueError, match=match):
      ng_jordan.run_study(bad, str(tmp_path / "new"), "", **SETTINGS)
  with pytest.raises(ValueError, match="--splits must be at least 2"):
    ng_jordan.run_study(["iris"], str(tmp_path / "new"), "", **{**SETTINGS, "splits": 1})
  assert not (tmp_path / "new").exists()
