"""Fully connected generator and discriminator (the GAN Specialization's course 1, week 1)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from genjax.nn.init import torch_bias_init, torch_kernel_init


class TorchDense(nn.Module):
  """nn.Dense initialised like PyTorch's nn.Linear."""

  features: int

  @nn.compact
  def __call__(self, x_BxD: jax.Array) -> jax.Array:
    return nn.Dense(self.features, kernel_init=torch_kernel_init,
                    bias_init=torch_bias_init(x_BxD.shape[-1]))(x_BxD)


class MLPGenerator(nn.Module):
  """z -> [Dense, BatchNorm, ReLU] * len(hidden) -> Dense -> sigmoid, reshaped to an image.

  `bn_axis_name` names the device axis over which batch-norm statistics are
  averaged under data parallelism (None on one device).
  """

  hidden: Sequence[int] = (128, 256, 512, 1024)
  image_shape: tuple[int, int, int] = (28, 28, 1)
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, z_BxZ: jax.Array, train: bool) -> jax.Array:
    h = z_BxZ
    for width in self.hidden:
      h = TorchDense(width)(h)
      # PyTorch BatchNorm1d's momentum 0.1 (flax: 0.9) and eps 1e-5. Flax keeps the biased
      # batch variance in its running average where PyTorch keeps the unbiased one (a
      # factor B/(B-1)); only inference-mode sampling sees the difference.
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       axis_name=self.bn_axis_name)(h)
      h = nn.relu(h)
    x = TorchDense(int(np.prod(self.image_shape)))(h)
    return jax.nn.sigmoid(x).reshape((-1, *self.image_shape))


class MLPDiscriminator(nn.Module):
  """image -> flatten -> [Dense, LeakyReLU(0.2)] * len(hidden) -> Dense(1) logit."""

  hidden: Sequence[int] = (512, 256, 128)
  negative_slope: float = 0.2
  spectral_norm: bool = False  # see genjax.nn.dcgan.DCGANDiscriminator

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, train: bool = True) -> jax.Array:
    def dense(features, h):
      layer = TorchDense(features)
      return nn.SpectralNorm(layer)(h, update_stats=train) if self.spectral_norm else layer(h)

    h = x_BxHxWxC.reshape((x_BxHxWxC.shape[0], -1))
    for width in self.hidden:
      h = nn.leaky_relu(dense(width, h), self.negative_slope)
    return jnp.squeeze(dense(1, h), -1)
