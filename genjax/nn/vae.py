"""VAE encoders and decoders: Burda et al.'s MLPs (1 or 2 stochastic layers), 784-400-20, conv.

A VAE with L stochastic layers has encoders q(z_{l+1} | z_l) and decoders p(z_l | z_{l+1}),
l = 0..L-1, with z_0 = x. Every encoder, and every decoder but the observation decoder
p(x | z_1), is a diagonal Gaussian given as (mean, log standard deviation). The observation
decoder gives Bernoulli logits or a Gaussian (mean in (0, 1), per-pixel log std).

Burda, Grosse & Salakhutdinov (2016): one stochastic layer 784-200-200-50 (encoder hidden
widths (200, 200), z = 50); two stochastic layers 784-200-200-100 then 100-100-100-50 (hidden
widths ((200, 200), (100, 100)), z = (100, 50)), tanh units, the decoders mirrored.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from genjax.nn.conv import conv_layers

ACTIVATIONS = {"tanh": jnp.tanh, "relu": nn.relu, "leaky_relu": lambda h: nn.leaky_relu(h, 0.2),
               "softplus": nn.softplus}
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
CONDITIONINGS = ("concat", "latent")


def _condition(h: jax.Array, y_BxC: jax.Array | None) -> jax.Array:
  """h with the one-hot class appended to its last axis (images: as constant planes)."""
  if y_BxC is None:
    return h
  if h.ndim == 4:
    planes = jnp.broadcast_to(y_BxC[:, None, None, :], (*h.shape[:3], y_BxC.shape[-1]))
    return jnp.concatenate([h, planes], -1)
  return jnp.concatenate([h, y_BxC], -1)


class GaussianMLP(nn.Module):
  """h -> [Dense, activation] * len(hidden) -> (mean, log std) of a diagonal Gaussian."""

  hidden: Sequence[int]
  features: int
  activation: str = "tanh"

  @nn.compact
  def __call__(self, h_BxD: jax.Array) -> tuple[jax.Array, jax.Array]:
    act = ACTIVATIONS[self.activation]
    for width in self.hidden:
      h_BxD = act(nn.Dense(width)(h_BxD))
    return nn.Dense(self.features, name="mean")(h_BxD), nn.Dense(self.features,
                                                                  name="log_std")(h_BxD)


class ObservationMLP(nn.Module):
  """z -> [Dense, activation] * len(hidden) -> p(x | z): Bernoulli logits (B, D), or a
  Gaussian (mean (B, D) in (0, 1), log std (D,) shared by all examples, at least
  log(min_std) so that the density of constant pixels stays bounded)."""

  hidden: Sequence[int]
  features: int
  activation: str = "tanh"
  likelihood: str = "bernoulli"
  min_std: float = 0.01

  @nn.compact
  def __call__(self, z_BxZ: jax.Array):
    act = ACTIVATIONS[self.activation]
    h = z_BxZ
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    out = nn.Dense(self.features)(h)
    if self.likelihood == "bernoulli":
      return out
    log_std = self.param("log_std", nn.initializers.constant(np.log(0.1)), (self.features,))
    return jax.nn.sigmoid(out), jnp.maximum(log_std, np.log(self.min_std))


class ConvEncoder(nn.Module):
  """x (B, 28, 28, C) -> Conv(h, k4, s2) -> Conv(2h, k4, s2) (LeakyReLU 0.2) -> Conv(2z, k4,
  s2) -> (mean, log std): the course's VAE lab encoder (28 -> 13 -> 5 -> 1), without its
  batch norm, so that an image's likelihood does not depend on the rest of its batch."""

  features: int
  hidden: int = 16
  conv_impl: str = "auto"  # matmul | xla | auto (genjax.nn.conv.resolve_conv_impl)

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    conv = conv_layers(self.conv_impl)[0]
    h = x_BxHxWxC
    for width in (self.hidden, 2 * self.hidden):
      h = nn.leaky_relu(conv(width, (4, 4), (2, 2), padding="VALID")(h), 0.2)
    h = conv(2 * self.features, (4, 4), (2, 2), padding="VALID")(h).reshape(h.shape[0], -1)
    return h[:, :self.features], h[:, self.features:]


