"""The networks of Salimans et al. (2016)'s semi-supervised GAN on MNIST (section 5).

Generator: z (100, uniform) -> [Dense 500 (no bias), BatchNorm (shift only), softplus] x 2 ->
weight-normalised Dense 784 -> sigmoid. Discriminator (a K-class classifier whose fake class has
its logit fixed at 0): Gaussian noise (sd 0.3) on the input, then weight-normalised Dense 1000,
500, 250, 250, 250, each ReLU and Gaussian noise (sd 0.5), and a weight-normalised Dense K.
As in the paper's code (openai/improved-gan, mnist_svhn_cifar10/nn.py): batch norm comes before
the softplus; the discriminator's hidden layers keep their scales g fixed after the
data-dependent initialisation, the output layer learns its own; directions v are drawn from
N(0, 0.1^2) in the discriminator and Glorot-uniform in the generator.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def weight_norm_kernel(v_DxF: jax.Array, g_F: jax.Array, epsilon: float = 0.0) -> jax.Array:
  """The effective kernel w = g * v / ||v|| of a weight-normalised layer, one norm per output
  unit (column); `epsilon` is added to the squared norm (the paper's generator adds 1e-6)."""
  norm_F = jnp.sqrt(jnp.sum(jnp.square(v_DxF), axis=0) + epsilon)
  return v_DxF * (g_F / norm_F)[None, :]


class WeightNormDense(nn.Module):
  """Dense with weight normalisation (Salimans & Kingma 2016): w = g * v / ||v|| per output unit.

  Parameters `kernel` (the direction v), `scale` (g, initially 1) and `bias` (b, initially 0).
  `train_scale=False` keeps g out of training (its gradient is stopped): the paper's hidden
  discriminator layers, whose g only the data-dependent initialisation sets.

  Called with `data_init=True` (and the `params` collection mutable), the layer sets g and b
  so that its pre-activations on this batch have mean 0 and standard deviation 1 per unit
  (g <- g / std, b <- -mean / std) and returns them so normalised, which is what it computes
  with the new g and b.
  """

  features: int
  kernel_init: nn.initializers.Initializer = nn.initializers.normal(0.1)
  train_scale: bool = True
  epsilon: float = 0.0  # added to the squared column norms

  @nn.compact
  def __call__(self, x_BxD: jax.Array, data_init: bool = False) -> jax.Array:
    v_DxF = self.param("kernel", self.kernel_init, (x_BxD.shape[-1], self.features))
    g_F = self.param("scale", nn.initializers.ones, (self.features,))
    b_F = self.param("bias", nn.initializers.zeros, (self.features,))
    if not self.train_scale:
      g_F = jax.lax.stop_gradient(g_F)
    t_BxF = x_BxD @ weight_norm_kernel(v_DxF, g_F, self.epsilon)
    if not data_init:
      return t_BxF + b_F
    mean_F = jnp.mean(t_BxF, axis=0)
    std_F = jnp.sqrt(jnp.mean(jnp.square(t_BxF - mean_F), axis=0))
    self.put_variable("params", "scale", g_F / std_F)
    self.put_variable("params", "bias", -mean_F / std_F)
    return (t_BxF - mean_F) / std_F


def gaussian_noise(x_BxD: jax.Array, sd: float, eps_BxD: jax.Array | None) -> jax.Array:
  """The Gaussian-noise layer: x + sd * eps for standard normal draws eps (training); x itself
  without draws (inference)."""
  return x_BxD if eps_BxD is None else x_BxD + sd * eps_BxD


class SSGANGenerator(nn.Module):
  """z -> [Dense (no bias), BatchNorm (shift, no scale), softplus] per hidden width ->
  weight-normalised Dense -> sigmoid, reshaped to an image in [0, 1].

  `bn_axis_name` names the device axis over which batch-norm statistics are averaged under
  data parallelism (None on one device).
  """

  hidden: Sequence[int] = (500, 500)
  image_shape: tuple[int, int, int] = (28, 28, 1)
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, z_BxZ: jax.Array, train: bool) -> jax.Array:
    h = z_BxZ
    for width in self.hidden:
      h = nn.Dense(width, use_bias=False, kernel_init=nn.initializers.glorot_uniform())(h)
      # The paper's batch norm: running averages with weight 0.1 on the new batch, 1e-6 under
      # the square root, a learnt shift and no scale.
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-6,
                       use_scale=False, axis_name=self.bn_axis_name)(h)
      h = nn.softplus(h)
    x = WeightNormDense(int(np.prod(self.image_shape)),
                        kernel_init=nn.initializers.glorot_uniform(), epsilon=1e-6)(h)
    return jax.nn.sigmoid(x).reshape((-1, *self.image_shape))


class SSGANDiscriminator(nn.Module):
  """image -> flatten -> noise -> [weight-normalised Dense, ReLU, noise] per hidden width ->
  weight-normalised Dense(num_classes).

  Returns (logits [B, K] of the K real classes, features [B, F]): the features are the last
  hidden layer's ReLU output before its noise, the layer the generator's feature matching reads.
  The Gaussian noise is on when `noise_BxN` is given: standard normal draws, N = noise_width(D)
  per example (D the flattened input's size), cut into the input's and the hidden layers' widths
  in that order. Drawn by the caller (genjax.rng.quantised_normal, from the examples' indices in
  the global batch), so that a run on N devices draws the noise of a one-device run and batches
  with draws of their own (labelled, unlabelled, generated) can share one pass. `data_init` runs
  the data-dependent initialisation of every layer in turn (see WeightNormDense; `params`
  mutable).
  """

  num_classes: int = 10
  hidden: Sequence[int] = (1000, 500, 250, 250, 250)
  input_noise: float = 0.3
  hidden_noise: float = 0.5

  def noise_width(self, num_inputs: int) -> int:
    """Standard normal draws per example in training mode: the input's and every hidden
    layer's."""
    return num_inputs + sum(self.hidden)

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, noise_BxN: jax.Array | None = None,
               data_init: bool = False) -> tuple[jax.Array, jax.Array]:
    h = x_BxHxWxC.reshape((x_BxHxWxC.shape[0], -1))
    widths = (h.shape[-1], *self.hidden)
    eps = [None] * len(widths)
    if noise_BxN is not None:
      if noise_BxN.shape != (h.shape[0], sum(widths)):
        raise ValueError(f"noise of shape {noise_BxN.shape}, expected {(h.shape[0], sum(widths))}")
      eps = jnp.split(noise_BxN, np.cumsum(widths)[:-1], axis=-1)
    h = gaussian_noise(h, self.input_noise, eps[0])
    features = h
    for width, eps_i in zip(self.hidden, eps[1:], strict=True):
      features = nn.relu(WeightNormDense(width, train_scale=False)(h, data_init))
      h = gaussian_noise(features, self.hidden_noise, eps_i)
    logits = WeightNormDense(self.num_classes, train_scale=True)(h, data_init)
    return logits, features
