"""CRF benchmarks on CoNLL-2000 chunking, genjax against CRFsuite (python-crfsuite) on the same
template features.

  python experiments/benchmark.py --model=crf_conll2000 --peers --json
  python experiments/benchmark.py --model=crf_conll2000_train --peers --repeats=1 --json

`crf_conll2000`: one L-BFGS evaluation (objective and gradient) on the whole training set, the
sparse formulation (genjax.structured.crf_sparse, the default) and the dense one, timed
interleaved; with `peers`, CRFsuite's seconds per L-BFGS iteration (its own log, median over
`PEER_ITERATIONS` iterations of each run) and the ratio, plus both feature counts.

`crf_conll2000_train`: training to convergence with the crf_chunker config's c2 (selected on a
held-out part of the training text, experiments/crf_select.py) and test chunk F1, CRFsuite
(L-BFGS, c1 = 0) beside it with the same c2 (the timed pair) and once more with its default
c2 = 1 (`peer_default_c2`). Both sides start from the template's feature strings (computed once,
untimed) and are timed from them to the trained model's test predictions: genjax's time
includes building the feature map, packing and compilation.

Measured on 2 shared CPU cores (load average 3.2-4.1): one evaluation 0.27 s against CRFsuite's
0.41 s per iteration (1.5x faster; the dense formulation 0.71 s); training to test predictions
67 s (F1 93.68, c2 = 0.1, 158 iterations, compilation 4 s) against CRFsuite's 152 s with the
same c2 (F1 93.66, 309 iterations: ratio 0.44) and 91 s with its default c2 = 1 (F1 93.57, 190
iterations: ratio 0.73).
"""

import functools
import json
import os
import statistics
import tempfile

import jax

from benchmarks import _peers
from genjax import timing

REFERENCE_RUN = os.path.join("runs", "chunk_crf", "results.json")
PEER_ITERATIONS = 10
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "crf_chunker.py")
PEER_DEFAULT_C2 = 1.0  # CRFsuite's default


def _selected_l2() -> float:
  """The crf_chunker config's c2 (selected by experiments/crf_select.py)."""
  from genjax import config as gconfig

  return float(gconfig.load(CONFIG).model.l2)


def _corpus():
  from genjax.data.sequences import load_conll
  from genjax.structured import crf_features

  train, test = load_conll("train"), load_conll("test")
  names = [crf_features.token_features(s.words, s.pos) for s in train]
  test_names = [crf_features.token_features(s.words, s.pos) for s in test]
  return train, test, names, test_names


def _crfsuite_trainer(pycrfsuite, sentences, names, **params):
  trainer = pycrfsuite.Trainer(verbose=False)
  for s, x in zip(sentences, names, strict=True):
    trainer.append(x, list(s.chunks))
  trainer.select("lbfgs")
  trainer.set_params({"c1": 0.0, "c2": 1.0, **params})
  return trainer


