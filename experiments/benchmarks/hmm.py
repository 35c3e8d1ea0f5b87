"""HMM benchmarks: forward-backward throughput (scan and associative scan) and EM iterations/s.

  python experiments/benchmark.py --model=hmm_forward_backward --json
  python experiments/benchmark.py --model=hmm_em --json
"""

import jax
import jax.numpy as jnp

from genjax import timing
from genjax.structured import hmm as H

# A POS-tagger-sized model: tens of states, thousands of symbols, sentence-length sequences.
NUM_STATES, NUM_SYMBOLS, BATCH, LENGTH = 45, 5000, 256, 32


def _model_and_data():
  key = jax.random.key(0)
  hmm = H.HMM.random(key, H.Categorical.random(jax.random.fold_in(key, 1), NUM_STATES,
                                               NUM_SYMBOLS, 1.0, 1e-3))
  _, x = H.sample(jax.random.fold_in(key, 2), hmm, BATCH, LENGTH)
  return hmm, x, jnp.ones(x.shape, bool)


def forward_backward(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Posterior marginals of a batch of length-T sequences: sequences/s for each method."""
  del peak_size
  hmm, x, mask = _model_and_data()
  fns = {name: (lambda p=parallel: H.posterior_marginals(hmm, x, mask, parallel=p))
         for name, parallel in (("scan", False), ("associative_scan", True))}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  return {"backend": jax.default_backend(), "num_states": NUM_STATES, "batch": BATCH,
          "length": LENGTH,
          "sequences_per_sec_scan": BATCH / seconds["scan"],
          "sequences_per_sec_associative_scan": BATCH / seconds["associative_scan"],
          "tokens_per_sec_scan": BATCH * LENGTH / seconds["scan"]}


def em(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Baum-Welch iterations (E-step in chunks of 64 sequences, then M-step) per second."""
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


TASKS = {"hmm_forward_backward": forward_backward, "hmm_em": em}
