"""genjax.data.sequences: the CoNLL reader, vocabularies and padding."""

import os

import numpy as np
import pytest

from genjax.data import sequences

TEXT = """Confidence NN B-NP
in IN B-PP

the DT B-NP
pound NN I-NP
. . O
"""


def test_parse_conll_splits_sentences_and_columns():
  s = sequences.parse_conll(TEXT.splitlines())
  assert [len(x) for x in s] == [2, 3]
  assert s[0].words == ("Confidence", "in") and s[0].pos == ("NN", "IN")
  assert s[1].chunks == ("B-NP", "I-NP", "O")


def test_parse_conll_rejects_malformed_lines():
  with pytest.raises(ValueError, match="line 2"):
    sequences.parse_conll(["a NN B-NP", "b NN"])


def test_vocabulary_orders_by_count_and_maps_unknown_to_zero():
  v = sequences.Vocabulary.build("b a b c b a".split(), min_count=2, unknown="<unk>")
  assert v.tokens == ("<unk>", "b", "a")
  np.testing.assert_array_equal(v.encode(["a", "c", "b"]), [2, 0, 1])
  assert v.decode([1, 2]) == ["b", "a"]
  with pytest.raises(KeyError):
    sequences.Vocabulary.build(["x"]).id("y")


def test_pad_keeps_trailing_dims_and_masks():
  ids, mask = sequences.pad([np.ones((2, 3), np.int32), np.full((1, 3), 7, np.int32)])
  assert ids.shape == (2, 2, 3)
  np.testing.assert_array_equal(mask, [[True, True], [True, False]])
  np.testing.assert_array_equal(ids[1, 1], 0)
  with pytest.raises(ValueError):
    sequences.pad([np.ones(3)], length=2)


def test_missing_corpus_names_the_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match="GENJAX_CONLL_DIR"):
    sequences.load_conll("train", str(tmp_path))


@pytest.mark.skipif(not os.path.exists(os.path.join(sequences.conll_dir(), "test.txt")),
                    reason="CoNLL-2000 not at hand")
def test_conll_test_section_counts():
  s = sequences.load_conll("test")
  assert (len(s), sum(map(len, s))) == (2012, 47377)  # as the corpus README states
