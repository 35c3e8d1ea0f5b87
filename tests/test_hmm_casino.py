"""The casino's simulated rolls (genjax.data.casino), Baum-Welch in the HMM tagger family, and
experiments/hmm_casino.py: its fits are workdirs, read back on a rerun, refused under other
settings."""

import json

import jax
import numpy as np
import pytest

from genjax.data import casino, splits
from genjax.structured import tagger as tagger_lib


@pytest.fixture(scope="module")
def script(experiment_script):
  return experiment_script("hmm_casino")


def test_the_rolls_follow_the_casino_hmm():
  """Transition and emission frequencies of 60,000 rolls within five binomial standard errors
  of the true probabilities."""
  dice, faces = casino.sample(200, 300, np.random.default_rng(0))
  prev, nxt = dice[:, :-1].ravel(), dice[:, 1:].ravel()
  for z in (0, 1):
    n = np.sum(prev == z)
    switch = casino.TRANSITION[z, 1 - z]
    assert np.mean(nxt[prev == z] != z) == pytest.approx(
        switch, abs=5 * np.sqrt(switch * (1 - switch) / n))
    rolls = faces[dice == z]
    for f in range(6):
      p = casino.EMISSION[z, f]
      assert np.mean(rolls == f) == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / len(rolls)))


def test_the_dataset_is_seeded_and_splits_like_the_other_corpora():
  d = casino.data_config(num_sequences=6, length=20, test_sequences=3, validation_size=2)
  train, val, test = (splits.load(d, s) for s in ("train", "validation", "test"))
  assert (len(train), len(val), len(test)) == (4, 2, 3)
  assert list(splits.load(d, "train").sentences) == train.sentences  # same seed, same rolls
  whole = casino.load(d, "train")
  assert whole[:4] == train.sentences and whole[4:] == val.sentences
  assert test.sentences != whole[:3]  # another stream
  s = train.sentences[0]
  assert len(s) == 20 and set(s.words) <= set(casino.FACES) and s.pos == s.chunks
  d.sample_seed = 1
  assert splits.load(d, "train").sentences != train.sentences


def test_name_states_undoes_a_relabelling():
  """The counted HMM with its two dice swapped is named back to the counted HMM, and its
  agreement is the counted HMM's Viterbi accuracy on the same rolls."""
  d = casino.data_config(20, 100)
  sentences = casino.load(d, "train")
  words, dice = [list(s.words) for s in sentences], [list(s.pos) for s in sentences]
  tagger = tagger_lib.Tagger(words, dice, 0.0, 0.0, 0, 0)
  counted = tagger.hmm
  swap = np.arange(3)
  f, lo = tagger.tags.id("F"), tagger.tags.id("L")
  swap[[f, lo]] = [lo, f]
  swapped = counted.replace(log_pi_K=counted.log_pi_K[swap],
                            log_A_KxK=counted.log_A_KxK[swap][:, swap],
                            emission=counted.emission.replace(
                                log_B_KxV=counted.emission.log_B_KxV[swap]))
  named, accuracy = tagger.name_states(swapped, words, dice)
  for a, b in zip(jax.tree.leaves(named), jax.tree.leaves(counted), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert accuracy == pytest.approx(tagger_lib.token_accuracy(dice, tagger.decode(words)))


SETTINGS = {"num_sequences": 4, "test_sequences": 2, "length": 60, "restarts": 2, "iters": 20,
            "tol": 1e-7, "seed": 0}


@pytest.fixture
def fits(monkeypatch) -> list:
  """The workdirs genjax.train fits in (reading one back is not a fit)."""
  from genjax import train
  calls = []
  real = train.train_and_evaluate
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda config, workdir, *a, **k: calls.append(workdir) or real(
                          config, workdir, *a, **k))
  return calls


def test_the_study_fits_workdirs_once_and_refuses_other_settings(script, tmp_path, fits):
  out = script.run(str(tmp_path), SETTINGS)
  assert sorted(fits) == [str(tmp_path / "em"), str(tmp_path / "supervised")]
  assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(out))
  em, sup = out["em"], out["supervised"]
  assert len(em["start_log_likelihoods"]) == 2 and em["best_start"] == int(
      np.argmax(em["start_log_likelihoods"]))
  # The supervised fit is the counted HMM: the training rolls' transition and emission
  # frequencies given the known dice (the end state left out).
  d = casino.data_config(4, 60, 2)
  sentences = casino.load(d, "train")
  dice = [np.array([casino.DICE.index(t) for t in s.pos]) for s in sentences]
  faces = [np.array([casino.FACES.index(w) for w in s.words]) for s in sentences]
  trans = np.zeros((2, 2))
  emit = np.zeros((2, 6))
  for z, x in zip(dice, faces, strict=True):
    np.add.at(trans, (z[:-1], z[1:]), 1)
    np.add.at(emit, (z, x), 1)
  np.testing.assert_allclose(sup["transition"], trans / trans.sum(1, keepdims=True), atol=1e-6)
  np.testing.assert_allclose(sup["emission"], emit / emit.sum(1, keepdims=True), atol=1e-6)
  for row in (em, sup):
    np.testing.assert_allclose(np.sum(row["transition"], 1), 1.0, atol=1e-6)
    assert 0.0 <= row["viterbi_accuracy_test"] <= 100.0
  assert out["true"]["log_likelihood_test"] < 0

  written = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/results.json")}
  del fits[:]
  assert script.run(str(tmp_path), SETTINGS) == out and fits == []
  assert {p: p.stat().st_mtime_ns for p in written} == written
  with pytest.raises(ValueError, match="em holds a run with other settings "
                     "\\(model.max_iterations 20 -> 30\\)"):
    script.run(str(tmp_path), {**SETTINGS, "iters": 30})
  assert fits == []


def test_baum_welch_needs_the_generative_objective(tmp_path):
  from genjax import studies, train
  c = studies.load_config("experiments/configs/hmm_tagger.py:pos")
  c.data = casino.data_config(2, 10, 1)
  c.model.update(em_restarts=1, joint_weight=0.5)
  with pytest.raises(ValueError, match="em_restarts must be 0 .* with model.joint_weight 1"):
    train.train_and_evaluate(c, str(tmp_path))
