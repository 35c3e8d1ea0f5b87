"""Pure loss functions. Every loss takes logits or scores and returns a scalar mean."""

import jax
import jax.numpy as jnp
import optax


def sigmoid_bce(logits: jax.Array, labels: jax.Array | float) -> jax.Array:
  """Mean binary cross-entropy of sigmoid(logits) against labels in [0, 1].

  Computed as softplus(logits) - labels * logits, which is exact and finite for
  logits of any magnitude (no log of a saturated sigmoid).
  """
  labels = jnp.broadcast_to(jnp.asarray(labels, logits.dtype), logits.shape)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def gan_discriminator_bce(real_logits: jax.Array, fake_logits: jax.Array,
                          real_label: float = 1.0) -> jax.Array:
  """Discriminator loss of the original GAN: mean of the real (label 1) and fake (label 0) BCE.

  `real_label` below 1 gives one-sided label smoothing.
  """
  return 0.5 * (sigmoid_bce(real_logits, real_label) + sigmoid_bce(fake_logits, 0.0))


def gan_generator_non_saturating(fake_logits: jax.Array) -> jax.Array:
  """Non-saturating generator loss: -E log D(G(z)), i.e. BCE against label 1."""
  return sigmoid_bce(fake_logits, 1.0)


def gan_generator_minimax(fake_logits: jax.Array) -> jax.Array:
  """Saturating minimax generator loss: E log(1 - D(G(z))) = -BCE against label 0.

  Its gradient vanishes where the discriminator confidently rejects fakes
  (D(G(z)) -> 0), which is why the non-saturating form is used in practice.
  """
  return -sigmoid_bce(fake_logits, 0.0)


GENERATOR_LOSSES = {
    "non_saturating": gan_generator_non_saturating,
    "minimax": gan_generator_minimax,
}
