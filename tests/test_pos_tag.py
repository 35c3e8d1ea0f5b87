"""The HMM tagger's library code (genjax.structured.tagger, used by experiments/pos_tag.py) on a
few sentences: the suffix model by hand, buckets, a tagger smoke."""


import numpy as np
import pytest

from genjax.data.sequences import parse_conll
from genjax.structured import tagger as pos_tag

TEXT = """The DT B-NP
cat NN I-NP
sat VBD B-VP
quickly RB B-ADVP
. . O

A DT B-NP
dog NN I-NP
walked VBD B-VP
slowly RB B-ADVP
. . O

The DT B-NP
dog NN I-NP
barked VBD B-VP
. . O

A DT B-NP
cat NN I-NP
jumped VBD B-VP
. . O
"""


def test_suffix_model_successive_abstraction():
  # Two tags with prior (0.5, 0.5): theta = std = 0; use three to get theta > 0.
  prior = np.array([0.5, 0.3, 0.2])
  model = pos_tag.SuffixModel(["walked", "jumped", "quickly"], [0, 0, 1], 3, prior, 2)
  theta = np.std(prior, ddof=1)
  # "hopped": shape l; suffixes "" (2 of tag 0, 1 of tag 1), "d" (2 of tag 0), "ed" (2 of tag 0).
  p0 = np.array([2, 1, 0]) / 3
  p1 = (np.array([1.0, 0, 0]) + theta * p0) / (1 + theta)
  p2 = (np.array([1.0, 0, 0]) + theta * p1) / (1 + theta)
  expected = np.log(np.maximum(p2, 1e-12)) - np.log(prior)
  np.testing.assert_allclose(model.log_emission("hopped"), expected, rtol=1e-6)
  # "x" stops after the empty suffix; an unseen shape falls back to the prior (score 0).
  np.testing.assert_allclose(model.log_emission("x"),
                             np.log(np.maximum(p0, 1e-12)) - np.log(prior), rtol=1e-6)
  np.testing.assert_allclose(model.log_emission("Walked"), 0.0, atol=1e-12)


def test_bucketed_keeps_every_sequence():
  seqs = [np.arange(n, dtype=np.int32) + 1 for n in (3, 9, 1, 20, 8)]
  batches = pos_tag.bucketed(seqs, buckets=(8, 16))
  assert [b[0].shape for b in batches] == [(3, 8), (1, 16), (1, 20)]
  tokens = sorted(int(t) for ids, mask in batches for t in ids[mask])
  assert tokens == sorted(int(t) for s in seqs for t in s)


def test_many_to_one():
  gold = np.array([0, 0, 1, 1, 2])
  pred = np.array([5, 5, 5, 3, 3])
  # state 5 -> tag 0 (2 of 3), state 3 -> 1 or 2 (1 of 2): 3 of 5.
  assert pos_tag.many_to_one(gold, pred, 3, 6) == pytest.approx(60.0)


def test_tagger_on_a_few_sentences():
  sents = parse_conll(TEXT.splitlines())
  tagger = pos_tag.Tagger([list(s.words) for s in sents], [list(s.pos) for s in sents],
                          trans_k=0.1, emit_k=0.0, rare_count=10, max_suffix=3)
  assert len(tagger.tags) == 6  # DT NN VBD RB . and the end-of-sentence state
  # Unknown "hopped" and "mouse": the suffix "-ed" and the DT _ context decide.
  pred = tagger.decode([["The", "mouse", "hopped", "."], ["A", "dog", "sat", "slowly", "."]])
  assert pred == [["DT", "NN", "VBD", "."], ["DT", "NN", "VBD", "RB", "."]]
  gold = [["DT", "NN", "VBD", "."]]
  assert pos_tag.token_accuracy(gold, [["DT", "NN", "NN", "."]]) == pytest.approx(75.0)
