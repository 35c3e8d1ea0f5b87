"""TAN, the HMM tagger and the CRF chunker as fit families: their smoke configs through the
generic loop, scores against the functional code on the same data, restored states, and the
sequence evaluators on hand examples."""

import types

import jax
import numpy as np
import pytest
from conftest import REPO_ROOT, apply_overrides, load_config_module

from genjax import evals, train
from genjax.data import splits
from genjax.data.sequences import Sentence
from genjax.metrics.chunking import conll_f1
from genjax.structured import bayes_net as bn
from genjax.structured import crf, crf_features, crf_sparse
from genjax.structured import tagger as tagger_lib

CONFIGS = REPO_ROOT / "experiments" / "configs"


def config(name: str, arg: str | None, **overrides):
  c = load_config_module(CONFIGS / f"{name}.py").get_config(arg)
  apply_overrides(c, {"train.progress": False, **overrides})
  return c


def test_configs_parse_their_arguments():
  tan = config("tan", "mnist,nb,smoke")
  assert (tan.data.name, tan.data.preprocess, tan.model.tree, tan.model.discretize,
          tan.model.threshold) == ("mnist", "unit", False, "binary", 0.5)
  assert config("tan", "wine").data.preprocess == "none"
  paired = config("hmm_tagger", "chunk_paired,smoke")
  assert (paired.model.target, paired.model.paired_states, paired.model.max_train_sentences,
          paired.evals.to_dict()) == ("chunk", True, 300, {"chunking": {}})
  assert config("hmm_tagger", None).evals.to_dict() == {"tagging": {}}
  full = config("crf_chunker", None)
  selected = load_config_module(CONFIGS / "crf_chunker.py").SELECTED_L2
  assert (full.model.l2, full.model.features, full.model.max_train_sentences) == (
      selected, "sparse", 0)
  with pytest.raises(ValueError):
    config("hmm_tagger", "ner")


# ------------------------------------------------------------------------------ TAN


@pytest.mark.parametrize("tree", [True, False])
def test_tan_family_matches_bayes_net(tmp_path, tree):
  c = config("tan", "iris" if tree else "iris,nb")
  results = train.train_and_evaluate(c, str(tmp_path))
  tr, te = splits.load(c.data, "train"), splits.load(c.data, "test")
  params = bn.fit(tr.arrays["x"], tr.arrays["label"], 3, tree=tree, num_bins=5, alpha=1.0)
  assert bn.num_edges(params) == (3 if tree else 0)
  log_p = np.asarray(bn.log_proba(params, te.arrays["x"]))
  y = te.arrays["label"]
  assert results["test"]["accuracy"] == pytest.approx(np.mean(log_p.argmax(1) == y), abs=1e-6)
  assert results["test"]["log_loss"] == pytest.approx(
      -np.mean(log_p[np.arange(len(y)), y]), rel=1e-5)
  family, _, state = train.restore_for_eval(str(tmp_path))
  np.testing.assert_allclose(family.log_proba(state, {"x": te.arrays["x"]}), log_p, rtol=1e-5,
                             atol=1e-6)


# ------------------------------------------------------------------------------ HMM tagger


def _small_eval(c):
  """Score on the last 200 training sentences (validation) rather than the 2,012 test ones."""
  c.data.validation_size = 200
  for options in c.evals.values():
    options["split"] = "validation"
  return c


