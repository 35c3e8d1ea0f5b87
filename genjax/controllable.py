"""Controllable generation: gradient ascent on a generator's latent z, scored by a classifier.

The GAN Specialization's course 1, week 4: a trained (unconditional) generator G and a
classifier C giving F logits per image (softmax classes, or multi-label attributes such as
CelebA's 40). To make the images of latents z show feature `target`, z climbs the gradient
of a per-example score, z <- z + step_size * d(sum of scores)/dz, for a fixed number of
steps; a penalty on the change of the other F - 1 logits keeps the other features as they
were (the course's fix for entangled features).

A softmax classifier may pass its log probabilities as the F features: the diagnostics
(softmax probability, argmax) are the same for them as for its logits, and raising a class's
log probability also lowers the other classes, where raising its raw logit alone can stall
below them.

Everything here is pure and jittable: `generate_fn` and `logits_fn` are any JAX functions,
`target`, `step_size` and `penalty_weight` may be traced, only `steps` must be static.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

GenerateFn = Callable[[jax.Array], jax.Array]  # z (B, Z) -> images (B, ...)
LogitsFn = Callable[[jax.Array], jax.Array]  # images (B, ...) -> logits (B, F)


def _other_mask(num_features: int, target: int | jax.Array) -> jax.Array:
  """1.0 at every feature but `target`, 0.0 at it (works with a traced `target`)."""
  return (jnp.arange(num_features) != target).astype(jnp.float32)


def _safe_norm(x_BxF: jax.Array) -> jax.Array:
  """Euclidean norm over the last axis, with gradient 0 (not NaN) at the zero vector.

  At the first ascent step the other logits have not changed yet, and sqrt has no
  derivative at 0; 0 is the subgradient PyTorch's norm uses there (as in the course).
  """
  sq = jnp.sum(jnp.square(x_BxF), axis=-1)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def feature_score(logits_BxF: jax.Array, original_logits_BxF: jax.Array,
                  target: int | jax.Array, penalty_weight: float | jax.Array) -> jax.Array:
  """The per-example score the ascent maximises (the course's `get_score`, per example).

  score_b = logits[b, target] - penalty_weight * || (logits[b] - original_logits[b])_other ||_2

  where `_other` keeps the F - 1 features other than `target` and the norm is Euclidean
  (with gradient 0 at no change, see `_safe_norm`). The course averages this over the
  batch; the per-example form sums to the same gradient direction, and because images are
  generated independently, each latent's gradient depends on its own score only.

  Args:
    logits_BxF: the classifier's logits for the current images.
    original_logits_BxF: its logits for the images before the ascent (held constant).
    target: the index of the feature to increase.
    penalty_weight: the weight of the other features' change (0: no penalty).
  Returns:
    The scores, (B,).
  """
  change_BxF = (logits_BxF - jax.lax.stop_gradient(original_logits_BxF)) * _other_mask(
      logits_BxF.shape[-1], target)
  return jnp.take(logits_BxF, target, axis=-1) - penalty_weight * _safe_norm(change_BxF)


def target_probability(logits_BxF: jax.Array, target: int | jax.Array,
                       multi_label: bool = False) -> jax.Array:
  """P(target) per image: softmax over the F classes, or the target's own sigmoid (multi-label)."""
  if multi_label:
    return jax.nn.sigmoid(jnp.take(logits_BxF, target, axis=-1))
  return jnp.take(jax.nn.softmax(logits_BxF, axis=-1), target, axis=-1)


def success(logits_BxF: jax.Array, target: int | jax.Array,
            multi_label: bool = False) -> jax.Array:
  """Whether each image shows the target: its argmax (softmax), or sigmoid > 0.5 (multi-label)."""
  if multi_label:
    return jnp.take(logits_BxF, target, axis=-1) > 0.0  # sigmoid(l) > 0.5 exactly when l > 0
  return jnp.argmax(logits_BxF, axis=-1) == target


def other_change(logits_BxF: jax.Array, original_logits_BxF: jax.Array,
                 target: int | jax.Array) -> jax.Array:
  """Mean absolute change of the F - 1 other features' logits, per image (B,)."""
  mask_F = _other_mask(logits_BxF.shape[-1], target)
  return jnp.sum(jnp.abs(logits_BxF - original_logits_BxF) * mask_F, -1) / jnp.sum(mask_F)


def diagnostics(logits_BxF: jax.Array, original_logits_BxF: jax.Array, target: int | jax.Array,
                penalty_weight: float | jax.Array, multi_label: bool = False) -> dict:
  """Batch means: score, target logit, target probability, success fraction, other change."""
  return {
      "score": jnp.mean(feature_score(logits_BxF, original_logits_BxF, target, penalty_weight)),
      "target_logit": jnp.mean(jnp.take(logits_BxF, target, axis=-1)),
      "target_prob": jnp.mean(target_probability(logits_BxF, target, multi_label)),
      "success": jnp.mean(success(logits_BxF, target, multi_label).astype(jnp.float32)),
      "other_change": jnp.mean(other_change(logits_BxF, original_logits_BxF, target)),
  }


def ascend(generate_fn: GenerateFn, logits_fn: LogitsFn, z0_BxZ: jax.Array,
           target: int | jax.Array, *, steps: int, step_size: float | jax.Array,
           penalty_weight: float | jax.Array = 0.0,
           multi_label: bool = False) -> tuple[jax.Array, dict]:
  """`steps` gradient-ascent updates of z on `feature_score`, in one `lax.scan`.

  Each step takes z <- z + step_size * grad_z sum_b score_b(z), with the score's original
  logits those of `z0_BxZ`. Both functions must treat images independently (a generator
  and a classifier in inference mode), so that each latent moves by its own image's score.

  Args:
    generate_fn: latents (B, Z) -> images, differentiable.
    logits_fn: images -> logits (B, F), differentiable.
    z0_BxZ: the starting latents.
    target: the feature to increase.
    steps: the number of updates (static).
    step_size: the update's multiplier of the gradient.
    penalty_weight: see `feature_score`.
    multi_label: diagnostics read the logits as independent sigmoids rather than a softmax.
  Returns:
    (z_path (steps + 1, B, Z): z0 then z after each update; diagnostics: a dict of
    (steps + 1,) arrays, `diagnostics()` at each z of the path, so index 0 is before and
    index -1 after the ascent).
  """
  def diag(logits_BxF, original_BxF):
    return diagnostics(logits_BxF, original_BxF, target, penalty_weight, multi_label)

  if steps == 0:
    logits_BxF = jax.lax.stop_gradient(logits_fn(generate_fn(z0_BxZ)))
    return z0_BxZ[None], jax.tree.map(lambda d: d[None], diag(logits_BxF, logits_BxF))

  def total_score(z_BxZ, original_BxF, first):
    logits_BxF = logits_fn(generate_fn(z_BxZ))
    # The original logits are those of the first step's own forward pass, so that the change
    # there is exactly 0: a separate pass can round differently (XLA fuses each program its
    # own way), and the norm's gradient would turn that rounding noise into a unit vector.
    original_BxF = jnp.where(first, jax.lax.stop_gradient(logits_BxF), original_BxF)
    score = jnp.sum(feature_score(logits_BxF, original_BxF, target, penalty_weight))
    return score, (logits_BxF, original_BxF)

  def step(carry, first):
    z_BxZ, original_BxF = carry
    grad_BxZ, (logits_BxF, original_BxF) = jax.grad(total_score, has_aux=True)(
        z_BxZ, original_BxF, first)
    z_next = z_BxZ + step_size * grad_BxZ
    return (z_next, original_BxF), (z_next, diag(logits_BxF, original_BxF))

  logits_shape = jax.eval_shape(lambda z: logits_fn(generate_fn(z)), z0_BxZ)
  carry = (z0_BxZ, jnp.zeros(logits_shape.shape, logits_shape.dtype))
  (z_final, original_BxF), (zs_TxBxZ, diags) = jax.lax.scan(step, carry,
                                                             jnp.arange(steps) == 0)
  # The scan scored each z before updating it; the final z still needs its own forward pass.
  final = diag(logits_fn(generate_fn(z_final)), original_BxF)
  z_path = jnp.concatenate([z0_BxZ[None], zs_TxBxZ])
  diags = jax.tree.map(lambda d, f: jnp.concatenate([d, f[None]]), diags, final)
  return z_path, diags