def lbfgs_evaluation(windows: int, window_seconds: float, peak_size: int, peers: bool = False,
                     repeats: int = 3) -> dict:
  """Seconds and tokens/s of value_and_grad of the CRF objective over all training sentences."""
  from genjax.data.sequences import load_conll
  from genjax.structured import crf, crf_features, crf_sparse

  train = load_conll("train")
  feature_map = crf_features.build(train)
  ids, labels = crf_features.encode(feature_map, train)
  data = crf.device_data(crf_features.bucketize(ids, labels))
  num_labels = len(feature_map.labels)
  params = crf.init_params(feature_map.num_features, num_labels)
  value_and_grad = jax.jit(jax.value_and_grad(
      functools.partial(crf.objective, l2=1.0, num_sentences=len(train))))
  packed = crf_sparse.packed_data(ids, labels, feature_map.num_features, num_labels)
  sparse_params = crf_sparse.init_params(packed)
  sparse_value_and_grad = jax.jit(jax.value_and_grad(
      functools.partial(crf_sparse.objective, l2=1.0, num_sentences=len(train))))
  fns = {"evaluation": lambda: value_and_grad(params, data),
         "sparse_evaluation": lambda: sparse_value_and_grad(sparse_params, packed),
         "peak": timing.matmul_fn(peak_size)}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  tokens = int(sum(len(x) for x in ids))
  padded = int(sum(x[2].size for x in data))
  # Useful FLOPs per real token: forward, and the two products of its gradient, of one
  # [1, L] x [L, L] matrix product each, plus gathering and scattering F rows of L weights.
  flops = tokens * (3 * 2 * num_labels**2 + 2 * crf_features.FEATURES_PER_TOKEN * num_labels)
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  sparse_features = int(packed.counts.shape[0]) + num_labels * (num_labels + 2)
  result = {
      "backend": jax.default_backend(), "sentences": len(train), "tokens": tokens,
      "padded_tokens": padded, "feature_rows": feature_map.num_features, "labels": num_labels,
      "seconds_per_evaluation": seconds["evaluation"],
      "tokens_per_sec": tokens / seconds["evaluation"],
      "sparse_seconds_per_evaluation": seconds["sparse_evaluation"],
      "sparse_padded_tokens": int(packed.mask.size),
      "sparse_features": sparse_features,
      "dense_features": feature_map.num_features * num_labels + num_labels * (num_labels + 2),
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
  if peers:
    result["peers"] = _evaluation_side_by_side(train, sparse_value_and_grad, sparse_params,
                                               packed, repeats)
  return result


def _evaluation_side_by_side(train, value_and_grad, params, packed, repeats: int) -> dict:
  """genjax: PEER_ITERATIONS sparse evaluations (compiled); CRFsuite: PEER_ITERATIONS L-BFGS
  iterations, whose per-iteration seconds come from its log (its feature generation excluded)."""
  from genjax.structured import crf_features

  pycrfsuite = _peers.load("pycrfsuite")
  names = [crf_features.token_features(s.words, s.pos) for s in train]
  per_iteration = []

  def genjax_run():
    for _ in range(PEER_ITERATIONS):
      value, _ = value_and_grad(params, packed)
    return {"objective": float(value), "evaluations": PEER_ITERATIONS}

  def peer_run():
    trainer = _crfsuite_trainer(pycrfsuite, train, names, max_iterations=PEER_ITERATIONS)
    with tempfile.TemporaryDirectory() as tmp:
      trainer.train(os.path.join(tmp, "model.crfsuite"))
    its = trainer.logparser.iterations
    times = [float(it["time"]) for it in its]
    per_iteration.append(statistics.median(times))
    return {"iterations": len(its), "objective": float(its[-1]["loss"]),
            "num_features": int(trainer.logparser.last_log.split("Number of features: ")[1]
                                .split()[0]) if "Number of features: " in
            trainer.logparser.last_log else None,
            "seconds_per_iteration": per_iteration[-1]}

  value_and_grad(params, packed)  # compiled before timing
  out = _peers.side_by_side(genjax_run, peer_run if pycrfsuite else None, "python-crfsuite",
                            repeats)
  if pycrfsuite:
    genjax_each = out["genjax"]["seconds"] / PEER_ITERATIONS
    peer_each = statistics.median(per_iteration)
    out.update({"genjax_seconds_per_evaluation": genjax_each,
                "peer_seconds_per_iteration": peer_each,
                "evaluation_ratio": genjax_each / peer_each,
                "speedup": peer_each / genjax_each})
  return out


def train_to_convergence(windows: int, window_seconds: float, peak_size: int,
                         peers: bool = False, repeats: int = 1) -> dict:
  """Wall seconds from feature strings to test predictions, and test chunk F1, both sides."""
  del windows, window_seconds, peak_size

  from genjax.metrics.chunking import conll_f1
  from genjax.structured import crf, crf_features, crf_sparse

  train, test, names, test_names = _corpus()
  gold = [list(s.chunks) for s in test]
  pycrfsuite = _peers.load("pycrfsuite") if peers else None
  l2 = _selected_l2()

  def genjax_run():
    feature_map = crf_features.build_from_names(names, [s.chunks for s in train])
    ids = [feature_map.encode_names(x) for x in names]
    labels = [feature_map.encode_labels(s) for s in train]
    params, info = crf_sparse.fit_lbfgs(ids, labels, feature_map.num_features,
                                        len(feature_map.labels), l2)
    test_ids = [feature_map.encode_names(x) for x in test_names]
    predicted = [feature_map.decode_labels(p) for p in crf.predict_ids(params, test_ids)]
    return {"f1": conll_f1(gold, predicted)["f1"], "l2": l2, "features": info["features"],
            **{k: info[k] for k in ("iterations", "evaluations", "compile_seconds", "objective",
                                    "reason")}}

  def peer_run(c2: float = l2):
    trainer = _crfsuite_trainer(pycrfsuite, train, names, c2=c2)
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "model.crfsuite")
      trainer.train(path)
      tagger = pycrfsuite.Tagger()
      tagger.open(path)
      predicted = [tagger.tag(x) for x in test_names]
      tagger.close()
    return {"f1": conll_f1(gold, predicted)["f1"], "c1": 0.0, "c2": c2,
            "iterations": len(trainer.logparser.iterations)}

  result = _peers.side_by_side(genjax_run, peer_run if pycrfsuite else None, "python-crfsuite",
                               repeats)
  if pycrfsuite and l2 != PEER_DEFAULT_C2:
    default = _peers.timed(lambda: peer_run(PEER_DEFAULT_C2))
    result["peer_default_c2"] = {**default,
                                 "time_ratio": result["genjax"]["seconds"] / default["seconds"]}
  return result


TASKS = {"crf_conll2000": lbfgs_evaluation, "crf_conll2000_train": train_to_convergence}
