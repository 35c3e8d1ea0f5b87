"""Sparse CRF features for CoNLL chunking: the CRF++/CRFsuite template as per-token feature ids.

The template (CRFsuite's `chunking.py`, CRF++'s CoNLL-2000 example) looks at words `w` and POS
tags `p` in a +-2 window: w[-2..2], w[-1]|w[0], w[0]|w[1], p[-2..2], the four POS bigrams
p[i]|p[i+1] and the three POS trigrams inside the window, plus a bias feature that is always on.
Positions outside the sentence read as `__BOS-k__` / `__EOS+k__` (as in CRF++). Label transitions
are the CRF's own transition matrix (genjax.structured.crf), not features here.

Every token fires exactly one string per template, so a sentence of T tokens gives ids_TxF with
F = len(TEMPLATE) + 1. Feature strings become ids either through a vocabulary of strings seen in
training at least `min_count` times (unseen ones map to id 0, the null feature whose weight row
is held at zero) or, with `hash_buckets > 0`, through a stable hash into that many rows.
"""

import collections
import dataclasses
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from genjax.data.sequences import Sentence

NULL_FEATURE = 0

# (column, offset) pairs joined with "|": column 0 is the word, 1 the POS tag.
TEMPLATE: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, -2),), ((0, -1),), ((0, 0),), ((0, 1),), ((0, 2),),
    ((0, -1), (0, 0)), ((0, 0), (0, 1)),
    ((1, -2),), ((1, -1),), ((1, 0),), ((1, 1),), ((1, 2),),
    ((1, -2), (1, -1)), ((1, -1), (1, 0)), ((1, 0), (1, 1)), ((1, 1), (1, 2)),
    ((1, -2), (1, -1), (1, 0)), ((1, -1), (1, 0), (1, 1)), ((1, 0), (1, 1), (1, 2)),
)
FEATURES_PER_TOKEN = len(TEMPLATE) + 1  # the template and the bias


def _cell(columns: Sequence[Sequence[str]], column: int, position: int) -> str:
  length = len(columns[column])
  if position < 0:
    return f"__BOS{position}__"
  if position >= length:
    return f"__EOS+{position - length + 1}__"
  return columns[column][position]


def token_features(words: Sequence[str], pos: Sequence[str]) -> list[list[str]]:
  """The template's feature strings of each token of one sentence: T lists of F strings."""
  columns = (words, pos)
  out = []
  for t in range(len(words)):
    names = ["bias"]
    for k, template in enumerate(TEMPLATE):
      value = "|".join(_cell(columns, c, t + d) for c, d in template)
      names.append(f"{k}={value}")
    out.append(names)
  return out


@dataclasses.dataclass(frozen=True)
class FeatureMap:
  """Feature strings -> row ids of the emission weights W[num_features, L]; row 0 is null.

  `ids` maps each kept string to its row (None when hashing); `labels` lists the chunk tags in
  label-id order.
  """

  ids: dict[str, int] | None
  num_features: int
  labels: tuple[str, ...]
  hash_buckets: int = 0

  def feature_id(self, name: str) -> int:
    if self.hash_buckets:
      return 1 + zlib.crc32(name.encode("utf-8")) % self.hash_buckets
    return self.ids.get(name, NULL_FEATURE)

  def encode_sentence(self, sentence: Sentence) -> np.ndarray:
    """ids_TxF (int32) of one sentence."""
    return self.encode_names(token_features(sentence.words, sentence.pos))

  def encode_names(self, names: Sequence[Sequence[str]]) -> np.ndarray:
    """ids_TxF (int32) of one sentence's feature strings (`token_features`)."""
    if self.hash_buckets:
      rows = [[self.feature_id(n) for n in token] for token in names]
    else:
      get = self.ids.get
      rows = [[get(n, NULL_FEATURE) for n in token] for token in names]
    return np.array(rows, np.int32).reshape(len(names), FEATURES_PER_TOKEN)

  def encode_labels(self, sentence: Sentence) -> np.ndarray:
    """label ids_T (int32) of one sentence; a tag unseen in training raises KeyError."""
    index = {tag: i for i, tag in enumerate(self.labels)}
    return np.array([index[tag] for tag in sentence.chunks], np.int32)

  def decode_labels(self, ids: Iterable[int]) -> list[str]:
    return [self.labels[int(i)] for i in ids]


