"""Tree-augmented naive Bayes (genjax.structured.bayes_net) as a fit family; naive Bayes with
the same discretisation and smoothing when `model.tree` is False.

Hyper-parameters (`model`): tree, discretize (quantile | binary | none), num_bins (quantile),
threshold (binary), alpha (Lidstone pseudo-count). The family discretises the features itself,
so UCI sets come unscaled (`data.preprocess = none`) and images as pixels in [0, 1]. Works on
any split with features `x` [N, D] or `image` (flattened).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from genjax.data.rows import features, num_features
from genjax.structured import bayes_net as bn

DEFAULT_EVALS = {"classification": {}}
DATASETS = ("breast_cancer", "wine", "iris", "digits", "mnist")


def experiment_config(arg: str | None = None, *, num_bins: int = 5, threshold: float = 0.5,
                      alpha: float = 1.0) -> ml_collections.ConfigDict:
  """The config of TAN (genjax.config's idiom) on the dataset that `arg` names (`DATASETS`;
  `breast_cancer`, the default), optionally followed by `,nb` (naive Bayes: the same
  discretisation and smoothing, no tree) and `,smoke` (the same fit). UCI features come unscaled
  into `num_bins` equal-frequency bins of the training rows; MNIST pixels in [0, 1] binarised
  at `threshold`; `alpha` is the Lidstone pseudo-count."""
  from genjax import config as gconfig
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  nb = "nb" in parts
  rest = ",".join(p for p in parts if p != "nb") or None
  dataset, _ = gconfig.parse_dataset_arg(rest, default="breast_cancer", choices=DATASETS)
  image = dataset == "mnist"
  data = gconfig.dataset(dataset, preprocess="unit" if image else "none")
  return gconfig.fit_config("tan", data, {
      "tree": not nb,  # False: naive Bayes
      "discretize": "binary" if image else "quantile",  # quantile | binary | none
      "num_bins": num_bins,  # equal-frequency bins per real feature (quantile)
      "threshold": threshold,  # binary: x > threshold
      "alpha": alpha,  # Lidstone pseudo-count of every table cell (1: Laplace)
  })




@struct.dataclass
class TANState:
  """The fitted classifier and (static) the hyper-parameters it is fitted with."""

  params: bn.TANParams
  hyperparameters: tuple = struct.field(pytree_node=False, default=())


def create_state(key: jax.Array, config: ml_collections.ConfigDict, train) -> TANState:
  """Zeros of the fitted shapes (the checkpoint's structure)."""
  del key
  hp = {k: config.model[k] for k in ("tree", "discretize", "num_bins", "threshold", "alpha")}
  if hp["discretize"] not in bn.DISCRETIZE:
    raise ValueError(f"unknown model.discretize {hp['discretize']!r}; expected one of "
                     f"{bn.DISCRETIZE}")
  d = num_features(train)
  c = train.num_classes
  if hp["discretize"] == "quantile":
    k, edges = hp["num_bins"], jnp.zeros((d, hp["num_bins"] - 1), jnp.float32)
  else:
    # Integer-coded features take as many values as the training split's largest code + 1.
    k = 2 if hp["discretize"] == "binary" else int(features(train.inputs()).max()) + 1
    edges = jnp.zeros((d, 1), jnp.float32)
  params = bn.TANParams(log_prior_C=jnp.zeros(c), log_cpt_DxCxKxK=jnp.zeros((d, c, k, k)),
                        parents_D=jnp.zeros(d, jnp.int32), order_D=jnp.zeros(d, jnp.int32),
                        edges_DxB=edges, threshold=jnp.float32(hp["threshold"]),
                        discretize=hp["discretize"])
  return TANState(params, tuple(sorted(hp.items())))


def fit(state: TANState, train, key: jax.Array, log=None) -> TANState:
  """bayes_net.fit on the whole training split."""
  del key, log
  batch = train.inputs()
  x_NxD = np.asarray(features(batch))
  params = bn.fit(x_NxD, np.asarray(batch["label"]), state.params.log_prior_C.shape[0],
                  **dict(state.hyperparameters))
  return state.replace(params=params)


def log_proba(state: TANState, batch: dict) -> jax.Array:
  """log P(y | x) [B, C] (features discretised as at fit time)."""
  return bn.log_proba(state.params, features(batch))
