"""Networks of Kingma et al.'s (2014) semi-supervised VAEs: M1's VAE and M2's three MLPs.

M2 (`SSVAENet` with num_classes > 0) has a classifier q(y | x), a Gaussian encoder
q(z | x, y) and a decoder p(x | y, z), the class entering the encoder and the decoder as a
one-hot vector appended to their inputs; x is a flat image (Bernoulli decoder) or, in M1+M2, a
latent vector of M1 (Gaussian decoder: mean and log standard deviation per dimension). M1 is
the same network without classes: q(z | x) and p(x | z).

Kingma et al.'s MNIST networks: one hidden layer of 500 softplus units in each of M2's
networks, z of 50; M1 600-600 softplus units, z of 50. The decoders mirror the encoders'
hidden widths.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from genjax.nn import vae as vae_nn

ACTIVATIONS = vae_nn.ACTIVATIONS
LIKELIHOODS = ("bernoulli", "gaussian")


def activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; expected one of {tuple(ACTIVATIONS)}")
  return ACTIVATIONS[name]


def kernel_init(init_std: float):
  """Weights drawn from N(0, init_std^2) (the paper: 0.001), or flax's LeCun normal when
  init_std <= 0; biases start at zero either way."""
  return nn.initializers.normal(init_std) if init_std > 0 else nn.linear.default_kernel_init


class MLP(nn.Module):
  """h -> [Dense, activation] * len(hidden) -> one Dense(features) per name in `heads` (a
  tuple of outputs when there are several)."""

  hidden: Sequence[int]
  features: int
  activation: str = "softplus"
  heads: tuple[str, ...] = ("out",)
  init_std: float = 0.001

  @nn.compact
  def __call__(self, h_BxD: jax.Array):
    act = activation(self.activation)
    init = kernel_init(self.init_std)
    for width in self.hidden:
      h_BxD = act(nn.Dense(width, kernel_init=init)(h_BxD))
    outs = tuple(nn.Dense(self.features, kernel_init=init, name=name)(h_BxD)
                 for name in self.heads)
    return outs if len(outs) > 1 else outs[0]


def _condition(h_BxD: jax.Array, y_BxK: jax.Array | None) -> jax.Array:
  return h_BxD if y_BxK is None else jnp.concatenate([h_BxD, y_BxK], -1)


class SSVAENet(nn.Module):
  """q(y | x) (when num_classes > 0), q(z | x, y) and p(x | y, z) on flat inputs x (B, D).

  Attributes:
    features: D, the size of x (784 for MNIST images; M1's z for M1+M2).
    z_dim: the size of z.
    hidden: hidden widths of the classifier and the encoder; the decoder uses them reversed.
    activation: a name of ACTIVATIONS (`softplus` in the paper).
    likelihood: `bernoulli` (p(x | y, z) gives logits (B, D)) or `gaussian` (it gives a
      mean and a log standard deviation, each (B, D)).
    num_classes: K; 0 makes the network M1's plain VAE (no classifier, no class inputs).
    init_std: the weights' initial standard deviation (`kernel_init`). The paper's 0.001
      starts every Gaussian near unit variance, so the first steps cannot overflow
      exp(log std) even on large inputs (an untrained M1's codes).
  """

  features: int
  z_dim: int = 50
  hidden: Sequence[int] = (500,)
  activation: str = "softplus"
  likelihood: str = "bernoulli"
  num_classes: int = 10
  init_std: float = 0.001

  def setup(self):
    if self.likelihood not in LIKELIHOODS:
      raise ValueError(f"unknown likelihood {self.likelihood!r}; expected one of {LIKELIHOODS}")
    hidden = tuple(self.hidden)
    if self.num_classes:
      self.classifier = MLP(hidden, self.num_classes, self.activation, init_std=self.init_std)
    self.encoder = MLP(hidden, self.z_dim, self.activation, ("mean", "log_std"), self.init_std)
    heads = ("logits",) if self.likelihood == "bernoulli" else ("mean", "log_std")
    self.decoder = MLP(tuple(reversed(hidden)), self.features, self.activation, heads,
                       self.init_std)

  def classify(self, x_BxD: jax.Array) -> jax.Array:
    """The logits (B, K) of q(y | x)."""
    return self.classifier(x_BxD)

  def encode(self, x_BxD: jax.Array, y_BxK: jax.Array | None = None):
    """q(z | x, y): (mean, log std), each (B, z_dim); y one-hot (or None for M1)."""
    return self.encoder(_condition(x_BxD, y_BxK))

  def decode(self, z_BxZ: jax.Array, y_BxK: jax.Array | None = None):
    """p(x | y, z): logits (B, D), or (mean, log std), each (B, D)."""
    return self.decoder(_condition(z_BxZ, y_BxK))

  def __call__(self, x_BxD: jax.Array):
    """Every network once (what `init` traces), the class from the classifier."""
    y = jax.nn.softmax(self.classify(x_BxD)) if self.num_classes else None
    mean, _ = self.encode(x_BxD, y)
    return self.decode(mean, y)
