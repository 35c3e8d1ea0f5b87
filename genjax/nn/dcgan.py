"""DCGAN generator and discriminator (the GAN Specialization's course 1, week 2), 28x28 images.

The same modules serve week 3 (WGAN-GP: critic of width 64, its normalisation a
switch) and week 4 (conditional GAN: the class enters as extra input channels, so
the modules only see wider inputs).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from genjax.nn.conv import conv_layers

# `conv_impl` picks the convolutions (genjax/nn/conv.py): `matmul`, genjax's matmul
# formulations (fast forward and backward passes on XLA's CPU backend), `xla`, flax's own
# (fast on GPU and TPU), or `auto` (by backend); the parameters and outputs are the same.
# The course initialises conv weights and batch-norm scales from N(0, 0.02), biases at 0.
dcgan_init = nn.initializers.normal(0.02)

NORMS = ("batch", "layer", "none")


def _batch_norm(train: bool, axis_name: str | None) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      scale_init=dcgan_init, axis_name=axis_name)


class DCGANGenerator(nn.Module):
  """z -> ConvT(4h, k3, s2) -> ConvT(2h, k4, s1) -> ConvT(h, k3, s2) -> ConvT(C, k4, s2), tanh.

  Each hidden block is transposed convolution, batch norm and ReLU; spatial sizes
  go 1 -> 3 -> 6 -> 13 -> 28 ('VALID' padding, as PyTorch's padding 0).
  """

  hidden: int = 64
  channels: int = 1
  bn_axis_name: str | None = None
  conv_impl: str = "auto"  # matmul | xla | auto (genjax.nn.conv.resolve_conv_impl)

  @nn.compact
  def __call__(self, z_BxZ: jax.Array, train: bool) -> jax.Array:
    conv_transpose = conv_layers(self.conv_impl)[1]
    h = z_BxZ[:, None, None, :]
    for features, kernel, stride in ((4 * self.hidden, 3, 2), (2 * self.hidden, 4, 1),
                                     (self.hidden, 3, 2)):
      h = conv_transpose(features, (kernel, kernel), (stride, stride), padding="VALID",
                         kernel_init=dcgan_init)(h)
      h = nn.relu(_batch_norm(train, self.bn_axis_name)(h))
    h = conv_transpose(self.channels, (4, 4), (2, 2), padding="VALID",
                       kernel_init=dcgan_init)(h)
    return jnp.tanh(h)


class DCGANDiscriminator(nn.Module):
  """x -> Conv(h, k4, s2) -> Conv(2h, k4, s2) (norm, LeakyReLU 0.2) -> Conv(1, k4, s2).

  Spatial sizes go 28 -> 13 -> 5 -> 1; the output is one score (logit) per image.
  `norm` is the course's batch norm, per-example layer norm over (H, W, C) (what the
  WGAN-GP paper advises for a critic whose gradient is penalised per example), or
  none. `spectral_norm` divides every conv kernel by its largest singular value,
  estimated by one power iteration per training call (Miyato et al. 2018).
  """

  hidden: int = 16
  negative_slope: float = 0.2
  norm: str = "batch"
  spectral_norm: bool = False
  bn_axis_name: str | None = None
  conv_impl: str = "auto"  # matmul | xla | auto (genjax.nn.conv.resolve_conv_impl)

  def _conv(self, features: int, h: jax.Array, train: bool) -> jax.Array:
    conv = conv_layers(self.conv_impl)[0](features, (4, 4), (2, 2), padding="VALID",
                                          kernel_init=dcgan_init)
    if self.spectral_norm:
      return nn.SpectralNorm(conv)(h, update_stats=train)
    return conv(h)

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, train: bool = True) -> jax.Array:
    if self.norm not in NORMS:
      raise ValueError(f"unknown discriminator norm {self.norm!r}; expected one of {NORMS}")
    h = x_BxHxWxC
    for features in (self.hidden, 2 * self.hidden):
      h = self._conv(features, h, train)
      if self.norm == "batch":
        h = _batch_norm(train, self.bn_axis_name)(h)
      elif self.norm == "layer":
        h = nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=-1)(h)
      h = nn.leaky_relu(h, self.negative_slope)
    h = self._conv(1, h, train)
    return h.reshape((h.shape[0],))
