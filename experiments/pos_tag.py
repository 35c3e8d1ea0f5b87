"""HMMs on CoNLL-2000: a supervised POS tagger, chunking from POS, and EM on the whole corpus.

  python experiments/pos_tag.py --outdir=runs/pos_tag                # all three parts
  python experiments/pos_tag.py --outdir=runs/pos_tag --parts=pos    # the tagger only

- pos: a bigram HMM (states: POS tags, with an end-of-sentence state; observations: words) fit by
  counting with add-k smoothing. Training words keep their counted emissions; an unknown word
  gets TnT's suffix model (Brants 2000): P(tag | longest known suffix, capitalisation), estimated
  from rare training words and smoothed by successive abstraction, divided by P(tag), plus a
  word-shape class (digits, hyphens, capitals). Token accuracy on the test section, all and
  unknown words. Target >= 96.5 %.
- chunk: chunk tags from POS tags with a bigram HMM (states: chunk tags, observations: POS), and
  with states that pair each chunk tag with its POS tag (the "specialised" HMM of Molina & Pla
  2002). Scored with conlleval's chunk F1 on the test section, from gold POS tags.
- em: Baum-Welch on every training sentence (212k tokens, every word type, 45 states) in length
  buckets and chunks of sentences: seconds per iteration, peak memory, per-token log-likelihood
  and many-to-one tagging accuracy; then semi-supervised EM with the tags of 5 % of the sentences
  observed (clamped), against the supervised tagger fit on those 5 % alone.

Everything numeric goes to <outdir>/results.json.
"""

import collections
import os
import resource
import sys
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_string("outdir", "runs/pos_tag", "Where results.json goes.")
flags.DEFINE_list("parts", ["pos", "chunk", "em"], "Which of pos, chunk, em to run.")
flags.DEFINE_string("conll_dir", None, "CoNLL-2000 directory (default: ../shared/data/conll2000).")
flags.DEFINE_bool("dev", False, "Hold out the last 10 % of training sentences as the test set.")
flags.DEFINE_float("trans_k", 0.1, "Add-k smoothing of tag transitions.")
flags.DEFINE_float("emit_k", 0.0, "Add-k smoothing of a tag's emissions of training words.")
flags.DEFINE_integer("rare_count", 10, "Words seen at most this often train the suffix model.")
flags.DEFINE_integer("max_suffix", 10, "Longest suffix the unknown-word model looks at.")
flags.DEFINE_integer("em_iters", 10, "Unsupervised EM iterations on the whole training text.")
flags.DEFINE_integer("semi_iters", 5, "Semi-supervised EM iterations.")
flags.DEFINE_float("semi_fraction", 0.05, "Fraction of training sentences whose tags are seen.")
flags.DEFINE_integer("chunk_size", 256, "Sentences per E-step chunk.")
flags.DEFINE_integer("seed", 0, "EM initialisation seed.")
FLAGS = flags.FLAGS

END = "<END>"
BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128)


# ---------------------------------------------------------------- data


def bucketed(seqs: list, fill: int = 0, states: list | None = None,
             buckets=BUCKETS) -> list[tuple]:
  """Padded (ids, mask[, states]) per length bucket: few compiled shapes, little padding."""
  from genjax.data.sequences import pad
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
  from genjax.data.sequences import pad
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
  """A supervised bigram HMM tagger: counted emissions for training words, suffixes for others."""

  def __init__(self, sentences: list[list[str]], tag_sequences: list[list[str]],
               trans_k: float, emit_k: float, rare_count: int, max_suffix: int,
               end_state: bool = True):
    import jax.numpy as jnp

    from genjax.data.sequences import Vocabulary
    from genjax.structured import hmm as H

    if end_state:
      sentences = [[*s, END] for s in sentences]
      tag_sequences = [[*t, END] for t in tag_sequences]
    self.end_state = end_state
    self.tags = Vocabulary.build(t for ts in tag_sequences for t in ts)
    self.words = Vocabulary.build(w for s in sentences for w in s)
    k = len(self.tags)
    x, mask = padded_in_order([self.words.encode(s) for s in sentences])
    z, _ = padded_in_order([self.tags.encode(t) for t in tag_sequences], -1)
    emission = H.Categorical(jnp.zeros((k, len(self.words))), pseudo_count=emit_k)
    self.hmm = H.fit_supervised(emission, x, np.maximum(z, 0), mask, pseudo_count=trans_k)

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

  def decode(self, sentences: list[list[str]], batch: int = 512) -> list[list[str]]:
    """Viterbi tags of each sentence (the end state removed)."""
    import jax.numpy as jnp

    from genjax.data.sequences import pad
    from genjax.structured import hmm as H

    if self.end_state:
      sentences = [[*s, END] for s in sentences]
    # Unknown word types become extra emission columns, scored by the suffix model.
    unknown = sorted({w for s in sentences for w in s if w not in self.words})
    extra = np.stack([self.suffix.log_emission(w) for w in unknown], 1) if unknown else None
    if extra is not None and self.end_state:
      extra[self.end_id] = -np.inf
    log_B = self.hmm.emission.log_B_KxV
    if extra is not None:
      log_B = jnp.concatenate([log_B, jnp.asarray(extra, jnp.float32)], 1)
    hmm = self.hmm.replace(emission=self.hmm.emission.replace(log_B_KxV=log_B))
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