def test_hmm_tagger_pos_matches_the_tagger(tmp_path):
  c = _small_eval(config("hmm_tagger", "pos,smoke"))
  results = train.train_and_evaluate(c, str(tmp_path))
  tr, va = splits.load(c.data, "train"), splits.load(c.data, "validation")
  tagger = tagger_lib.Tagger([list(s.words) for s in tr.sentences[:300]],
                             [list(s.pos) for s in tr.sentences[:300]], 0.1, 0.0, 10, 10)
  pred = tagger.decode([list(s.words) for s in va.sentences])
  gold = [list(s.pos) for s in va.sentences]
  unknown = tagger.unknown([list(s.words) for s in va.sentences])
  scores = results["validation"]
  assert scores["accuracy"] == pytest.approx(tagger_lib.token_accuracy(gold, pred))
  assert scores["unknown_word_accuracy"] == pytest.approx(
      tagger_lib.token_accuracy(gold, pred, unknown))
  assert scores["known_word_accuracy"] == pytest.approx(
      tagger_lib.token_accuracy(gold, pred, [[not u for u in s] for s in unknown]))
  assert 0 < scores["unknown_word_fraction"] < 100 and 80 < scores["accuracy"] < 100
  # The restored tagger (arrays from the checkpoint, vocabularies rebuilt) decodes the same.
  family, _, state = train.restore_for_eval(str(tmp_path))
  assert family.predict_split(state, va) == pred


def test_hmm_tagger_paired_chunking_matches_conll_f1(tmp_path):
  c = _small_eval(config("hmm_tagger", "chunk_paired,smoke"))
  results = train.train_and_evaluate(c, str(tmp_path))
  tr, va = splits.load(c.data, "train"), splits.load(c.data, "validation")
  pairs = [[f"{ch}|{p}" for ch, p in zip(s.chunks, s.pos, strict=True)]
           for s in tr.sentences[:300]]
  tagger = tagger_lib.Tagger([list(s.pos) for s in tr.sentences[:300]], pairs, 0.1, 0.0, 0, 0)
  pred = [[p.split("|")[0] for p in ps] for ps in tagger.decode([list(s.pos)
                                                                 for s in va.sentences])]
  expected = conll_f1([list(s.chunks) for s in va.sentences], pred)
  for k in ("f1", "precision", "recall", "accuracy"):
    assert results["validation"][k] == pytest.approx(expected[k])
  assert results["details"]["chunking"]["by_type"] == expected["by_type"]


# ------------------------------------------------------------------------------ CRF


@pytest.mark.slow  # L-BFGS compiles for about a minute on 2 busy cores
def test_crf_chunker_matches_fit_lbfgs(tmp_path):
  c = config("crf_chunker", "smoke", **{"model.max_train_sentences": 100,
                                       "model.max_iterations": 5})
  c.evals = {"chunking": {}}
  c = _small_eval(c)
  results = train.train_and_evaluate(c, str(tmp_path))
  tr, va = splits.load(c.data, "train"), splits.load(c.data, "validation")
  fmap = crf_features.build(tr.sentences[:100])
  ids, labels = crf_features.encode(fmap, tr.sentences[:100])
  # The family's default: sparse state features (crf_sparse), the config's c2.
  data = crf_sparse.packed_data(ids, labels, fmap.num_features, len(fmap.labels))
  params, info = crf.fit_lbfgs(crf_sparse.init_params(data), data, 100, l2=c.model.l2,
                               max_iterations=5, objective_fn=crf_sparse.objective)
  params = crf_sparse.to_dense(params, data)
  test_ids = [fmap.encode_sentence(s) for s in va.sentences]
  buckets = crf_features.bucketize(test_ids, [np.zeros(len(s), np.int32) for s in va.sentences])
  pred = [fmap.decode_labels(p) for p in crf.decode(params, buckets, len(test_ids))]
  expected = conll_f1([list(s.chunks) for s in va.sentences], pred)
  assert results["validation"]["f1"] == pytest.approx(expected["f1"])
  family, _, state = train.restore_for_eval(str(tmp_path))
  assert int(state.iterations) == info["iterations"]
  restored = family.predict_split(state, va)
  assert conll_f1([list(s.chunks) for s in va.sentences], restored)["f1"] == pytest.approx(
      results["validation"]["f1"])
  with open(tmp_path / "metrics.jsonl") as f:
    assert sum(1 for _ in f) == info["iterations"]  # one line per L-BFGS iteration