class ConvDecoder(nn.Module):
  """z -> ConvT(4h, k3, s2) -> ConvT(2h, k4, s1) -> ConvT(h, k3, s2) (ReLU) -> ConvT(C, k4,
  s2) -> Bernoulli logits (B, 28 * 28 * C): the DCGAN generator of the course's VAE lab
  (1 -> 3 -> 6 -> 13 -> 28), without batch norm (see ConvEncoder)."""

  channels: int = 1
  hidden: int = 64
  conv_impl: str = "auto"  # matmul | xla | auto (genjax.nn.conv.resolve_conv_impl)

  @nn.compact
  def __call__(self, z_BxZ: jax.Array) -> jax.Array:
    conv_transpose = conv_layers(self.conv_impl)[1]
    h = z_BxZ[:, None, None, :]
    for width, kernel, stride in ((4 * self.hidden, 3, 2), (2 * self.hidden, 4, 1),
                                  (self.hidden, 3, 2)):
      h = nn.relu(conv_transpose(width, (kernel, kernel), (stride, stride), padding="VALID")(h))
    h = conv_transpose(self.channels, (4, 4), (2, 2), padding="VALID")(h)
    return h.reshape(h.shape[0], -1)


class VAENet(nn.Module):
  """The encoders and decoders of a VAE with len(z_dims) stochastic layers.

  Attributes:
    image_shape: (H, W, C) of the data.
    z_dims: latent sizes, bottom first: (50,) or (100, 50).
    hidden: hidden widths of each layer's encoder, e.g. ((200, 200), (100, 100)); its decoder
      uses them reversed.
    arch: `mlp`, or `conv` (the bottom layer's encoder and decoder are the course's convnets).
    activation: `tanh` (Burda et al.), `relu` (784-400-20) or `leaky_relu`.
    likelihood: `bernoulli` (binary data) or `gaussian` (continuous data in [0, 1]).
    num_classes: > 0: a conditional VAE; `conditioning` says how the class enters.
    conditioning: `concat` appends the one-hot class to every encoder and decoder input;
      `latent` lets the class y act on the top latent z alone: the top decoder reads
      mu_y + s_y * z (learned (K, z) `class_mean` and `class_log_scale`) and the top
      encoder, which does not see y, gives m(x), sd(x), so that
      q(z | x, y) = N((m(x) - mu_y) / s_y, (sd(x) / s_y)^2). The model is then a Gaussian
      mixture N(mu_y, s_y^2) over the decoder's input, and z = (z' - mu_y) / s_y of one
      z' ~ N(m(x), sd(x)^2) decodes to the same image under every class.
    conv_impl: the conv networks' convolutions: `matmul`, `xla` or `auto`
      (genjax.nn.conv.resolve_conv_impl).
  """

  image_shape: tuple[int, int, int] = (28, 28, 1)
  z_dims: Sequence[int] = (50,)
  hidden: Sequence[Sequence[int]] = ((200, 200),)
  arch: str = "mlp"
  activation: str = "tanh"
  likelihood: str = "bernoulli"
  num_classes: int = 0
  min_std: float = 0.01
  conv_hidden: tuple[int, int] = (16, 64)
  conv_impl: str = "auto"
  conditioning: str = "concat"

  def setup(self):
    if self.arch not in ARCHS:
      raise ValueError(f"unknown VAE architecture {self.arch!r}; expected one of {ARCHS}")
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(f"unknown likelihood {self.likelihood!r}; expected one of {LIKELIHOODS}")
    if len(self.hidden) != len(self.z_dims):
      raise ValueError(f"hidden {self.hidden} needs one tuple of widths per stochastic layer "
                       f"of z_dims {self.z_dims}")
    d = int(np.prod(self.image_shape))
    encoders, decoders = [], []
    for level, (widths, z) in enumerate(zip(self.hidden, self.z_dims, strict=True)):
      below = d if level == 0 else self.z_dims[level - 1]
      if level == 0 and self.arch == "conv":
        if self.likelihood != "bernoulli":
          raise ValueError("the conv VAE has a Bernoulli decoder")
        encoders.append(ConvEncoder(z, self.conv_hidden[0], self.conv_impl))
        decoders.append(ConvDecoder(self.image_shape[2], self.conv_hidden[1], self.conv_impl))
      elif level == 0:
        encoders.append(GaussianMLP(tuple(widths), z, self.activation))
        decoders.append(ObservationMLP(tuple(reversed(widths)), d, self.activation,
                                       self.likelihood, self.min_std))
      else:
        encoders.append(GaussianMLP(tuple(widths), z, self.activation))
        decoders.append(GaussianMLP(tuple(reversed(widths)), below, self.activation))
    self.encoders = encoders
    self.decoders = decoders
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f"unknown conditioning {self.conditioning!r}; expected one of "
                       f"{CONDITIONINGS}")
    if self._latent_class:
      shape = (self.num_classes, self.z_dims[-1])
      self.class_mean = self.param("class_mean", nn.initializers.normal(1.0), shape)
      self.class_log_scale = self.param("class_log_scale", nn.initializers.zeros, shape)

  @property
  def _latent_class(self) -> bool:
    return self.num_classes > 0 and self.conditioning == "latent"

  def _one_hot(self, y_B: jax.Array | None) -> jax.Array | None:
    if not self.num_classes or self._latent_class:
      return None
    return jax.nn.one_hot(y_B, self.num_classes)

  def _at_class_top(self, level: int, y_B: jax.Array | None) -> bool:
    return self._latent_class and level == len(self.z_dims) - 1 and y_B is not None

  def _class_moments(self, y_B: jax.Array) -> tuple[jax.Array, jax.Array]:
    # jnp.take: restored parameters may be NumPy arrays, which a traced index cannot read
    return (jnp.take(self.class_mean, y_B, axis=0),
            jnp.take(self.class_log_scale, y_B, axis=0))

  def encode(self, h: jax.Array, level: int, y_B: jax.Array | None = None):
    """q(z_{level+1} | z_level): (mean, log std), each (N, z_dims[level]).

    Level 0 takes images (N, H, W, C) or flat images (N, H*W*C)."""
    if level == 0:
      shape = (h.shape[0], *self.image_shape) if self.arch == "conv" else (h.shape[0], -1)
      h = h.reshape(shape)
    mean, log_std = self.encoders[level](_condition(h, self._one_hot(y_B)))
    if self._at_class_top(level, y_B):  # `latent`: q(z | x, y) of the encoder's m(x), sd(x)
      class_mean, log_scale = self._class_moments(y_B)
      mean, log_std = (mean - class_mean) * jnp.exp(-log_scale), log_std - log_scale
    return mean, log_std

  def decode(self, z: jax.Array, level: int, y_B: jax.Array | None = None):
    """p(z_level | z_{level+1}): level 0 gives p(x | z_1) over flat images (Bernoulli logits
    (N, D), or a Gaussian's (mean (N, D), log std (D,))); higher levels (mean, log std)."""
    if self._at_class_top(level, y_B):  # `latent`: the decoder reads mu_y + s_y * z
      class_mean, log_scale = self._class_moments(y_B)
      z = class_mean + jnp.exp(log_scale) * z
    return self.decoders[level](_condition(z, self._one_hot(y_B)))

  def __call__(self, x: jax.Array, y_B: jax.Array | None = None):
    """Every encoder and decoder once, on the means (what `init` traces)."""
    h, out = x, None
    for level in range(len(self.z_dims)):
      h, _ = self.encode(h, level, y_B)
    for level in reversed(range(len(self.z_dims))):
      out = self.decode(h, level, y_B)
      h = out[0] if level else h
    return out
