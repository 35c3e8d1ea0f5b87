"""Pure loss functions. Every loss takes logits or scores and returns a scalar mean."""

import jax
import jax.numpy as jnp
import optax

from genjax import rng


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


def wasserstein_critic(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """WGAN critic loss: E[D(G(z))] - E[D(x)] (the critic maximises the score gap)."""
  return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator(fake_scores: jax.Array) -> jax.Array:
  """WGAN generator loss: -E[D(G(z))]."""
  return -jnp.mean(fake_scores)


def hinge_discriminator(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Hinge loss of the discriminator: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
  return jnp.mean(jax.nn.relu(1.0 - real_scores)) + jnp.mean(jax.nn.relu(1.0 + fake_scores))


def least_squares_discriminator(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """LSGAN discriminator loss: (E[(D(x) - 1)^2] + E[D(G(z))^2]) / 2."""
  return 0.5 * (jnp.mean((real_scores - 1.0) ** 2) + jnp.mean(fake_scores**2))


def least_squares_generator(fake_scores: jax.Array) -> jax.Array:
  """LSGAN generator loss: E[(D(G(z)) - 1)^2] / 2."""
  return 0.5 * jnp.mean((fake_scores - 1.0) ** 2)


def _per_example_input_grads(score_fn, x_BxN: jax.Array) -> jax.Array:
  """d score(x_b) / d x_b for every example, flattened to (B, -1).

  `score_fn` maps a batch to one score per example with no cross-example terms
  (no batch statistics), so the gradient of the summed scores is per example.
  """
  grads = jax.grad(lambda x: jnp.sum(score_fn(x)))(x_BxN)
  return grads.reshape((grads.shape[0], -1))


def gradient_penalty(score_fn, real: jax.Array, fake: jax.Array, key: jax.Array,
                     axis_name: str | None = None) -> jax.Array:
  """WGAN-GP penalty E[(||grad D(x_hat)|| - 1)^2] at random interpolates of real and fake.

  One mixing weight per example, uniform in [0, 1] (Gulrajani et al. 2017), drawn from
  the example's index in the global batch (genjax.rng.uniform): under data parallelism
  over `axis_name`, devices mix their slices with different weights, those of one device.
  """
  eps = rng.uniform(key, real.shape[0], (1,) * (real.ndim - 1), axis_name).astype(real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  norms = jnp.linalg.norm(_per_example_input_grads(score_fn, x_hat), axis=-1)
  return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(score_fn, real: jax.Array) -> jax.Array:
  """R1 penalty E[||grad D(x)||^2] on real data (Mescheder et al. 2018), without the gamma/2."""
  return jnp.mean(jnp.sum(_per_example_input_grads(score_fn, real) ** 2, axis=-1))
