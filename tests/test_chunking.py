"""conlleval's chunk definition and scores on worked examples and against chunk-set counting."""

import random

import pytest

from genjax.metrics.chunking import chunks, conll_f1, report, split_tag


def test_split_tag():
  assert split_tag("B-NP") == ("B", "NP")
  assert split_tag("O") == ("O", "")
  assert split_tag("I-X-Y") == ("I", "X-Y")  # conlleval: the type is all after the first hyphen


@pytest.mark.parametrize("tags, expected", [
    # IOB2, end exclusive.
    (["B-NP", "I-NP", "O", "B-VP"], {("NP", 0, 2), ("VP", 3, 4)}),
    # I- after O starts a chunk (conlleval's rule; IOB1 uses it).
    (["O", "I-NP", "I-NP"], {("NP", 1, 3)}),
    # I- after a chunk of another type closes that one and starts a new one.
    (["B-NP", "I-VP", "I-VP", "I-NP"], {("NP", 0, 1), ("VP", 1, 3), ("NP", 3, 4)}),
    # B- after B-/I- of the same type splits; IOB1 marks adjacent chunks this way.
    (["I-NP", "I-NP", "B-NP", "B-NP"], {("NP", 0, 2), ("NP", 2, 3), ("NP", 3, 4)}),
    # A chunk still open at the end of the sentence is closed there.
    (["O", "B-PP"], {("PP", 1, 2)}),
    ([], set()),
    (["O", "O"], set()),
    # IOE: E- ends a chunk; the next I- starts one.
    (["I-NP", "E-NP", "I-NP", "E-NP"], {("NP", 0, 2), ("NP", 2, 4)}),
])
def test_chunks_worked_examples(tags, expected):
  assert chunks(tags) == expected


def test_conll_f1_worked_example():
  gold = [["B-NP", "I-NP", "O", "B-VP", "I-VP", "B-NP"],
          ["B-PP", "B-NP", "I-NP"]]
  pred = [["B-NP", "I-NP", "O", "B-VP", "B-VP", "B-NP"],   # VP split in two: 1 wrong, 1 extra
          ["B-PP", "I-NP", "I-NP"]]                        # I-NP after B-PP still starts NP
  s = conll_f1(gold, pred)
  # gold chunks: NP VP NP | PP NP = 5; guessed: NP VP VP NP | PP NP = 6; correct: NP NP PP NP.
  assert (s["gold"], s["guessed"], s["correct"]) == (5, 6, 4)
  assert s["precision"] == pytest.approx(100 * 4 / 6)
  assert s["recall"] == pytest.approx(100 * 4 / 5)
  assert s["f1"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5) * 100)
  assert s["accuracy"] == pytest.approx(100 * 7 / 9)  # two tags differ
  assert s["tokens"] == 9
  assert s["by_type"]["NP"] == {"precision": 100.0, "recall": 100.0, "f1": 100.0,
                                "correct": 3, "guessed": 3, "gold": 3}
  assert s["by_type"]["VP"]["correct"] == 0 and s["by_type"]["VP"]["guessed"] == 2
  assert s["by_type"]["VP"]["f1"] == 0.0
  assert list(s["by_type"]) == ["NP", "PP", "VP"]
  assert "FB1:  72.73" in report(s)


def test_conll_f1_partial_chunks_do_not_count():
  # A predicted chunk must start and end with the gold one: a longer/shorter one scores nothing.
  s = conll_f1([["B-NP", "I-NP", "I-NP"]], [["B-NP", "I-NP", "B-NP"]])
  assert (s["correct"], s["guessed"], s["gold"]) == (0, 2, 1)
  assert s["f1"] == 0.0 and s["precision"] == 0.0 and s["recall"] == 0.0
  s = conll_f1([["B-NP", "I-NP", "O"]], [["B-NP", "I-NP", "I-NP"]])
  assert (s["correct"], s["guessed"], s["gold"]) == (0, 1, 1)


def test_conll_f1_type_mismatch_and_sentence_boundary():
  # Same span, other type: not correct. A sentence boundary ends every chunk, so the I-NP that
  # opens the second sentence is a chunk of its own.
  s = conll_f1([["B-NP"], ["I-NP"], ["B-ADJP", "I-ADJP"]],
               [["B-NP"], ["B-NP"], ["B-ADVP", "I-ADVP"]])
  assert (s["correct"], s["guessed"], s["gold"]) == (2, 3, 3)
  assert s["by_type"]["ADJP"]["recall"] == 0.0 and s["by_type"]["ADVP"]["precision"] == 0.0
  assert s["accuracy"] == pytest.approx(100 * 1 / 4)  # I-NP vs B-NP differ as tags


def test_conll_f1_empty_prediction():
  s = conll_f1([["B-NP", "O"]], [["O", "O"]])
  assert (s["correct"], s["guessed"], s["gold"]) == (0, 0, 1)
  assert s["precision"] == 0.0 and s["f1"] == 0.0 and s["accuracy"] == 50.0


def test_conll_f1_rejects_mismatched_lengths():
  with pytest.raises(ValueError, match="sentence 0"):
    conll_f1([["B-NP"]], [["B-NP", "O"]])


def test_conll_f1_counts_match_chunk_sets_on_random_iob():
  # On B/I/O tags (well- or ill-formed), conlleval's state machine counts exactly the chunks
  # that the two chunk sets share, per type.
  rng = random.Random(0)
  tags = ["O", "B-NP", "I-NP", "B-VP", "I-VP", "I-PP"]
  gold = [[rng.choice(tags) for _ in range(rng.randint(0, 9))] for _ in range(300)]
  pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in s] for s in gold]
  s = conll_f1(gold, pred)
  shared = sum(len(chunks(g) & chunks(p)) for g, p in zip(gold, pred, strict=True))
  assert s["correct"] == shared
  assert s["gold"] == sum(len(chunks(g)) for g in gold)
  assert s["guessed"] == sum(len(chunks(p)) for p in pred)
  for kind in ("NP", "VP", "PP"):
    shared = sum(len({c for c in chunks(g) & chunks(p) if c[0] == kind})
                 for g, p in zip(gold, pred, strict=True))
    assert s["by_type"][kind]["correct"] == shared
  assert 0 < s["f1"] < 100