def token_accuracy(gold: list[list[str]], pred: list[list[str]],
                   select: list[list[bool]] | None = None) -> float:
  pairs = [(g, p) for i, (gs, ps) in enumerate(zip(gold, pred, strict=True))
           for j, (g, p) in enumerate(zip(gs, ps, strict=True))
           if select is None or select[i][j]]
  return 100.0 * sum(g == p for g, p in pairs) / max(len(pairs), 1)


def run_pos(train, test) -> dict:
  t0 = time.perf_counter()
  tagger = Tagger([list(s.words) for s in train], [list(s.pos) for s in train], FLAGS.trans_k,
                  FLAGS.emit_k, FLAGS.rare_count, FLAGS.max_suffix)
  fit_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  pred = tagger.decode([list(s.words) for s in test])
  decode_s = time.perf_counter() - t0
  gold = [list(s.pos) for s in test]
  unknown = [[w not in tagger.words for w in s.words] for s in test]
  n_unk = sum(map(sum, unknown))
  return {"accuracy": token_accuracy(gold, pred),
          "unknown_word_accuracy": token_accuracy(gold, pred, unknown),
          "known_word_accuracy": token_accuracy(gold, pred, [[not u for u in s] for s in unknown]),
          "unknown_word_fraction": 100.0 * n_unk / sum(len(s) for s in test),
          "num_tags": len(tagger.tags), "vocabulary": len(tagger.words),
          "fit_seconds": fit_s, "decode_seconds": decode_s,
          "test_tokens": sum(len(s) for s in test)}


# ---------------------------------------------------------------- chunking from POS


def chunk_from_pos(train, test, paired: bool) -> dict:
  """Chunk tags by Viterbi over POS observations; `paired` states are (chunk tag, POS) pairs."""
  from genjax.metrics.chunking import conll_f1
  state = (lambda s: [f"{c}|{p}" for c, p in zip(s.chunks, s.pos, strict=True)]) if paired \
      else (lambda s: list(s.chunks))
  # A POS tag unseen in training would be an unknown word: none in CoNLL-2000, but map it to
  # the rarest-suffix fallback by the Tagger's machinery anyway.
  tagger = Tagger([list(s.pos) for s in train], [state(s) for s in train], FLAGS.trans_k,
                  FLAGS.emit_k, 0, 0)
  t0 = time.perf_counter()
  pred = tagger.decode([list(s.pos) for s in test], batch=128 if paired else 512)
  seconds = time.perf_counter() - t0
  pred = [[p.split("|")[0] for p in ps] for ps in pred]
  scores = conll_f1([list(s.chunks) for s in test], pred)
  return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
          "tag_accuracy": scores["accuracy"], "num_states": len(tagger.tags),
          "decode_seconds": seconds}


# ---------------------------------------------------------------- EM on the whole corpus


def peak_rss_mb() -> float:
  # ru_maxrss is KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def many_to_one(gold_ids: np.ndarray, pred_ids: np.ndarray, num_gold: int,
                num_states: int) -> float:
  """Accuracy after mapping each state to the gold tag it most often labels."""
  table = np.zeros((num_states, num_gold))
  np.add.at(table, (pred_ids, gold_ids), 1)
  return 100.0 * table.max(1).sum() / len(gold_ids)


