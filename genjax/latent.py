"""Latent grids shared by the generative families: classes spread evenly over a grid's rows, and
straight-line walks between latents."""

import jax
import jax.numpy as jnp

from genjax import rng


def sample_labels(num: int, num_classes: int) -> jax.Array:
  """Classes spread evenly and sorted: with num = k * num_classes, k of each, in order.

  Laid out in a grid of num_classes rows, that is one row per class.
  """
  return (jnp.arange(num) * num_classes) // num


def grid_labels(num: int, num_classes: int) -> jax.Array | None:
  """`sample_labels(num, num_classes)` for a conditional model, None for an unconditional one
  (num_classes = 0)."""
  return sample_labels(num, num_classes) if num_classes else None


def interpolate_latents(z0_RxZ: jax.Array, z1_RxZ: jax.Array, steps: int) -> jax.Array:
  """(R * steps, Z): row r's latents from z0[r] to z1[r] in equal steps."""
  t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
  z = (1.0 - t) * z0_RxZ[:, None, :] + t * z1_RxZ[:, None, :]
  return z.reshape(-1, z0_RxZ.shape[-1])


def interpolation_grid(key: jax.Array, rows: int, steps: int, z_dim: int,
                       num_classes: int = 0) -> tuple[jax.Array, jax.Array | None]:
  """The latents and classes of a rows x steps interpolation grid, a pure function of `key`.

  Row r walks in `steps` equal steps between two standard normal draws of z (z_dim), so that
  laid out with `steps` columns each row is one straight line in z space. A conditional model
  (num_classes > 0) keeps one class per row, `sample_labels(rows, num_classes)`; an
  unconditional one gets None.

  Returns:
    z (rows * steps, z_dim) and labels (rows * steps,) or None.
  """
  k0, k1 = jax.random.split(key)
  z0, z1 = rng.normal(k0, rows, (z_dim,)), rng.normal(k1, rows, (z_dim,))
  labels = jnp.repeat(sample_labels(rows, num_classes), steps) if num_classes else None
  return interpolate_latents(z0, z1, steps), labels
