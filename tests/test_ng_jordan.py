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


def test_split_indices_are_disjoint_and_see_every_class(ng_jordan):
  y = np.repeat(np.arange(3), [50, 5, 45])
  train, test = ng_jordan.split_indices(y, 3, 8, splits=5, seed=1, with_test=True)
  assert train.shape == (5, 8) and test.shape == (5, 92)
  for tr, te in zip(train, test, strict=True):
    assert set(y[tr]) == {0, 1, 2}
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == 100
  assert len({tuple(t) for t in train}) == 5  # the splits differ


def test_smoke_study_matches_a_direct_fit(ng_jordan, tmp_path):
  results = ng_jordan.run_study(["iris"], str(tmp_path), "", splits=3, num_sizes=1,
                                max_train_images=0, uci_train_fraction=0.5,
                                lda_shrinkage=0.05, lr_c=1.0, seed=0)
  for name in ("iris.png", "summary.png", "results.json", "crossings.md"):
    assert (tmp_path / name).stat().st_size > 0
  saved = json.loads((tmp_path / "results.json").read_text())["datasets"]["iris"]
  (m,) = saved["sizes"]
  assert m == 6 and len(saved["curves"]["nb"]["per_split"][0]) == 3
  assert "| iris | naive Bayes vs LR |" in (tmp_path / "crossings.md").read_text()
  # Split 1's naive Bayes error, recomputed without vmap: standardise, fit, predict.
  data = ng_jordan.load_dataset("iris", "")
  tr, te = ng_jordan.split_indices(data["y"], 3, m, 3, 0, True)
  x_tr, x_te = data["x"][tr[1]], data["x"][te[1]]
  sd = np.where(x_tr.std(0) > 0, x_tr.std(0), 1.0)
  mu = x_tr.mean(0)
  params = gaussian_nb.fit(jnp.asarray((x_tr - mu) / sd), jnp.asarray(data["y"][tr[1]]), 3)
  err = np.mean(np.asarray(gaussian_nb.predict(params, jnp.asarray((x_te - mu) / sd)))
                != data["y"][te[1]])
  assert saved["curves"]["nb"]["per_split"][0][1] == pytest.approx(err, abs=1e-6)
  assert results["iris"]["crossings"]["nb_vs_lr"]["verdict"]


def test_a_finished_dataset_is_read_back_and_other_settings_fit_again(ng_jordan, tmp_path,
                                                                      monkeypatch):
  study = dict(splits=3, num_sizes=1, max_train_images=0, uci_train_fraction=0.5,
               lda_shrinkage=0.05, lr_c=1.0, seed=0)
  first = ng_jordan.run_study(["iris"], str(tmp_path), "", **study)
  fitted = []
  real_run_dataset = ng_jordan.run_dataset
  monkeypatch.setattr(ng_jordan, "run_dataset",
                      lambda name, *a, **k: fitted.append(name) or real_run_dataset(name, *a, **k))
  again = ng_jordan.run_study(["iris"], str(tmp_path), "", **study)
  assert fitted == [] and again == json.loads(json.dumps(first))
  other = ng_jordan.run_study(["iris"], str(tmp_path), "", **{**study, "seed": 1})
  assert fitted == ["iris"]
  assert other["iris"]["curves"]["nb"]["per_split"] != first["iris"]["curves"]["nb"]["per_split"]
  with pytest.raises(ValueError, match="unknown \\['iriss'\\]"):
    ng_jordan.run_study(["iriss"], str(tmp_path / "new"), "", **study)
  assert not (tmp_path / "new").exists()
