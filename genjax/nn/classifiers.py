"""Neural classifier baselines: an MLP, a LeNet-5-style CNN and a small modern CNN (logits out).

Every module takes `(x (B, H, W, C), train=...)` and has a `bn_axis_name` field, which the
classifier family's train step sets to the device axis (the MLP and LeNet-5 have no batch norm
and ignore it). Convolutions are genjax.nn.conv's matmul-formulated `Conv` (flax's parameters,
fast on XLA's CPU backend) or flax's own, as the CNNs' `conv_impl` field says (`matmul`, `xla`
or `auto`: genjax.nn.conv.resolve_conv_impl); pooling is genjax.nn.cnn's reshaped max.
"""

from collections.abc import Sequence

import jax
from flax import linen as nn

from genjax.nn.cnn import DomainCNN, max_pool_2x2
from genjax.nn.conv import conv_layers
from genjax.nn.dropout import Dropout

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


def _activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; expected one of {tuple(ACTIVATIONS)}")
  return ACTIVATIONS[name]


class MLPClassifier(nn.Module):
  """flatten -> (Dropout) -> [Dense, ReLU, (Dropout)] per hidden width -> Dense(num_classes).

  The default two hidden layers of 800 units on 28x28 inputs have 1,276,810 parameters
  (784*800 + 800 + 800*800 + 800 + 800*10 + 10). Dropout on the inputs (`input_dropout_rate`)
  and on each hidden layer (`dropout_rate`) as in Srivastava et al. (2014).
  """

  hidden: Sequence[int] = (800, 800)
  num_classes: int = 10
  dropout_rate: float = 0.0
  input_dropout_rate: float = 0.0
  bn_axis_name: str | None = None  # the device axis (dropout's); the family sets it

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, train: bool = False) -> jax.Array:
    """Logits (B, num_classes); `train` turns dropout on (which then needs a 'dropout' rng)."""
    h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    h = Dropout(self.input_dropout_rate, self.bn_axis_name)(h, deterministic=not train)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
      h = Dropout(self.dropout_rate, self.bn_axis_name)(h, deterministic=not train)
    return nn.Dense(self.num_classes)(h)


class LeNet5(nn.Module):
  """LeNet-5 (LeCun et al. 1998) on 28x28 inputs, with fully connected C3 and max pooling.

  C1 Conv 6 5x5 'SAME' (the original's 32x32 input is MNIST's 28x28 padded by 2) -> pool ->
  C3 Conv 16 5x5 'VALID' (10x10) -> pool (5x5) -> C5 Dense 120 -> F6 Dense 84 -> Dense
  num_classes, `activation` after every hidden layer. 61,706 parameters: 156 + 2,416 + 48,120
  + 10,164 + 850. Departures from the paper, as in most modern re-implementations: C3 sees all
  six C1 maps (the paper's sparse table has 1,516 weights, not 2,416), subsampling is a 2x2
  max (the paper's is a trainable scaled average), ReLU by default (the paper's scaled tanh is
  `activation="tanh"`), and the output is a softmax, not RBF units.
  """

  num_classes: int = 10
  activation: str = "relu"
  bn_axis_name: str | None = None  # the device axis (dropout's); the family sets it
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, train: bool = False) -> jax.Array:
    """Logits (B, num_classes); `train` is unused (no dropout or batch norm)."""
    del train
    act = _activation(self.activation)
    conv = conv_layers(self.conv_impl)[0]
    h = max_pool_2x2(act(conv(6, (5, 5), padding="SAME")(x_BxHxWxC)))
    h = max_pool_2x2(act(conv(16, (5, 5), padding="VALID")(h)))
    h = h.reshape(h.shape[0], -1)
    h = act(nn.Dense(120)(h))
    h = act(nn.Dense(84)(h))
    return nn.Dense(self.num_classes)(h)


class SmallCNN(nn.Module):
  """A small modern CNN: per stage, `convs_per_stage` x [Conv 3x3 'SAME', BatchNorm, ReLU] and a
  2x2 max pool; flatten; Dense(hidden) + BatchNorm + ReLU; Dropout; Dense(num_classes).

  Batch norm after every convolution (whose bias it makes redundant, so there is none), the
  VGG-style stack of 3x3 kernels and dropout before the classifier are the "modern" parts.
  `bn_axis_name` names the device axis over which batch-norm statistics are averaged under
  data parallelism (None on one device).
  """

  num_classes: int = 10
  widths: Sequence[int] = (32, 64)
  convs_per_stage: int = 1
  hidden: int = 128
  dropout_rate: float = 0.0
  bn_axis_name: str | None = None
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array, train: bool = False) -> jax.Array:
    """Logits (B, num_classes). `train` switches batch norm to batch statistics (apply with
    mutable=["batch_stats"]) and turns dropout on (which then needs a 'dropout' rng)."""

    def norm(h):
      return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                          axis_name=self.bn_axis_name)(h)

    conv = conv_layers(self.conv_impl)[0]
    h = x_BxHxWxC
    for width in self.widths:
      for _ in range(self.convs_per_stage):
        h = nn.relu(norm(conv(width, (3, 3), padding="SAME", use_bias=False)(h)))
      h = max_pool_2x2(h)
    h = h.reshape(h.shape[0], -1)
    h = nn.relu(norm(nn.Dense(self.hidden, use_bias=False)(h)))
    h = Dropout(self.dropout_rate, self.bn_axis_name)(h, deterministic=not train)
    return nn.Dense(self.num_classes)(h)


ARCHS = ("domain_cnn", "mlp", "lenet5", "cnn")


def build(m) -> nn.Module:
  """The network a config's `model` section `m` describes: `m.arch` is one of ARCHS.

  `domain_cnn` (genjax.nn.cnn.DomainCNN: widths, feature_dim, dropout_rate, batch_norm),
  `mlp` (MLPClassifier: hidden, dropout_rate, input_dropout_rate), `lenet5` (LeNet5:
  activation) or `cnn` (SmallCNN: widths, convs_per_stage, hidden, dropout_rate); fields a
  config leaves out take the module's defaults. Its module takes `(x, train=...)` and has a
  `bn_axis_name` field, which the train step sets to the device axis.
  """
  conv_impl = m.get("conv_impl", "auto")  # matmul | xla | auto: genjax.nn.conv.resolve_conv_impl
  if m.arch == "domain_cnn":
    return DomainCNN(num_classes=m.num_classes, widths=tuple(m.widths),
                     feature_dim=m.feature_dim, dropout_rate=m.get("dropout_rate", 0.0),
                     batch_norm=m.get("batch_norm", True), conv_impl=conv_impl)
  if m.arch == "mlp":
    return MLPClassifier(num_classes=m.num_classes, hidden=tuple(m.get("hidden", (800, 800))),
                         dropout_rate=m.get("dropout_rate", 0.0),
                         input_dropout_rate=m.get("input_dropout_rate", 0.0))
  if m.arch == "lenet5":
    return LeNet5(num_classes=m.num_classes, activation=m.get("activation", "relu"),
                  conv_impl=conv_impl)
  if m.arch == "cnn":
    return SmallCNN(num_classes=m.num_classes, widths=tuple(m.get("widths", (32, 64))),
                    convs_per_stage=m.get("convs_per_stage", 1), hidden=m.get("hidden", 128),
                    dropout_rate=m.get("dropout_rate", 0.0), conv_impl=conv_impl)
  raise ValueError(f"unknown classifier architecture {m.arch!r}; expected one of {ARCHS}")
