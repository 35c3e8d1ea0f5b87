"""CRF benchmark: one L-BFGS evaluation (objective and gradient) on the whole CoNLL-2000 train set.

  python experiments/benchmark.py --model=crf_conll2000 --json

A full training run to convergence takes hundreds of such evaluations (minutes), too long for a
benchmark, so this times one evaluation (median over interleaved windows, next to the
in-process matmul peak) and, when `runs/chunk_crf/results.json` from
`experiments/chunk_crf.py --workdir=runs/chunk_crf` exists, reports that run's iterations and
evaluations and the time to convergence they imply at the measured speed.
"""

import functools
import json
import os

import jax

from genjax import timing

REFERENCE_RUN = os.path.join("runs", "chunk_crf", "results.json")


def lbfgs_evaluation(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Seconds and tokens/s of value_and_grad of the CRF objective over all training sentences."""
  from genjax.data.sequences import load_conll
  from genjax.structured import crf, crf_features

  train = load_conll("train")
  feature_map = crf_features.build(train)
  ids, labels = crf_features.encode(feature_map, train)
  data = crf.device_data(crf_features.bucketize(ids, labels))
  num_labels = len(feature_map.labels)
  params = crf.init_params(feature_map.num_features, num_labels)
  value_and_grad = jax.jit(jax.value_and_grad(
      functools.partial(crf.objective, l2=1.0, num_sentences=len(train))))
  fns = {"evaluation": lambda: value_and_grad(params, data),
         "peak": timing.matmul_fn(peak_size)}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  tokens = int(sum(len(x) for x in ids))
  padded = int(sum(x[2].size for x in data))
  # Useful FLOPs per real token: forward, and the two products of its gradient, of one
  # [1, L] x [L, L] matrix product each, plus gathering and scattering F rows of L weights.
  flops = tokens * (3 * 2 * num_labels**2 + 2 * crf_features.FEATURES_PER_TOKEN * num_labels)
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  result = {
      "backend": jax.default_backend(), "sentences": len(train), "tokens": tokens,
      "padded_tokens": padded, "feature_rows": feature_map.num_features, "labels": num_labels,
      "seconds_per_evaluation": seconds["evaluation"],
      "tokens_per_sec": tokens / seconds["evaluation"],
      "gflops_per_evaluation": flops / 1e9,
      "matmul_peak_gflops_per_sec": peak,
      "fraction_of_peak": flops / seconds["evaluation"] / 1e9 / peak,
  }
  if os.path.exists(REFERENCE_RUN):
    with open(REFERENCE_RUN) as f:
      train_info = json.load(f)["train"]
    if "evaluations" in train_info:
      result.update({
          "reference_iterations": train_info["iterations"],
          "reference_evaluations": train_info["evaluations"],
          "reference_seconds": train_info["seconds"],
          "estimated_seconds_to_convergence":
              train_info["evaluations"] * seconds["evaluation"]})
  return result


TASKS = {"crf_conll2000": lbfgs_evaluation}
