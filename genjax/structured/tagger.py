"""A supervised bigram HMM tagger with TnT's suffix model for unknown words, and its helpers.

States are tags (with an end-of-sentence state), observations are tokens (words, or POS tags
when chunking from POS). The HMM is fitted by counting with add-k smoothing; a token seen in
training keeps its counted emissions, an unknown one gets TnT's suffix model (Brants 2000):
P(tag | longest known suffix, word shape), estimated from rare training words and smoothed by
successive abstraction, divided by P(tag).

`Tagger` separates what is rebuilt deterministically from the training sentences (the
vocabularies and the suffix model: `Tagger(..., fit=False)`) from the fitted arrays (`fit_hmm`
-> an `hmm.HMM`), so that a checkpoint need only hold the arrays (genjax.families.hmm_tagger).
"""

import collections

import jax.numpy as jnp
import numpy as np

from genjax.data.sequences import Vocabulary, pad
from genjax.structured import hmm as H
from genjax.structured import hmm_hybrid

END = "<END>"
BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128)


# ---------------------------------------------------------------- padding


def bucketed(seqs: list, fill: int = 0, states: list | None = None,
             buckets=BUCKETS) -> list[tuple]:
  """Padded (ids, mask[, states]) per length bucket: few compiled shapes, little padding."""
  lengths = np.array([len(s) for s in seqs])
  out, low = [], 0
  for high in (*buckets, max(buckets[-1], lengths.max())):
    idx = np.flatnonzero((lengths > low) & (lengths <= high))
    low = high
    if not len(idx):
      continue
    ids, mask = pad([seqs[i] for i in idx], high, fill)
    batch = (ids, mask)
    if states is not None:
      batch += (pad([states[i] for i in idx], high, -1)[0],)
    out.append(batch)
  return out


