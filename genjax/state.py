"""Train-state containers shared by the model families."""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class ModelState:
  """One network's parameters, batch statistics and optimiser state.

  `module` and `tx` are static (not pytree leaves): they are part of the
  compiled step's signature, never traced.
  """

  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  module: Any = struct.field(pytree_node=False)  # the flax module (hashable, static)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, module, variables: dict, tx: optax.GradientTransformation) -> "ModelState":
    params = variables["params"]
    return cls(params=params, batch_stats=variables.get("batch_stats", {}),
               opt_state=tx.init(params), module=module, tx=tx)

  @property
  def variables(self) -> dict:
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}

  def apply_gradients(self, grads, batch_stats=None) -> "ModelState":
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    params = optax.apply_updates(self.params, updates)
    batch_stats = self.batch_stats if batch_stats is None else batch_stats
    return self.replace(params=params, opt_state=opt_state, batch_stats=batch_stats)


def count_params(params) -> int:
  """Number of scalar parameters in a pytree."""
  return sum(x.size for x in jax.tree.leaves(params))


def init_variables(module, key: jax.Array, *args, **kwargs) -> dict:
  """`module.init(key, *args, **kwargs)` as one compiled program. (Called eagerly, flax
  dispatches and compiles every initialiser's operations one by one: seconds for a conv net on
  a CPU, against a fraction of one compiled.)"""
  return jax.jit(functools.partial(module.init, **kwargs))(key, *args)


def standing_batch_stats(apply_train, stats, inputs) -> Any:
  """Batch-norm statistics for a network's *current* weights: the mean, over the batches in
  `inputs` (a leading batch-of-batches axis), of each batch's statistics.

  `apply_train(stats, x) -> new_stats` runs the network in training mode from `stats` (flax
  BatchNorm: new = m * old + (1 - m) * batch statistic). Run from zeros it gives
  (1 - m) * batch statistic, and from ones minus from zeros gives m, whatever each layer's
  momentum is. Used for weights whose running statistics were never tracked (an EMA of the
  weights): the running statistics of the weights being trained belong to other weights.
  """
  zeros = jax.tree.map(jnp.zeros_like, stats)
  ones = jax.tree.map(jnp.ones_like, stats)
  momentum = jax.tree.map(jnp.subtract, apply_train(ones, inputs[0]), apply_train(zeros, inputs[0]))
  scaled = jax.lax.map(lambda x: apply_train(zeros, x), inputs)
  return jax.tree.map(lambda u, m: jnp.mean(u, axis=0) / (1.0 - m), scaled, momentum)
