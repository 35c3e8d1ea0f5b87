"""HMMs on CoNLL-2000: a supervised POS tagger, chunking from POS, and EM on the whole corpus.

  python experiments/pos_tag.py --workdir=runs/pos_tag                # all three parts
  python experiments/pos_tag.py --workdir=runs/pos_tag --parts=pos    # the tagger only

The pos and chunk parts are single fits of the `hmm_tagger` fit family
(genjax.families.hmm_tagger, config experiments/configs/hmm_tagger.py) through the generic loop,
each in its own workdir under <workdir> (pos/, chunk/, chunk_paired/); the em part is a study
of Baum-Welch itself, on the helpers of genjax.structured.tagger.

- pos: a bigram HMM (states: POS tags, with an end-of-sentence state; observations: words) fit by
  counting with add-k smoothing. Training words keep their counted emissions; an unknown word
  gets TnT's suffix model (Brants 2000): P(tag | longest known suffix, capitalisation), estimated
  from rare training words and smoothed by successive abstraction, divided by P(tag), plus a
  word-shape class (digits, hyphens, capitals). Token accuracy on the test section, all and
  unknown words. Target >= 96.5 %.
- chunk: chunk tags from POS tags with a bigram HMM (states: chunk tags, observations: POS), and
  with states that pair each chunk tag with its POS tag (the "specialised" HMM of Molina & Pla
  2002). Scored with conlleval's chunk F1 on the test section, from gold POS tags.
- em: Baum-Welch on every training sentence (212k tokens, every word type, 44 states), the
  sentences packed end to end into fixed-size chunks (`hmm.pack`) so that one compiled program
  (scaled forward-backward, then the M-step) serves every chunk: compile seconds, seconds per
  iteration, peak memory, per-token log-likelihood and many-to-one tagging accuracy; then
  semi-supervised EM with the tags of 5 % of the sentences observed (clamped), against the
  supervised tagger fit on those 5 % alone.

`--config.FIELD=VALUE` overrides a field of the pos and chunk fits' config (e.g.
`--config.model.trans_k=0.2`); `--config.data.data_dir` is the CoNLL-2000 folder of every part
(default ../shared/data/conll2000). Everything numeric goes to <workdir>/results.json.
"""

import os
import resource
import time

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from genjax.structured.tagger import bucketed, many_to_one, padded_in_order  # noqa: E402

flags.DEFINE_string("workdir", "runs/pos_tag", "Where results.json (and each fit's workdir) go.")
flags.DEFINE_list("parts", ["pos", "chunk", "em"], "Which of pos, chunk, em to run.")
flags.DEFINE_bool("dev", False, "Hold out the last 10 % of training sentences as the test set.")
flags.DEFINE_integer("em_iters", 10, "Unsupervised EM iterations on the whole training text.")
flags.DEFINE_integer("semi_iters", 5, "Semi-supervised EM iterations.")
flags.DEFINE_float("semi_fraction", 0.05, "Fraction of training sentences whose tags are seen.")
flags.DEFINE_integer("chunk_tokens", 1 << 15,
                     "Steps per E-step chunk (sentences packed end to end in rows).")
flags.DEFINE_integer("chunk_size", None, "Replaced by --chunk_tokens (sentences are now packed).")
flags.DEFINE_integer("seed", 0, "EM initialisation seed.")
FLAGS = flags.FLAGS

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "hmm_tagger.py")
# The fits' smoothing and suffix-model settings (config.model) that the flags below mirrored.
MODEL_FIELDS = ("trans_k", "emit_k", "rare_count", "max_suffix")
RENAMED = {**{f: f"--config.model.{f}" for f in MODEL_FIELDS}, "outdir": "--workdir",
           "data_dir": "--config.data.data_dir", "conll_dir": "--config.data.data_dir"}


# ---------------------------------------------------------------- pos and chunk: one fit each


def task_config(task: str, overrides: dict):
  """experiments/configs/hmm_tagger.py for `task` (`pos`, `chunk` or `chunk_paired`) with
  `overrides` ({dotted field: value text}) set; an unknown field is a ValueError naming it."""
  from genjax import config as gconfig
  from genjax import studies
  config = gconfig.load(f"{CONFIG}:{task}")
  config.unlock()
  studies.override(config, overrides, f"hmm_tagger.py:{task}")
  return config


def fit_task(task: str, num_train: int, overrides: dict) -> dict:
  """One hmm_tagger fit (`pos`, `chunk` or `chunk_paired`) through the loop, in
  <workdir>/<task>; its scores on the test section (with --dev: the held-out 10 %)."""
  from genjax import train

  config = task_config(task, overrides)
  if FLAGS.dev:
    config.data.validation_size = num_train - int(0.9 * num_train)
    for options in config.evals.values():
      options.split = "validation"
  results = train.train_and_evaluate(config, os.path.join(FLAGS.workdir, task))
  split = "validation" if FLAGS.dev else "test"
  return {**results[split], "fit_seconds": results["fit_seconds"]}