def padded_in_order(seqs: list, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
  return pad(seqs, value=fill)


# ---------------------------------------------------------------- unknown words


def shape_class(word: str) -> str:
  """A coarse word shape: digits, hyphen, capitalisation (all caps, initial capital, lower)."""
  parts = []
  if any(c.isdigit() for c in word):
    parts.append("d")
  if "-" in word:
    parts.append("h")
  if word.isupper():
    parts.append("A")
  elif word[:1].isupper():
    parts.append("C")
  return "".join(parts) or "l"


class SuffixModel:
  """TnT's unknown-word model: P(tag | suffix) by successive abstraction, per shape class."""

  def __init__(self, words: list[str], tags: list[int], num_tags: int, tag_prior: np.ndarray,
               max_suffix: int):
    self.max_suffix, self.prior = max_suffix, tag_prior
    # theta: the standard deviation of the unconditioned tag probabilities (Brants 2000).
    self.theta = float(np.std(tag_prior, ddof=1))
    self.counts: dict = collections.defaultdict(lambda: np.zeros(num_tags))
    for w, t in zip(words, tags, strict=True):
      for key in self._keys(w):
        self.counts[key][t] += 1
    self.counts = dict(self.counts)

  def _keys(self, word: str):
    shape = shape_class(word)
    yield (shape, "")
    for i in range(1, min(self.max_suffix, len(word)) + 1):
      yield (shape, word[-i:])

  def log_emission(self, word: str) -> np.ndarray:
    """log P(tag | suffix) - log P(tag): a score proportional to P(word | tag)."""
    p = None
    for key in self._keys(word):
      c = self.counts.get(key)
      if c is None:
        break
      estimate = c / c.sum()
      p = estimate if p is None else (estimate + self.theta * p) / (1 + self.theta)
    if p is None:  # a shape never seen among rare words: the prior alone
      p = self.prior
    return np.log(np.maximum(p, 1e-12)) - np.log(self.prior)


# ---------------------------------------------------------------- supervised tagger


class Tagger:
  """A supervised bigram HMM tagger: counted emissions for training words, suffixes for others.

  With `fit=False` only the vocabularies and the suffix model are built (deterministic functions
  of the training sentences) and `hmm` is None; `fit_hmm` then gives the fitted HMM, which
  `decode` takes as an argument.
  """

  def __init__(self, sentences: list[list[str]], tag_sequences: list[list[str]],
               trans_k: float, emit_k: float, rare_count: int, max_suffix: int,
               end_state: bool = True, fit: bool = True):
    self.end_state, self.trans_k, self.emit_k = end_state, trans_k, emit_k
    if end_state:
      sentences = [[*s, END] for s in sentences]
      tag_sequences = [[*t, END] for t in tag_sequences]
    self.tags = Vocabulary.build(t for ts in tag_sequences for t in ts)
    self.words = Vocabulary.build(w for s in sentences for w in s)
    k = len(self.tags)

    # The suffix model learns from rare training words (unknown words resemble them).
    counts = collections.Counter(w for s in sentences for w in s)
    rare = [(w, t) for s, ts in zip(sentences, tag_sequences, strict=True)
            for w, t in zip(s, ts, strict=True) if counts[w] <= rare_count and w != END]
    tag_counts = np.bincount(np.concatenate([self.tags.encode(t) for t in tag_sequences]),
                             minlength=k).astype(np.float64)
    prior = (tag_counts + 1e-3) / (tag_counts + 1e-3).sum()
    self.suffix = SuffixModel([w for w, _ in rare], [self.tags.id(t) for _, t in rare], k, prior,
                              max_suffix)
    if end_state:  # no unknown word is the end marker
      self.end_id = self.tags.id(END)
    self.hmm = self._fit(sentences, tag_sequences) if fit else None

  def empty_hmm(self) -> H.HMM:
    """Zeros of the fitted HMM's shapes (a checkpoint's structure)."""
    k, v = len(self.tags), len(self.words)
    return H.HMM(jnp.zeros(k), jnp.zeros((k, k)),
                 H.Categorical(jnp.zeros((k, v)), pseudo_count=self.emit_k))

  def fit_hmm(self, sentences: list[list[str]], tag_sequences: list[list[str]]) -> H.HMM:
    """The HMM counted from the sentences this tagger was built from."""
    if self.end_state:
      sentences = [[*s, END] for s in sentences]
      tag_sequences = [[*t, END] for t in tag_sequences]
    return self._fit(sentences, tag_sequences)

  def fit_blended(self, sentences: list[list[str]], tag_sequences: list[list[str]],
                  joint_weight: float, max_iter: int = 500,
                  tol: float = 1e-6) -> tuple[H.HMM, dict]:
    """(HMM, info): the HMM fitted to joint_weight * log p(x, y) + (1 - joint_weight) *
    log p(y | x) of the sentences this tagger was built from, with the add-k smoothing as a
    Dirichlet(k + 1) prior (genjax.structured.hmm_hybrid), by L-BFGS from the counted HMM.
    joint_weight = 1 is `fit_hmm` itself (info empty). Unknown words keep the suffix model
    estimated from the counts: it scores them at decoding whatever the weight."""
    joint_weight = hmm_hybrid.check_joint_weight(joint_weight)
    if self.end_state:
      sentences = [[*s, END] for s in sentences]
      tag_sequences = [[*t, END] for t in tag_sequences]
    hmm = self._fit(sentences, tag_sequences)
    if joint_weight == 1.0:
      return hmm, {}
    x, z, mask = self._encode(sentences, tag_sequences)
    data = hmm_hybrid.labelled(x, z, mask, len(self.tags), len(self.words))
    return hmm_hybrid.fit(hmm, data, joint_weight, self.trans_k, self.emit_k,
                          max_iter=max_iter, tol=tol)

  def fit_unsupervised(self, sentences: list[list[str]], tag_sequences: list[list[str]],
                       key, restarts: int, max_iter: int, tol: float | None = None
                       ) -> tuple[H.HMM, dict]:
    """(HMM, info): Baum-Welch on the sentences alone (the tags unseen), from `restarts`
    random starts (`jax.random.fold_in(key, r)`), each at most `max_iter` EM iterations,
    stopping where the log-likelihood per token gains less than `tol`; the start of the best
    final log-likelihood is kept. Its states, unnamed by EM, are then named by the tags: the
    one-to-one assignment of states to tags that agrees most often with `tag_sequences` on
    these sentences (name_states). The end state emits only the end marker and no other state
    does (zeros that EM keeps where emit_k is 0), so sentence ends name it. info:
    log_likelihoods and num_iterations per start (log p(sentences) before each start's last
    M-step), `best` (its index) and `matched_accuracy` (% of tokens whose named state is their
    tag)."""
    import jax
    if self.end_state:
      sentences = [[*s, END] for s in sentences]
    packed = H.pack([self.words.encode(s) for s in sentences])
    k, v = len(self.tags), len(self.words)
    runs = []
    for r in range(restarts):
      key_r = jax.random.fold_in(key, r)
      start = H.HMM.random(key_r, H.Categorical.random(jax.random.fold_in(key_r, 1), k, v,
                                                       pseudo_count=self.emit_k))
      if self.end_state:  # the end marker's row and column: only the end state emits it
        end_word = self.words.id(END)
        log_B = start.emission.log_B_KxV.at[:, end_word].set(-jnp.inf)
        log_B = log_B - jax.nn.logsumexp(log_B, 1, keepdims=True)
        log_B = log_B.at[self.end_id].set(jnp.log(jnp.eye(v)[end_word]))
        start = start.replace(emission=start.emission.replace(log_B_KxV=log_B))
      fitted, history = H.fit_em(start, packed, max_iter, self.trans_k, tol=tol)
      runs.append((history[-1], len(history), fitted))
    best = int(np.argmax([ll for ll, _, _ in runs]))
    cut = 1 if self.end_state else 0
    hmm, accuracy = self.name_states(runs[best][2], [s[:len(s) - cut] for s in sentences],
                                     tag_sequences)
    return hmm, {"log_likelihoods": [ll for ll, _, _ in runs],
                 "num_iterations": [n for _, n, _ in runs], "best": best,
                 "matched_accuracy": accuracy}

  def name_states(self, hmm: H.HMM, sentences: list[list[str]],
                  tag_sequences: list[list[str]]) -> tuple[H.HMM, float]:
    """(`hmm` with its states reordered, the % of tokens whose state is then their tag): the
    one-to-one assignment of `hmm`'s states to the tags that agrees most often with
    `tag_sequences` on the Viterbi paths of `sentences` (the Hungarian method; the end state
    keeps its place)."""
    from scipy.optimize import linear_sum_assignment
    k = len(self.tags)
    gold = np.concatenate([self.tags.encode(t) for t in tag_sequences])
    pred = np.concatenate([self.tags.encode(p) for p in self.decode(sentences, hmm=hmm)])
    agree = np.zeros((k, k))  # rows: the HMM's states; columns: the tags
    np.add.at(agree, (pred, gold), 1)
    free = np.array([i for i in range(k) if not (self.end_state and i == self.end_id)])
    states, tags = linear_sum_assignment(-agree[np.ix_(free, free)])
    order = np.arange(k)  # order[tag] = the state that plays it
    order[free[tags]] = free[states]
    hmm = H.HMM(hmm.log_pi_K[order], hmm.log_A_KxK[order][:, order],
                hmm.emission.replace(log_B_KxV=hmm.emission.log_B_KxV[order]))
    return hmm, 100.0 * agree[free[states], free[tags]].sum() / max(len(gold), 1)

  def _encode(self, sentences, tag_sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, z, mask): word ids, tag ids (0 at padding) and the mask, padded in order."""
    x, mask = padded_in_order([self.words.encode(s) for s in sentences])
    z, _ = padded_in_order([self.tags.encode(t) for t in tag_sequences], -1)
    return x, np.maximum(z, 0), mask

  def _fit(self, sentences, tag_sequences) -> H.HMM:
    x, z, mask = self._encode(sentences, tag_sequences)
    return H.fit_supervised(self.empty_hmm().emission, x, z, mask, pseudo_count=self.trans_k)

  def unknown(self, sentences: list[list[str]]) -> list[list[bool]]:
    """Which tokens were never seen in training."""
    return [[w not in self.words for w in s] for s in sentences]

  def decode(self, sentences: list[list[str]], batch: int = 512,
             hmm: H.HMM | None = None) -> list[list[str]]:
    """Viterbi tags of each sentence (the end state removed), under `hmm` (default: own)."""
    hmm = self.hmm if hmm is None else hmm
    if self.end_state:
      sentences = [[*s, END] for s in sentences]
    # Unknown word types become extra emission columns, scored by the suffix model.
    unknown = sorted({w for s in sentences for w in s if w not in self.words})
    extra = np.stack([self.suffix.log_emission(w) for w in unknown], 1) if unknown else None
    if extra is not None and self.end_state:
      extra[self.end_id] = -np.inf
    log_B = hmm.emission.log_B_KxV
    if extra is not None:
      log_B = jnp.concatenate([log_B, jnp.asarray(extra, jnp.float32)], 1)
    hmm = hmm.replace(emission=hmm.emission.replace(log_B_KxV=log_B))
    ids = {w: len(self.words) + i for i, w in enumerate(unknown)}
    encoded = [np.array([self.words.id(w) if w in self.words else ids[w] for w in s], np.int32)
               for s in sentences]
    # Sentences sorted by length and padded to a multiple of 16: little padding, few shapes.
    order = np.argsort([len(e) for e in encoded], kind="stable")
    out = [None] * len(encoded)
    for start in range(0, len(encoded), batch):
      idx = order[start:start + batch]
      longest = max(len(encoded[i]) for i in idx)
      x, mask = pad([encoded[i] for i in idx], -(-longest // 16) * 16)
      z, _ = H.viterbi(hmm, x, mask)
      for i, zi in zip(idx, np.asarray(z), strict=True):
        out[i] = zi
    cut = 1 if self.end_state else 0
    return [self.tags.decode(zi[:len(s) - cut]) for zi, s in zip(out, sentences, strict=True)]


# ---------------------------------------------------------------- scores


def token_accuracy(gold: list[list[str]], pred: list[list[str]],
                   select: list[list[bool]] | None = None) -> float:
  """Percentage of tokens (those `select` marks, default all) whose tag is right."""
  pairs = [(g, p) for i, (gs, ps) in enumerate(zip(gold, pred, strict=True))
           for j, (g, p) in enumerate(zip(gs, ps, strict=True))
           if select is None or select[i][j]]
  return 100.0 * sum(g == p for g, p in pairs) / max(len(pairs), 1)


def many_to_one(gold_ids: np.ndarray, pred_ids: np.ndarray, num_gold: int,
                num_states: int) -> float:
  """Accuracy after mapping each state to the gold tag it most often labels."""
  table = np.zeros((num_states, num_gold))
  np.add.at(table, (pred_ids, gold_ids), 1)
  return 100.0 * table.max(1).sum() / len(gold_ids)
