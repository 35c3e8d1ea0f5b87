"""Tests of genjax.losses: BCE and GAN losses against closed forms and finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import losses


def _bce_closed_form(logits, labels) -> np.ndarray:
  """Per-example BCE in float64: -(y log sigmoid(l) + (1 - y) log(1 - sigmoid(l)))."""
  x = np.asarray(logits, np.float64)
  y = np.broadcast_to(np.asarray(labels, np.float64), x.shape)
  log_p = -np.logaddexp(0.0, -x)  # log sigmoid(x), stable
  log_not_p = -np.logaddexp(0.0, x)  # log(1 - sigmoid(x)), stable
  return -(y * log_p + (1.0 - y) * log_not_p)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _random_logits(seed: int, n: int, scale: float = 3.0) -> jax.Array:
  return scale * jax.random.normal(jax.random.key(seed), (n,), jnp.float32)


def test_bce_at_logit_zero_is_log_two():
  for label in (0.0, 0.5, 1.0):
    loss = losses.sigmoid_bce(jnp.zeros((5,)), label)
    np.testing.assert_allclose(loss, math.log(2.0), rtol=1e-6)


@pytest.mark.parametrize("logit,label,expected", [
    (100.0, 0.0, 100.0 + math.log1p(math.exp(-100.0))),
    (-100.0, 1.0, 100.0 + math.log1p(math.exp(-100.0))),
    (100.0, 1.0, math.log1p(math.exp(-100.0))),  # ~3.7e-44: below float32's normal range
    (-100.0, 0.0, math.log1p(math.exp(-100.0))),
])
def test_bce_is_exact_and_finite_at_saturated_logits(logit, label, expected):
  loss = losses.sigmoid_bce(jnp.array([logit], jnp.float32), label)
  assert np.isfinite(loss)
  assert loss >= 0.0
  np.testing.assert_allclose(loss, expected, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("logit,label", [(100.0, 0.0), (-100.0, 1.0), (100.0, 1.0),
                                         (-100.0, 0.0)])
def test_bce_gradient_is_finite_at_saturated_logits(logit, label):
  # d/dl BCE(l, y) = sigmoid(l) - y: +-1 when the prediction is confidently wrong, 0 when right.
  grad = jax.grad(lambda x: losses.sigmoid_bce(x, label))(jnp.array([logit], jnp.float32))
  assert np.all(np.isfinite(grad))
  np.testing.assert_allclose(grad, _sigmoid(logit) - label, atol=1e-6)


def test_bce_matches_closed_form_for_soft_labels():
  logits = _random_logits(0, 64)
  labels = jax.random.uniform(jax.random.key(1), (64,))
  expected = _bce_closed_form(logits, labels).mean()
  np.testing.assert_allclose(losses.sigmoid_bce(logits, labels), expected, rtol=1e-5)


def test_bce_broadcasts_scalar_label():
  logits = _random_logits(2, 16)
  np.testing.assert_allclose(losses.sigmoid_bce(logits, 1.0),
                             losses.sigmoid_bce(logits, jnp.ones(16)), rtol=0, atol=0)


def test_discriminator_bce_is_mean_of_real_and_fake_terms():
  real, fake = _random_logits(3, 32), _random_logits(4, 24)  # batch sizes may differ
  expected = 0.5 * (_bce_closed_form(real, 1.0).mean() + _bce_closed_form(fake, 0.0).mean())
  got = losses.gan_discriminator_bce(real, fake)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  np.testing.assert_allclose(
      got, 0.5 * (losses.sigmoid_bce(real, 1.0) + losses.sigmoid_bce(fake, 0.0)), rtol=1e-6)


def test_discriminator_one_sided_label_smoothing_closed_form():
  real, fake = _random_logits(5, 32), _random_logits(6, 32)
  # Real targets 0.9, fake targets stay 0: softplus(l) - y*l averaged, halved.
  softplus = lambda x: np.logaddexp(0.0, np.asarray(x, np.float64))
  expected = 0.5 * (np.mean(softplus(real) - 0.9 * np.asarray(real, np.float64))
                    + np.mean(softplus(fake)))
  got = losses.gan_discriminator_bce(real, fake, real_label=0.9)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Smoothing changes only the real term, by 0.1 * mean(real logits) / 2.
  unsmoothed = losses.gan_discriminator_bce(real, fake)
  np.testing.assert_allclose(got - unsmoothed, 0.05 * np.mean(np.asarray(real, np.float64)),
                             rtol=1e-4, atol=1e-6)


def test_discriminator_optimum_at_logit_zero_is_log_two():
  # D(x) = 1/2 everywhere (the equilibrium) gives log 2 for both terms.
  np.testing.assert_allclose(
      losses.gan_discriminator_bce(jnp.zeros(8), jnp.zeros(8)), math.log(2.0), rtol=1e-6)


def test_generator_losses_closed_forms():
  fake = _random_logits(7, 32)
  f = np.asarray(fake, np.float64)
  np.testing.assert_allclose(losses.gan_generator_non_saturating(fake),
                             np.mean(np.logaddexp(0.0, -f)), rtol=1e-5)  # -log sigmoid
  np.testing.assert_allclose(losses.gan_generator_minimax(fake),
                             -np.mean(np.logaddexp(0.0, f)), rtol=1e-5)  # log(1 - sigmoid)
  assert losses.gan_generator_minimax(fake) < 0.0 < losses.gan_generator_non_saturating(fake)
  assert set(losses.GENERATOR_LOSSES) == {"non_saturating", "minimax"}
  assert losses.GENERATOR_LOSSES["minimax"] is losses.gan_generator_minimax
  assert losses.GENERATOR_LOSSES["non_saturating"] is losses.gan_generator_non_saturating


def test_minimax_gradient_vanishes_where_non_saturating_does_not():
  # D(G(z)) ~ sigmoid(-10) ~ 4.5e-5: the discriminator confidently rejects the fakes.
  b = 4
  fake = jnp.full((b,), -10.0, jnp.float32)
  s = _sigmoid(-10.0)
  g_minimax = jax.grad(losses.gan_generator_minimax)(fake)
  g_non_saturating = jax.grad(losses.gan_generator_non_saturating)(fake)
  # d/dl log(1 - sigmoid(l)) = -sigmoid(l);  d/dl -log sigmoid(l) = -(1 - sigmoid(l)); mean: 1/B.
  np.testing.assert_allclose(g_minimax, np.full(b, -s / b), rtol=1e-4)
  # sigmoid and its derivative, a few float32 ops: 1e-5 is ~80 ulps (1e-6 was 8; 3 seen).
  np.testing.assert_allclose(g_non_saturating, np.full(b, -(1.0 - s) / b), rtol=1e-5)
  assert abs(float(g_minimax[0])) * b < 5e-5
  assert abs(float(g_non_saturating[0])) * b > 0.9999
  # Both push the fake logit up (descent increases l).
  assert np.all(g_minimax < 0) and np.all(g_non_saturating < 0)


@pytest.mark.parametrize("name", ["minimax", "non_saturating", "discriminator_fake",
                                  "discriminator_real_smoothed"])
def test_gradients_match_central_finite_differences(name):
  fns = {
      "minimax": losses.gan_generator_minimax,
      "non_saturating": losses.gan_generator_non_saturating,
      "discriminator_fake": lambda x: losses.gan_discriminator_bce(jnp.zeros_like(x), x),
      "discriminator_real_smoothed": lambda x: losses.gan_discriminator_bce(
          x, jnp.zeros_like(x), real_label=0.9),
  }
  fn = fns[name]
  logits = _random_logits(8, 6, scale=2.0)
  grad = np.asarray(jax.grad(fn)(logits), np.float64)
  eps = 1e-2
  fd = np.zeros(len(logits))
  for i in range(len(logits)):
    e = jnp.zeros_like(logits).at[i].set(eps)
    fd[i] = (float(fn(logits + e)) - float(fn(logits - e))) / (2 * eps)
  # float32 losses of size ~1: round-off / eps ~ 1e-5; truncation eps^2 |f'''| / 6 ~ 1e-6.
  np.testing.assert_allclose(grad, fd, atol=5e-5)
  assert np.abs(grad).max() > 0.02  # the comparison is not between two zeros
