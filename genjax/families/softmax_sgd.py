"""Softmax regression by minibatch SGD: the smallest step family, and the template for one.

p(y | x) = softmax(x W + b); each step is one SGD update on the batch's mean cross-entropy.
It works on any split with features `x` [N, D] (the UCI sets) or `image` (flattened);
`model.num_features` and `model.num_classes` give the shapes, `optim.learning_rate` the step.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from genjax.data.rows import features
from genjax.parallel import pmean_if

DEFAULT_EVALS = {"metrics": {}, "classification": {}}

# (features, classes) of the UCI sets it runs on.
FEATURES = {"iris": (4, 3), "wine": (13, 3), "breast_cancer": (30, 2), "digits": (64, 10)}


def experiment_config(arg: str | None = None, *, learning_rate: float = 0.1,
                      batch_size: int = 16, num_epochs: int = 50) -> ml_collections.ConfigDict:
  """The config of softmax regression (genjax.config's idiom) on the UCI set that `arg` names
  (`iris`, the default; `wine`, `breast_cancer`, `digits`), optionally followed by `,smoke` (40
  steps): SGD at `learning_rate` on batches of `batch_size` for `num_epochs`."""
  from genjax import config as gconfig
  dataset, smoke = gconfig.parse_dataset_arg(arg, default="iris", choices=tuple(FEATURES))
  num_features, num_classes = FEATURES[dataset]
  c = gconfig.step_config(
      "softmax_sgd", gconfig.dataset(dataset, batch_size=batch_size),
      {"num_features": num_features, "num_classes": num_classes},
      {"learning_rate": learning_rate},
      gconfig.train_schedule(num_epochs, log_every=7, checkpoint_every=70, sample_every=10**9))
  c.train.eval_every = 0
  return gconfig.apply_variant(c, "smoke" if smoke else None)


@struct.dataclass
class SoftmaxState:
  step: jax.Array
  w_DxC: jax.Array
  b_C: jax.Array
  learning_rate: float = struct.field(pytree_node=False)


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> SoftmaxState:
  m = config.model
  w = 0.01 * jax.random.normal(key, (m.num_features, m.num_classes), jnp.float32)
  return SoftmaxState(jnp.zeros((), jnp.int32), w, jnp.zeros(m.num_classes, jnp.float32),
                      config.optim.learning_rate)


def loss_fn(w_DxC: jax.Array, b_C: jax.Array, batch: dict) -> jax.Array:
  logits = features(batch) @ w_DxC + b_C
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))


def train_step(state: SoftmaxState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[SoftmaxState, dict]:
  """One SGD step; under data parallelism the gradients are averaged over `axis_name`."""
  del key
  loss, (g_w, g_b) = jax.value_and_grad(loss_fn, argnums=(0, 1))(state.w_DxC, state.b_C, batch)
  g_w, g_b, loss = pmean_if((g_w, g_b, loss), axis_name)
  lr = state.learning_rate
  return state.replace(step=state.step + 1, w_DxC=state.w_DxC - lr * g_w,
                       b_C=state.b_C - lr * g_b), {"loss": loss}


def log_proba(state: SoftmaxState, batch: dict) -> jax.Array:
  return jax.nn.log_softmax(features(batch) @ state.w_DxC + state.b_C, axis=-1)


def eval_step(state: SoftmaxState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  del key
  lp = log_proba(state, batch)
  metrics = {"loss": -jnp.mean(jnp.take_along_axis(lp, batch["label"][:, None], -1)),
             "accuracy": jnp.mean(jnp.argmax(lp, -1) == batch["label"])}
  return pmean_if(metrics, axis_name)
