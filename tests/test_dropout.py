"""genjax.nn.dropout.Dropout: inverted dropout with per-example masks that do not depend on
how the batch is split over devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.nn.dropout import Dropout

KEY = jax.random.key(3)
N_DEV, PER_DEV, WIDTH = 8, 2, 500


def _apply(rate, x, axis_name=None, deterministic=False):
  return Dropout(rate, axis_name).apply({}, x, deterministic=deterministic,
                                        rngs={"dropout": KEY})


def test_keeps_a_fraction_and_scales_by_its_inverse():
  rate = 0.3
  x = jnp.ones((N_DEV * PER_DEV, WIDTH))
  y = np.asarray(_apply(rate, x))
  kept = y != 0
  # Kept units are scaled by exactly 1 / (1 - rate) (one float32 division).
  np.testing.assert_allclose(y[kept], np.float32(1) / np.float32(1 - rate), rtol=1e-7)
  # 8,000 Bernoulli(0.7) draws: sd 0.0051, so 0.7 +- 0.026 is five of them.
  assert abs(kept.mean() - (1 - rate)) < 0.026


def test_on_simulated_devices_equals_one_device():
  """Eight devices' slices, each drawn with the device axis, are the one-device masks."""
  rate = 0.5
  x = jax.random.normal(jax.random.key(0), (N_DEV * PER_DEV, WIDTH))
  whole = _apply(rate, x)
  per_device = jax.vmap(lambda xs: _apply(rate, xs, axis_name="i"), axis_name="i")(
      x.reshape(N_DEV, PER_DEV, WIDTH))
  np.testing.assert_array_equal(per_device.reshape(whole.shape), whole)
  # The examples do not share a mask.
  masks = np.asarray(whole) != 0
  assert not all(np.array_equal(masks[0], masks[i]) for i in range(1, len(masks)))


@pytest.mark.parametrize("rate, deterministic", [(0.5, True), (0.0, False)])
def test_identity_when_off(rate, deterministic):
  x = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(_apply(rate, x, deterministic=deterministic), x)


def test_rate_one_drops_everything():
  np.testing.assert_array_equal(_apply(1.0, jnp.ones((2, 3))), jnp.zeros((2, 3)))
