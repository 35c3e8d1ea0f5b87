"""HMM benchmarks: forward-backward throughput (scaled, log-space scan, associative scan), EM
iterations/s, and Baum-Welch on CoNLL-2000 side by side with hmmlearn.

  python experiments/benchmark.py --model=hmm_forward_backward --json
  python experiments/benchmark.py --model=hmm_em --json
  python experiments/benchmark.py --model=hmm_em_conll2000 --peers --json

jax and genjax's HMM are imported inside the tasks, not here: the memory probe of the hmmlearn
side (a subprocess that imports this module) must not carry jax's runtime.
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from benchmarks import _peers

# A POS-tagger-sized model: tens of states, thousands of symbols, sentence-length sequences.
NUM_STATES, NUM_SYMBOLS, BATCH, LENGTH = 45, 5000, 256, 32

# hmm_em_conll2000: hmmlearn's ground (a categorical HMM, many short sequences, on a CPU).
CONLL_STATES, CONLL_WORDS, CONLL_EM_ITERS, CONLL_SEED = 20, 5000, 5, 0
PEER_NAME = "hmmlearn CategoricalHMM(implementation='scaling')"


def _model_and_data():
  import jax
  import jax.numpy as jnp

  from genjax.structured import hmm as H
  key = jax.random.key(0)
  hmm = H.HMM.random(key, H.Categorical.random(jax.random.fold_in(key, 1), NUM_STATES,
                                               NUM_SYMBOLS, 1.0, 1e-3))
  _, x = H.sample(jax.random.fold_in(key, 2), hmm, BATCH, LENGTH)
  return hmm, x, jnp.ones(x.shape, bool)


def forward_backward(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Posterior marginals of a batch of length-T sequences: sequences/s for each method."""
  import jax

  from genjax import timing
  from genjax.structured import hmm as H
  del peak_size
  hmm, x, mask = _model_and_data()
  fns = {name: (lambda m=method: H.posterior_marginals(hmm, x, mask, method=m))
         for name, method in (("scaled", "scaled"), ("scan", "log"),
                              ("associative_scan", "parallel"))}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  return {"backend": jax.default_backend(), "num_states": NUM_STATES, "batch": BATCH,
          "length": LENGTH,
          "sequences_per_sec_scaled": BATCH / seconds["scaled"],
          # scan: the log-space scan; associative_scan: its O(log T)-depth form.
          "sequences_per_sec_scan": BATCH / seconds["scan"],
          "sequences_per_sec_associative_scan": BATCH / seconds["associative_scan"],
          "tokens_per_sec_scaled": BATCH * LENGTH / seconds["scaled"],
          "tokens_per_sec_scan": BATCH * LENGTH / seconds["scan"]}