def run_em(train, test) -> dict:
  import jax
  import jax.numpy as jnp

  from genjax.data.sequences import Vocabulary
  from genjax.structured import hmm as H

  words = Vocabulary.build(w for s in [*train, *test] for w in s.words)
  tags = Vocabulary.build(t for s in train for t in s.pos)
  k, v = len(tags), len(words)
  x_train = [words.encode(s.words) for s in train]
  z_train = [tags.encode(s.pos) for s in train]
  batches = bucketed(x_train)
  n_tokens = sum(len(s) for s in train)
  rss_before = peak_rss_mb()

  # Unsupervised: random start, Baum-Welch on every training sentence.
  key = jax.random.key(FLAGS.seed)
  hmm = H.HMM.random(key, H.Categorical.random(jax.random.fold_in(key, 1), k, v, 1.0, 1e-3))
  seconds, per_token = [], []
  for _ in range(FLAGS.em_iters):
    t0 = time.perf_counter()
    hmm, stats = H.em_step(hmm, batches, pseudo_count=1e-3, chunk_size=FLAGS.chunk_size)
    jax.block_until_ready(hmm)
    seconds.append(time.perf_counter() - t0)
    per_token.append(float(stats.log_likelihood) / n_tokens)
    print(f"EM iteration {len(seconds)}: {seconds[-1]:.2f} s, log-likelihood/token "
          f"{per_token[-1]:.4f}", flush=True)
  z_hat = np.concatenate([np.asarray(z)[np.asarray(m)] for z, m in
                          ((H.viterbi(hmm, b[0], b[1])[0], b[1]) for b in batches)])
  z_gold = np.concatenate([b[0][b[1]] for b in bucketed(z_train)])
  result = {"num_states": k, "vocabulary": v, "train_tokens": n_tokens,
            "train_sentences": len(train), "chunk_size": FLAGS.chunk_size,
            "iterations": FLAGS.em_iters,
            "first_iteration_seconds": seconds[0],  # includes compilation per length bucket
            "seconds_per_iteration": float(np.median(seconds[1:])) if len(seconds) > 1
            else seconds[0],
            "log_likelihood_per_token": per_token,
            "many_to_one_accuracy": many_to_one(z_gold, z_hat, k, k),
            "peak_rss_mb_before_em": rss_before, "peak_rss_mb": peak_rss_mb()}

  # Semi-supervised: the tags of a random few sentences are observed (clamped); the model starts
  # from the supervised fit on them and runs EM on every sentence.
  rng = np.random.default_rng(FLAGS.seed)
  seen = rng.random(len(train)) < FLAGS.semi_fraction
  states = [z if s else np.full(len(z), -1, np.int32) for z, s in zip(z_train, seen, strict=True)]
  labelled = [i for i in range(len(train)) if seen[i]]
  x_l, m_l = padded_in_order([x_train[i] for i in labelled])
  z_l, _ = padded_in_order([z_train[i] for i in labelled])
  init = H.fit_supervised(H.Categorical(jnp.zeros((k, v)), pseudo_count=0.1), x_l, z_l, m_l, 0.1)
  x_test, m_test = padded_in_order([words.encode(s.words) for s in test])
  gold_test = np.asarray(padded_in_order([tags.encode(s.pos) for s in test])[0])[m_test]

  def test_accuracy(h):
    z, _ = H.viterbi(h, x_test, m_test)
    return 100.0 * float(np.mean(np.asarray(z)[m_test] == gold_test))

  semi = {"labelled_sentences": len(labelled),
          "labelled_tokens": int(m_l.sum()),
          "supervised_only_test_accuracy": test_accuracy(init), "test_accuracy": []}
  hmm, semi_batches = init, bucketed(x_train, states=states)
  for _ in range(FLAGS.semi_iters):
    t0 = time.perf_counter()
    hmm, stats = H.em_step(hmm, semi_batches, pseudo_count=0.1, chunk_size=FLAGS.chunk_size)
    jax.block_until_ready(hmm)
    semi["test_accuracy"].append(test_accuracy(hmm))
    print(f"semi-supervised EM iteration {len(semi['test_accuracy'])}: "
          f"{time.perf_counter() - t0:.2f} s, test accuracy {semi['test_accuracy'][-1]:.2f}",
          flush=True)
  result["semi_supervised"] = semi
  result["peak_rss_mb"] = peak_rss_mb()
  return result


def main(argv):
  del argv
  from genjax.data.sequences import load_conll
  from genjax.writers import write_json

  train = load_conll("train", FLAGS.conll_dir)
  test = load_conll("test", FLAGS.conll_dir)
  if FLAGS.dev:
    cut = int(0.9 * len(train))
    train, test = train[:cut], train[cut:]
  results = {"split": "dev" if FLAGS.dev else "test",
             "flags": {f: FLAGS[f].value for f in ("trans_k", "emit_k", "rare_count",
                                                   "max_suffix", "em_iters", "semi_iters",
                                                   "semi_fraction", "chunk_size", "seed")}}
  if "pos" in FLAGS.parts:
    results["pos"] = run_pos(train, test)
    print("pos", results["pos"], flush=True)
  if "chunk" in FLAGS.parts:
    results["chunk_from_pos"] = chunk_from_pos(train, test, paired=False)
    results["chunk_from_pos_paired_states"] = chunk_from_pos(train, test, paired=True)
    print("chunk", results["chunk_from_pos"], results["chunk_from_pos_paired_states"],
          flush=True)
  if "em" in FLAGS.parts:
    results["em"] = run_em(train, test)
  write_json(os.path.join(FLAGS.outdir, "results.json"), results)
  print(f"wrote {os.path.join(FLAGS.outdir, 'results.json')}")


if __name__ == "__main__":
  app.run(main)
