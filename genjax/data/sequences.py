"""Token sequences: the CoNLL-2000 chunking corpus (word, POS, chunk tag), vocabularies, padding.

The corpus is read from its raw files (`train.txt`, `test.txt`: one `word POS chunk` line per
token, a blank line between sentences), found in `data_dir`, else `$GENJAX_CONLL_DIR`, else
`../shared/data/conll2000` relative to the working directory.
"""

import collections
import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np

CONLL_SPLITS = ("train", "test")
DEFAULT_CONLL_DIR = os.path.join("..", "shared", "data", "conll2000")


@dataclasses.dataclass(frozen=True)
class Sentence:
  """One sentence: its words, POS tags and IOB2 chunk tags, all of one length."""

  words: tuple[str, ...]
  pos: tuple[str, ...]
  chunks: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.words)


def conll_dir(data_dir: str | None = None) -> str:
  return data_dir or os.environ.get("GENJAX_CONLL_DIR") or DEFAULT_CONLL_DIR


def parse_conll(lines: Iterable[str]) -> list[Sentence]:
  """Sentences from CoNLL lines (`word POS chunk`, blank line between sentences)."""
  sentences, rows = [], []
  for number, line in enumerate(lines, 1):
    fields = line.split()
    if not fields:
      if rows:
        sentences.append(Sentence(*map(tuple, zip(*rows, strict=True))))
        rows = []
      continue
    if len(fields) != 3:
      raise ValueError(f"line {number}: expected 'word POS chunk', got {line.rstrip()!r}")
    rows.append(fields)
  if rows:
    sentences.append(Sentence(*map(tuple, zip(*rows, strict=True))))
  return sentences


def load_conll(split: str, data_dir: str | None = None) -> list[Sentence]:
  """The `train` or `test` section of CoNLL-2000 (8,936 and 2,012 sentences)."""
  if split not in CONLL_SPLITS:
    raise ValueError(f"unknown CoNLL-2000 split {split!r}; expected one of {CONLL_SPLITS}")
  path = os.path.join(conll_dir(data_dir), f"{split}.txt")
  if not os.path.exists(path):
    raise FileNotFoundError(f"CoNLL-2000 {split} file not found at {path}: pass its directory "
                            "(data_dir / --conll_dir) or set GENJAX_CONLL_DIR")
  with open(path, encoding="utf-8") as f:
    return parse_conll(f)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """A string <-> id map. With an `unknown` token, id 0 is it and unseen strings map to 0."""

  tokens: tuple[str, ...]
  unknown: str | None = None

  @classmethod
  def build(cls, items: Iterable[str], min_count: int = 1,
            unknown: str | None = None) -> "Vocabulary":
    """Items seen at least `min_count` times, most frequent first (ties by first appearance)."""
    counts = collections.Counter(items)
    kept = [t for t, c in counts.most_common() if c >= min_count and t != unknown]
    return cls(tuple(([unknown] if unknown is not None else []) + kept), unknown)

  def __post_init__(self):
    object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

  def __len__(self) -> int:
    return len(self.tokens)

  def __contains__(self, token: str) -> bool:
    return token in self._ids

  def id(self, token: str) -> int:
    if token in self._ids:
      return self._ids[token]
    if self.unknown is None:
      raise KeyError(f"{token!r} is not in the vocabulary (and it has no unknown token)")
    return 0

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    return np.array([self.id(t) for t in tokens], np.int32)

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[int(i)] for i in ids]


def pad(sequences: Sequence[np.ndarray], length: int | None = None,
        value: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(ids_BxT, mask_BxT): sequences right-padded with `value` to `length` (default: the longest).

  Trailing dimensions (e.g. per-token feature ids, shape [T, F]) are kept: ids_BxTx...
  """
  length = max((len(s) for s in sequences), default=0) if length is None else length
  if any(len(s) > length for s in sequences):
    raise ValueError(f"a sequence is longer than the padded length {length}")
  trailing = np.asarray(sequences[0]).shape[1:] if len(sequences) else ()
  dtype = np.asarray(sequences[0]).dtype if len(sequences) else np.int32
  ids = np.full((len(sequences), length, *trailing), value, dtype)
  mask = np.zeros((len(sequences), length), bool)
  for i, s in enumerate(sequences):
    ids[i, :len(s)] = s
    mask[i, :len(s)] = True
  return ids, mask
