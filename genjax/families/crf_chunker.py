"""The linear-chain CRF chunker (genjax.structured.crf, crf_features) as a fit family on
CoNLL-2000.

`create_state` builds the feature map (the CRF++/CRFsuite template) from the training split
(a static field, rebuilt on restore) and zero weights of its shapes; `fit` minimises CRFsuite's
objective (sum NLL + l2 ||theta||^2) with full-batch L-BFGS (`model.optimizer = lbfgs`: l2,
max_iterations, max_seconds, delta, period) or mini-batch Adam (`adam`: epochs, learning_rate,
l2, l1), reporting every iteration (epoch) through `log`. L-BFGS with `model.features = sparse`
(the default) has weights only for the (attribute, label) pairs seen in training (CRFsuite's
state features, genjax.structured.crf_sparse); `dense` keeps every pair's weight. The state
always holds the dense table (zeros off the kept pairs), which prediction reads. Feature
options: min_count, hash_buckets; memory and padding (dense and Adam): num_buckets,
chunk_tokens; max_train_sentences (0: all).
`predict_split` gives the Viterbi chunk tags of each sentence (the `chunking` evaluator).
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import struct

from genjax.families.hmm_tagger import train_sentences
from genjax.structured import crf, crf_features, crf_sparse

DEFAULT_EVALS = {"chunking": {}}
OPTIMIZERS = ("lbfgs", "adam")
FEATURES = ("sparse", "dense")


def experiment_config(arg: str | None = None, *, l2: float) -> ml_collections.ConfigDict:
  """The config of the CRF chunker on CoNLL-2000 (genjax.config's idiom): L-BFGS on CRFsuite's
  objective with penalty `l2` (its c2). `arg`: None, or `smoke` (20 L-BFGS iterations on the
  first 300 training sentences)."""
  from genjax import config as gconfig
  if arg not in (None, "smoke"):
    raise ValueError(f"unknown config argument {arg!r}; expected 'smoke' or nothing")
  smoke = arg == "smoke"
  return gconfig.fit_config("crf_chunker", gconfig.dataset("conll2000"), {
      "optimizer": "lbfgs",  # lbfgs (full batch) | adam (mini-batches of chunk_tokens)
      # L-BFGS: sparse = weights only for (attribute, label) pairs seen in training (CRFsuite's
      # default, genjax.structured.crf_sparse) | dense = every pair
      "features": "sparse",
      "l2": l2,  # c2 of sum NLL + c2 ||theta||^2 (CRFsuite's objective)
      "l1": 0.0,  # Adam only, by a proximal step
      "min_count": 1,  # keep feature strings seen at least this often in training
      "hash_buckets": 0,  # > 0: hash features into this many rows instead of a vocabulary
      "max_iterations": 20 if smoke else 500,  # L-BFGS
      "max_seconds": float("inf"),  # L-BFGS wall-time budget (stops unconverged)
      "delta": 1e-5,  # L-BFGS stop: relative improvement over `period` iterations
      "period": 10,
      "epochs": 15,  # Adam
      "learning_rate": 0.05,  # Adam
      "num_buckets": 4,  # length buckets (padding shapes)
      "chunk_tokens": 16384,  # padded tokens per chunk of sentences (memory bound)
      "max_train_sentences": 300 if smoke else 0,  # 0: all
  })


@struct.dataclass
class CRFState:
  """The weights, the iterations (epochs) the fit took and its final objective; static: the
  feature map and the model options (name, value) pairs."""

  params: crf.CRFParams
  iterations: jax.Array
  objective: jax.Array
  feature_map: crf_features.FeatureMap = struct.field(pytree_node=False)
  options: tuple = struct.field(pytree_node=False, default=())


def create_state(key: jax.Array, config: ml_collections.ConfigDict, train) -> CRFState:
  """The training split's feature map and zero weights."""
  del key
  m = config.model
  if m.optimizer not in OPTIMIZERS:
    raise ValueError(f"unknown model.optimizer {m.optimizer!r}; expected one of {OPTIMIZERS}")
  if m.get("features", "sparse") not in FEATURES:
    raise ValueError(f"unknown model.features {m.features!r}; expected one of {FEATURES}")
  if m.l1 and m.optimizer == "lbfgs":
    raise ValueError("model.l1 needs model.optimizer = adam (L-BFGS here is smooth: L2 only)")
  sentences = train_sentences(train, m.max_train_sentences)
  feature_map = crf_features.build(sentences, m.min_count, m.hash_buckets)
  options = (*sorted(m.to_dict().items()), ("progress", bool(config.train.get("progress"))))
  return CRFState(crf.init_params(feature_map.num_features, len(feature_map.labels)),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), feature_map, options)


def fit(state: CRFState, train, key: jax.Array, log=None) -> CRFState:
  """L-BFGS or Adam on the training sentences create_state saw."""
  o = dict(state.options)
  sentences = train_sentences(train, o["max_train_sentences"])
  ids, labels = crf_features.encode(state.feature_map, sentences)
  sparse = o["optimizer"] == "lbfgs" and o.get("features", "sparse") == "sparse"
  if sparse:
    data = crf_sparse.packed_data(ids, labels, state.feature_map.num_features,
                                  len(state.feature_map.labels))
  else:
    data = crf.device_data(crf_features.bucketize(ids, labels, o["num_buckets"],
                                                  o["chunk_tokens"]))

  def record(r: dict) -> None:
    step = r.get("iteration", r.get("epoch"))
    scalars = {k: float(v) for k, v in r.items() if k not in ("iteration", "epoch")}
    if log is not None:
      log(step, scalars)
    if o["progress"]:
      print(f"{'iteration' if 'iteration' in r else 'epoch'} {step}",
            " ".join(f"{k}={v:.6g}" for k, v in scalars.items()), flush=True)

  if o["optimizer"] == "lbfgs":
    start = crf_sparse.from_dense(state.params, data) if sparse else state.params
    params, info = crf.fit_lbfgs(start, data, len(sentences), l2=o["l2"],
                                 max_iterations=o["max_iterations"], delta=o["delta"],
                                 period=o["period"], max_seconds=o["max_seconds"], log=record,
                                 objective_fn=crf_sparse.objective if sparse else None)
    params = crf_sparse.to_dense(params, data) if sparse else params
    iterations = info["iterations"]
  else:
    params, info = crf.fit_adam(state.params, data, len(sentences), key,
                                learning_rate=o["learning_rate"], epochs=o["epochs"],
                                l2=o["l2"], l1=o["l1"], log=record)
    iterations = info["epochs"]
  return state.replace(params=params, iterations=jnp.asarray(iterations, jnp.int32),
                       objective=jnp.asarray(info["objective"], jnp.float32))


def predict_split(state: CRFState, split) -> list[list[str]]:
  """Viterbi chunk tags of every sentence of a SentenceSplit."""
  o = dict(state.options)
  ids = [state.feature_map.encode_sentence(s) for s in split.sentences]
  return [state.feature_map.decode_labels(p)
          for p in crf.predict_ids(state.params, ids, o["num_buckets"], o["chunk_tokens"])]
