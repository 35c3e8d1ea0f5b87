"""Dropout whose masks do not depend on how the batch is split over devices."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax import rng


class Dropout(nn.Module):
  """Inverted dropout with one mask per example, drawn from the example's index in the global
  batch (genjax.rng.uniform): a run on N devices drops exactly the units a one-device run drops.
  (flax's nn.Dropout draws one mask for a device's whole slice from one key, so the masks, and
  the training, would change with the number of devices.) Needs a 'dropout' rng when active.
  """

  rate: float
  axis_name: str | None = None  # the device axis under data parallelism

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    if self.rate == 1.0:
      return jnp.zeros_like(x)
    keep = 1.0 - self.rate
    u = rng.uniform(self.make_rng("dropout"), x.shape[0], x.shape[1:], self.axis_name)
    return jnp.where(u < keep, x / keep, jnp.zeros_like(x))
