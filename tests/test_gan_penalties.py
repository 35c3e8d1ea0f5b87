"""Wasserstein, hinge and least-squares GAN losses, and gradient penalties, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax import losses


def _scores():
  k1, k2 = jax.random.split(jax.random.key(0))
  return jax.random.normal(k1, (64,)), jax.random.normal(k2, (64,))


def test_wasserstein_losses():
  real, fake = _scores()
  np.testing.assert_allclose(losses.wasserstein_critic(real, fake),
                             np.mean(fake) - np.mean(real), rtol=1e-6)
  np.testing.assert_allclose(losses.wasserstein_generator(fake), -np.mean(fake), rtol=1e-6)


def test_hinge_loss_is_zero_beyond_the_margins_and_linear_inside():
  assert float(losses.hinge_discriminator(jnp.full(4, 2.0), jnp.full(4, -3.0))) == 0.0
  np.testing.assert_allclose(losses.hinge_discriminator(jnp.zeros(4), jnp.zeros(4)), 2.0)
  np.testing.assert_allclose(losses.hinge_discriminator(jnp.array([0.5]), jnp.array([-0.25])),
                             0.5 + 0.75, rtol=1e-6)


def test_least_squares_losses():
  real, fake = _scores()
  np.testing.assert_allclose(losses.least_squares_discriminator(real, fake),
                             0.5 * (np.mean((real - 1) ** 2) + np.mean(fake**2)), rtol=1e-5)
  np.testing.assert_allclose(losses.least_squares_generator(fake),
                             0.5 * np.mean((fake - 1) ** 2), rtol=1e-5)
  assert float(losses.least_squares_discriminator(jnp.ones(3), jnp.zeros(3))) == 0.0


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
  # D(x) = <w, x>: grad D = w everywhere, so the penalty is (||w|| - 1)^2 whatever x_hat is.
  w = jnp.arange(12.0).reshape(3, 2, 2) / 10.0
  score = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real = jax.random.normal(jax.random.key(1), (5, 3, 2, 2))
  fake = jax.random.normal(jax.random.key(2), (5, 3, 2, 2))
  gp = losses.gradient_penalty(score, real, fake, jax.random.key(3))
  np.testing.assert_allclose(gp, (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)
  # A unit-norm linear critic satisfies the constraint exactly.
  unit = lambda x: jnp.sum(x * (w / jnp.linalg.norm(w)), axis=(1, 2, 3))
  assert abs(float(losses.gradient_penalty(unit, real, fake, jax.random.key(3)))) < 1e-10


def test_gradient_penalty_of_a_quadratic_critic_uses_the_interpolates():
  # D(x) = ||x||^2 / 2: grad D(x_hat) = x_hat, so the penalty is E[(||x_hat|| - 1)^2].
  score = lambda x: 0.5 * jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=-1)
  real = jax.random.normal(jax.random.key(4), (6, 4))
  fake = jax.random.normal(jax.random.key(5), (6, 4))
  key = jax.random.key(6)
  eps = jnp.stack([jax.random.uniform(jax.random.fold_in(key, i), (1,)) for i in range(6)])
  x_hat = eps * real + (1 - eps) * fake
  want = np.mean((np.linalg.norm(x_hat, axis=-1) - 1.0) ** 2)
  np.testing.assert_allclose(losses.gradient_penalty(score, real, fake, key), want, rtol=1e-5)


def test_r1_penalty_is_the_mean_squared_gradient_norm_on_real_data():
  score = lambda x: 0.5 * jnp.sum(x**2, axis=-1)  # grad = x
  real = jax.random.normal(jax.random.key(7), (8, 5))
  np.testing.assert_allclose(losses.r1_penalty(score, real),
                             np.mean(np.sum(np.asarray(real) ** 2, axis=-1)), rtol=1e-5)