def test_crf_predict_split_is_crf_decode():
  c = config("crf_chunker", "smoke")
  sentences = splits.load(c.data, "test").sentences[:40]
  tr = splits.SentenceSplit("train", sentences)
  from genjax.families import crf_chunker
  state = crf_chunker.create_state(jax.random.key(0), c, tr)
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(np.float32), state.params)
  state = state.replace(params=params)
  # Brute force on short sentences (prefixes of 2 and 3 tokens): the best label sequence by
  # enumeration is Viterbi's.
  short = [Sentence(s.words[:n], s.pos[:n], s.chunks[:n]) for s in sentences[:6] for n in (2, 3)]
  pred = crf_chunker.predict_split(state, splits.SentenceSplit("test", short))
  assert len(pred) == 12
  for s, p in zip(short, pred, strict=True):
    ids_TxF = state.feature_map.encode_sentence(s)
    # Feature id 0 (unseen strings) is the null feature: it scores nothing.
    emit_TxL = (np.asarray(params.emission)[ids_TxF] * (ids_TxF > 0)[..., None]).sum(1)
    assert [state.feature_map.labels.index(t) for t in p] == list(_brute_force(emit_TxL, params))


def _brute_force(emit_TxL, p):
  import itertools
  num_labels = emit_TxL.shape[1]
  best, best_y = -np.inf, None
  for y in itertools.product(range(num_labels), repeat=len(emit_TxL)):
    score = (p.start[y[0]] + p.end[y[-1]] + sum(emit_TxL[t, y[t]] for t in range(len(y)))
             + sum(p.transition[y[t - 1], y[t]] for t in range(1, len(y))))
    if score > best:
      best, best_y = score, y
  return best_y


# ------------------------------------------------------------------------------ evaluators


def _context(family, sentences):
  ctx = evals.Context(family=family, state=None, config=None, step=1, key=jax.random.key(0),
                      workdir="")
  ctx.add_split(splits.SentenceSplit("test", sentences))
  return ctx


def test_chunking_evaluator_on_a_hand_example():
  gold = [Sentence(("The", "cat", "sat", "down"), ("DT", "NN", "VBD", "RP"),
                   ("B-NP", "I-NP", "B-VP", "B-PRT")),
          Sentence(("Dogs", "bark"), ("NNS", "VBP"), ("B-NP", "B-VP"))]
  pred = [["B-NP", "I-NP", "B-NP", "B-PRT"], ["B-NP", "B-VP"]]
  family = types.SimpleNamespace(predict_split=lambda state, split: pred)
  out = evals.base._function("chunking")(_context(family, gold), split="test")
  # Gold chunks: NP VP PRT | NP VP (5); guessed NP NP PRT | NP VP (5); correct 4.
  assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((80.0, 80.0, 80.0))
  assert out["accuracy"] == pytest.approx(100 * 5 / 6)
  assert out["details"]["by_type"]["VP"] == {"precision": 100.0, "recall": 50.0,
                                             "f1": pytest.approx(200 / 3), "correct": 1,
                                             "guessed": 1, "gold": 2}
  expected = conll_f1([s.chunks for s in gold], pred)
  assert out["f1"] == expected["f1"] and out["predict_seconds"] >= 0


def test_tagging_evaluator_splits_known_and_unknown_words():
  gold = [Sentence(("a", "b", "c"), ("X", "Y", "Z"), ("O", "O", "O")),
          Sentence(("d",), ("X",), ("O",))]
  pred = [["X", "Y", "Y"], ["Y"]]
  family = types.SimpleNamespace(predict_split=lambda state, split: pred,
                                 unknown_words=lambda state, split: [[False, True, True],
                                                                     [False]])
  out = evals.base._function("tagging")(_context(family, gold), split="test")
  assert out["accuracy"] == pytest.approx(50.0)
  assert out["unknown_word_accuracy"] == pytest.approx(50.0)  # b right, c wrong
  assert out["known_word_accuracy"] == pytest.approx(50.0)  # a right, d wrong
  assert out["unknown_word_fraction"] == pytest.approx(50.0)
  del family.unknown_words
  assert "unknown_word_accuracy" not in evals.base._function("tagging")(
      _context(family, gold), split="test")
