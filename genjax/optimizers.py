"""Optimisers from a config's `optim` section, and the learning-rate schedule pieces the
families combine.

`build(optim, learning_rate)` reads the section's `name` (`adam`, the default, or `sgd`),
`b1`/`b2` and, where present, `eps` for Adam, `momentum`/`nesterov` for SGD, and
`weight_decay` (default 0: decoupled for Adam, i.e. AdamW; added to the gradient for SGD).
Weight decay shrinks weight matrices and conv kernels, not biases or batch-norm scales.
"""

from typing import Any

import jax
import ml_collections
import optax

OPTIMIZERS = ("adam", "sgd")


def kernels_only(params: Any) -> Any:
  """The weight-decay mask: True on weight matrices and conv kernels (ndim > 1)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def adam(o: ml_collections.ConfigDict, learning_rate: float | optax.Schedule | None = None,
         weight_decay: float = 0.0) -> optax.GradientTransformation:
  """Adam with the section's betas (and epsilon, where it has one) at `learning_rate` (by
  default `o.learning_rate`); AdamW on the kernels with a positive `weight_decay`."""
  lr = o.learning_rate if learning_rate is None else learning_rate
  kwargs = {"b1": o.b1, "b2": o.b2}
  if "eps" in o:
    kwargs["eps"] = o.eps
  if weight_decay > 0:
    return optax.adamw(lr, weight_decay=weight_decay, mask=kernels_only, **kwargs)
  return optax.adam(lr, **kwargs)


def sgd(o: ml_collections.ConfigDict, learning_rate: float | optax.Schedule | None = None,
        weight_decay: float = 0.0) -> optax.GradientTransformation:
  """SGD with the section's momentum (0: none) and Nesterov switch; a positive
  `weight_decay` adds L2 on the kernels to the gradient."""
  lr = o.learning_rate if learning_rate is None else learning_rate
  opt = optax.sgd(lr, momentum=o.momentum or None, nesterov=o.get("nesterov", False))
  if weight_decay > 0:
    return optax.chain(optax.add_decayed_weights(weight_decay, mask=kernels_only), opt)
  return opt


def build(o: ml_collections.ConfigDict, learning_rate: float | optax.Schedule | None = None
          ) -> optax.GradientTransformation:
  """The optimiser `o.name` (default `adam`) with `o.weight_decay` (default 0) at
  `learning_rate` (by default `o.learning_rate`)."""
  name = o.get("name", "adam")
  if name not in OPTIMIZERS:
    raise ValueError(f"unknown optim.name {name!r}; expected one of {OPTIMIZERS}")
  make = adam if name == "adam" else sgd
  return make(o, learning_rate, o.get("weight_decay", 0.0))


def step_decay(learning_rate: float, boundaries, factor: float) -> optax.Schedule:
  """`learning_rate`, multiplied by `factor` at each update count in `boundaries` (a count
  given twice counts once)."""
  return optax.piecewise_constant_schedule(learning_rate, dict.fromkeys(boundaries, factor))


def with_warmup(schedule: optax.Schedule, learning_rate: float,
                warmup_steps: int) -> optax.Schedule:
  """A linear ramp from 0 to `learning_rate` over `warmup_steps` updates, then `schedule`
  (counted from the end of the ramp); `schedule` itself when warmup_steps <= 0."""
  if warmup_steps <= 0:
    return schedule
  return optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup_steps),
                               schedule], [warmup_steps])