def build(sentences: Sequence[Sentence], min_count: int = 1, hash_buckets: int = 0) -> FeatureMap:
  """The feature map of a training set: strings seen >= `min_count` times, ids by first
  appearance (or `hash_buckets` hashed rows), and the sorted chunk tags seen."""
  names = ([] if hash_buckets else
           [token_features(s.words, s.pos) for s in sentences])
  return build_from_names(names, [s.chunks for s in sentences], min_count, hash_buckets)


def build_from_names(names: Sequence[Sequence[Sequence[str]]], chunks: Sequence[Sequence[str]],
                     min_count: int = 1, hash_buckets: int = 0) -> FeatureMap:
  """`build` from each sentence's feature strings (`token_features`) and chunk tags."""
  labels = tuple(sorted({tag for tags in chunks for tag in tags}))
  if hash_buckets:
    return FeatureMap(None, hash_buckets + 1, labels, hash_buckets)
  counts = collections.Counter(name for sentence in names for token in sentence for name in token)
  ids = {}
  for name, count in counts.items():  # Counter keeps first-appearance order
    if count >= min_count:
      ids[name] = len(ids) + 1
  return FeatureMap(ids, len(ids) + 1, labels)


def encode(feature_map: FeatureMap, sentences: Sequence[Sentence]
           ) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Per-sentence (ids_TxF, labels_T) arrays, unpadded, in the order given."""
  return ([feature_map.encode_sentence(s) for s in sentences],
          [feature_map.encode_labels(s) for s in sentences])


@dataclasses.dataclass(frozen=True)
class Bucket:
  """Sentences of similar length padded together and cut into equal chunks of sentences.

  ids_NxCxTxF, labels_NxCxT, mask_NxCxT: N chunks of C sentences padded to length T (rows of
  padding sentences have an all-false mask); order_NxC: each row's index in the input list (-1
  for padding sentences).
  """

  ids: np.ndarray
  labels: np.ndarray
  mask: np.ndarray
  order: np.ndarray


def bucketize(ids: Sequence[np.ndarray], labels: Sequence[np.ndarray], num_buckets: int = 4,
              chunk_tokens: int = 16384) -> list[Bucket]:
  """Sentences sorted by length into `num_buckets` buckets of about equal token counts, each
  padded to its longest sentence and cut into chunks of about `chunk_tokens` padded tokens (at
  least one sentence), so that one chunk bounds the memory of a forward-backward pass."""
  lengths = np.array([len(x) for x in ids])
  by_length = np.argsort(lengths, kind="stable")
  cumulative = np.cumsum(lengths[by_length])
  total = max(int(cumulative[-1]), 1) if len(ids) else 1
  edges = np.searchsorted(cumulative, np.arange(1, num_buckets) * total / num_buckets)
  buckets = []
  features = FEATURES_PER_TOKEN if not len(ids) else ids[0].shape[1]
  for part in np.split(by_length, edges):
    if not len(part):
      continue
    length = max(int(lengths[part].max()), 1)
    per_chunk = max(1, chunk_tokens // length)
    per_chunk = min(per_chunk, len(part))
    count = -(-len(part) // per_chunk)
    slots = count * per_chunk
    ids_b = np.zeros((slots, length, features), np.int32)
    labels_b = np.zeros((slots, length), np.int32)
    mask_b = np.zeros((slots, length), bool)
    order = np.full(slots, -1, np.int64)
    for row, i in enumerate(part):
      n = lengths[i]
      ids_b[row, :n], labels_b[row, :n], mask_b[row, :n] = ids[i], labels[i], True
      order[row] = i
    shape = (count, per_chunk)
    buckets.append(Bucket(ids_b.reshape(*shape, length, features),
                          labels_b.reshape(*shape, length), mask_b.reshape(*shape, length),
                          order.reshape(shape)))
  return buckets