# ---------------------------------------------------------------- EM on the whole corpus


def peak_rss_mb() -> float:
  # ru_maxrss is KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
  t0 = time.perf_counter()
  packed = H.pack(x_train, chunk_tokens=FLAGS.chunk_tokens)
  pack_seconds = time.perf_counter() - t0
  rss_before = peak_rss_mb()

  # Unsupervised: random start, Baum-Welch on every training sentence.
  key = jax.random.key(FLAGS.seed)
  hmm = H.HMM.random(key, H.Categorical.random(jax.random.fold_in(key, 1), k, v, 1.0, 1e-3))
  t0 = time.perf_counter()
  H.packed_em_step.lower(hmm, packed, 1e-3).compile()  # timed alone: compiling
  compile_seconds = time.perf_counter() - t0
  seconds, per_token = [], []
  for _ in range(FLAGS.em_iters):
    t0 = time.perf_counter()
    hmm, stats = H.em_step(hmm, packed, pseudo_count=1e-3)
    jax.block_until_ready(hmm)
    seconds.append(time.perf_counter() - t0)
    per_token.append(float(stats.log_likelihood) / n_tokens)
    print(f"EM iteration {len(seconds)}: {seconds[-1]:.2f} s, log-likelihood/token "
          f"{per_token[-1]:.4f}", flush=True)
  z_hat = np.concatenate([np.asarray(z)[np.asarray(m)] for z, m in
                          ((H.viterbi(hmm, b[0], b[1])[0], b[1]) for b in batches)])
  z_gold = np.concatenate([b[0][b[1]] for b in bucketed(z_train)])
  result = {"num_states": k, "vocabulary": v, "train_tokens": n_tokens,
            "train_sentences": len(train), "chunks_rows_steps": list(packed.mask.shape),
            "packed_fill": n_tokens / packed.mask.size, "pack_seconds": pack_seconds,
            "iterations": FLAGS.em_iters,
            # One program for every chunk, compiled ahead of the first iteration (whose call
            # finds it compiled).
            "compile_seconds": compile_seconds, "first_iteration_seconds": seconds[0],
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
  hmm, semi_packed = init, H.pack(x_train, states, chunk_tokens=FLAGS.chunk_tokens)
  for _ in range(FLAGS.semi_iters):
    t0 = time.perf_counter()
    hmm, stats = H.em_step(hmm, semi_packed, pseudo_count=0.1)
    jax.block_until_ready(hmm)
    semi["test_accuracy"].append(test_accuracy(hmm))
    print(f"semi-supervised EM iteration {len(semi['test_accuracy'])}: "
          f"{time.perf_counter() - t0:.2f} s, test accuracy {semi['test_accuracy'][-1]:.2f}",
          flush=True)
  result["semi_supervised"] = semi
  result["peak_rss_mb"] = peak_rss_mb()
  return result


def main(argv, overrides):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.chunk_size is not None:
    raise app.UsageError("--chunk_size (sentences per E-step chunk) is replaced by "
                         "--chunk_tokens (steps per chunk of packed sentences)")
  from genjax.data.sequences import load_conll
  from genjax.writers import write_json

  if "em" in FLAGS.parts:
    # The em part times XLA's compilation; a program read back from the persistent compilation
    # cache (on for scripts run through cli.run) would time a disk read instead.
    from genjax import compilation_cache
    compilation_cache.disable()
  config = task_config("pos", overrides)  # the overrides fail here, before any fit
  data_dir = config.data.data_dir
  train = load_conll("train", data_dir)
  results = {"split": "dev" if FLAGS.dev else "test",
             "flags": {**{f: config.model[f] for f in MODEL_FIELDS},
                       **{f: FLAGS[f].value for f in ("em_iters", "semi_iters", "semi_fraction",
                                                      "chunk_tokens", "seed")}}}
  if "pos" in FLAGS.parts:
    results["pos"] = fit_task("pos", len(train), overrides)
    print("pos", results["pos"], flush=True)
  if "chunk" in FLAGS.parts:
    results["chunk_from_pos"] = fit_task("chunk", len(train), overrides)
    results["chunk_from_pos_paired_states"] = fit_task("chunk_paired", len(train), overrides)
    print("chunk", results["chunk_from_pos"], results["chunk_from_pos_paired_states"],
          flush=True)
  if "em" in FLAGS.parts:
    test = load_conll("test", data_dir)
    if FLAGS.dev:
      cut = int(0.9 * len(train))
      train, test = train[:cut], train[cut:]
    results["em"] = run_em(train, test)
  write_json(os.path.join(FLAGS.workdir, "results.json"), results)
  print(f"wrote {os.path.join(FLAGS.workdir, 'results.json')}")


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED, config_overrides=True)