def em(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Baum-Welch iterations (E-step in chunks of 64 sequences, then M-step) per second."""
  import jax

  from genjax import timing
  from genjax.structured import hmm as H
  del peak_size
  hmm, x, mask = _model_and_data()
  step = jax.jit(lambda h: H.em_step(h, [(x, mask)], pseudo_count=1e-3, chunk_size=64)[0])
  holder = {"hmm": hmm}

  def one():
    holder["hmm"] = step(holder["hmm"])
    return holder["hmm"]

  seconds = timing.time_interleaved({"em": one}, windows, window_seconds)["em"]
  return {"backend": jax.default_backend(), "num_states": NUM_STATES,
          "num_symbols": NUM_SYMBOLS, "batch": BATCH, "length": LENGTH,
          "em_iterations_per_sec": 1.0 / seconds,
          "tokens_per_sec": BATCH * LENGTH / seconds}


# ---------------------------------------------------------------- hmm_em_conll2000


def conll_words(num_words: int = CONLL_WORDS) -> tuple[list[np.ndarray], int]:
  """CoNLL-2000's training sentences (all 8,936) as ids of the `num_words` most frequent words,
  every other word one unknown symbol (id 0): (sequences, vocabulary size)."""
  from genjax.data.sequences import Vocabulary, load_conll
  train = load_conll("train")
  counted = Vocabulary.build(w for s in train for w in s.words)
  vocab = Vocabulary(("<UNK>", *counted.tokens[:num_words]), unknown="<UNK>")
  return [vocab.encode(s.words) for s in train], len(vocab)


def initial_parameters(num_states: int, num_symbols: int, seed: int = CONLL_SEED) -> dict:
  """Random pi, A, B (rows from a flat Dirichlet), rounded to float32 and renormalised in
  float64: the very numbers both libraries start from."""
  rng = np.random.default_rng(seed)
  out = {"startprob": rng.dirichlet(np.ones(num_states)),
         "transmat": rng.dirichlet(np.ones(num_states), num_states),
         "emissionprob": rng.dirichlet(np.ones(num_symbols), num_states)}
  for name, p in out.items():
    p = p.astype(np.float32).astype(np.float64)
    out[name] = p / p.sum(-1, keepdims=True)
  return out


def _genjax_setup(seqs, params):
  """(packed data, initial HMM, seconds spent packing)."""
  import jax.numpy as jnp

  from genjax.structured import hmm as H
  t0 = time.perf_counter()
  data = H.pack(seqs)
  pack_seconds = time.perf_counter() - t0
  f32 = {k: jnp.asarray(np.log(v), jnp.float32) for k, v in params.items()}
  hmm = H.HMM(f32["startprob"], f32["transmat"], H.Categorical(f32["emissionprob"]))
  return data, hmm, pack_seconds


def _genjax_compile(hmm, data):
  """The EM iteration's program, compiled ahead of time: (executable, seconds)."""
  from genjax.structured import hmm as H
  t0 = time.perf_counter()
  compiled = H.packed_em_step.lower(hmm, data, 0.0).compile()
  return compiled, time.perf_counter() - t0


def _genjax_fit(compiled, hmm, data, num_iters: int) -> dict:
  import jax
  lls = []
  for _ in range(num_iters):
    hmm, stats = compiled(hmm, data, 0.0)
    lls.append(stats.log_likelihood)
  jax.block_until_ready(hmm)
  return {"log_likelihood": [float(v) for v in lls]}


def _peer_fit(hmmlearn_hmm, seqs, params, num_iters: int) -> dict:
  x = np.concatenate(seqs).astype(np.int64)[:, None]
  lengths = [len(s) for s in seqs]
  model = hmmlearn_hmm.CategoricalHMM(
      n_components=params["transmat"].shape[0], n_features=params["emissionprob"].shape[1],
      n_iter=num_iters, tol=-np.inf,  # never converged early: exactly num_iters iterations
      init_params="", params="ste", implementation="scaling")
  model.startprob_ = params["startprob"].copy()
  model.transmat_ = params["transmat"].copy()
  model.emissionprob_ = params["emissionprob"].copy()
  model.fit(x, lengths)
  return {"log_likelihood": [float(v) for v in model.monitor_.history]}


def _peak_rss_mb() -> float:
  """This process's peak resident memory. /proc's VmHWM, not getrusage's ru_maxrss: Linux keeps
  ru_maxrss across fork and exec, so a subprocess would start at its parent's peak."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_probe(side: str, num_iters: int = CONLL_EM_ITERS) -> dict:
  """In a fresh process: peak RSS after the imports and the data (`setup_mb`), and at the end
  of `num_iters` EM iterations (`peak_rss_mb`; genjax's includes compiling)."""
  seqs, v = conll_words()
  params = initial_parameters(CONLL_STATES, v)
  if side == "genjax":
    import jax  # noqa: F401 (its runtime belongs to the set-up)
    data, hmm, _ = _genjax_setup(seqs, params)
    setup = _peak_rss_mb()
    compiled, _ = _genjax_compile(hmm, data)
    _genjax_fit(compiled, hmm, data, num_iters)
  else:
    from hmmlearn import hmm as hmmlearn_hmm
    setup = _peak_rss_mb()
    _peer_fit(hmmlearn_hmm, seqs, params, num_iters)
  peak = _peak_rss_mb()
  return {"setup_mb": setup, "peak_rss_mb": peak, "peak_over_setup_mb": peak - setup}


def _measure_memory(side: str) -> dict:
  """memory_probe(side) in a subprocess, so that neither side's allocations count for the
  other's (a process's peak RSS never comes down)."""
  experiments = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  code = f"import json; from benchmarks import hmm; print(json.dumps(hmm.memory_probe({side!r})))"
  path = os.pathsep.join(p for p in (experiments, os.environ.get("PYTHONPATH")) if p)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": path})
  if out.returncode:
    return {"error": out.stderr.strip()[-500:]}
  return json.loads(out.stdout.strip().splitlines()[-1])


def em_conll2000(windows: int, window_seconds: float, peak_size: int, peers: bool = False,
                 repeats: int = 3) -> dict:
  """Baum-Welch on CoNLL-2000's training text: 20 states, the 5,000 most frequent words and an
  unknown-word symbol, all 8,936 sentences, the same random initial parameters for both sides.

  genjax: the sentences `pack`ed once, `packed_em_step` compiled once (reported apart), then
  CONLL_EM_ITERS iterations timed; hmmlearn: CategoricalHMM(implementation="scaling") fit for
  as many iterations (init_params="", tol=-inf). Seconds per iteration are each side's median
  run over CONLL_EM_ITERS; both log-likelihood trajectories (before each M-step) are reported.
  With `peers`, each side's peak memory is measured in a process of its own.
  """
  del windows, window_seconds, peak_size
  import jax

  seqs, num_symbols = conll_words()
  params = initial_parameters(CONLL_STATES, num_symbols)
  data, hmm, pack_seconds = _genjax_setup(seqs, params)
  compiled, compile_seconds = _genjax_compile(hmm, data)
  genjax = lambda: _genjax_fit(compiled, hmm, data, CONLL_EM_ITERS)
  hmmlearn_hmm = _peers.load("hmmlearn.hmm") if peers else None
  peer = (None if hmmlearn_hmm is None
          else lambda: _peer_fit(hmmlearn_hmm, seqs, params, CONLL_EM_ITERS))
  result = _peers.side_by_side(genjax, peer, PEER_NAME, repeats)
  if not peers:
    result["peer"] = {"name": PEER_NAME, "skipped": "run with --peers"}

  n_tokens = int(sum(len(s) for s in seqs))
  for side in ("genjax", "peer"):
    if "seconds" in result[side]:
      result[side]["seconds_per_iteration"] = result[side]["seconds"] / CONLL_EM_ITERS
  result["genjax"].update(compile_seconds=compile_seconds, pack_seconds=pack_seconds,
                          chunks_rows_steps=list(data.mask.shape),
                          packed_fill=n_tokens / data.mask.size)
  if "time_ratio" in result:
    ours = np.array(result["genjax"]["log_likelihood"])
    theirs = np.array(result["peer"]["log_likelihood"])
    result["log_likelihood_max_abs_difference"] = float(np.max(np.abs(ours - theirs)))
    result["log_likelihood_per_token_max_abs_difference"] = float(
        np.max(np.abs(ours - theirs)) / n_tokens)
    for side, probe in (("genjax", "genjax"), ("peer", "hmmlearn")):
      result[side]["memory"] = _measure_memory(probe)
  return {"backend": jax.default_backend(), "num_states": CONLL_STATES,
          "num_symbols": num_symbols, "sentences": len(seqs), "tokens": n_tokens,
          "em_iterations": CONLL_EM_ITERS, **result}


TASKS = {"hmm_forward_backward": forward_backward, "hmm_em": em,
         "hmm_em_conll2000": em_conll2000}
