"""Analytic FLOP counts of train steps, from layer shapes (multiply-adds at their true sizes).

A dense layer (d_in -> d_out) on B examples costs B * d_in * d_out multiply-adds
forward, as many for its weight gradient, and as many for its input gradient
when that gradient is needed. One multiply-add is two FLOPs.
"""

import math
from collections.abc import Sequence


def dense_macs(widths: Sequence[int]) -> tuple[int, int]:
  """(multiply-adds of all layers, of the first layer) per example of an MLP with `widths`."""
  layers = dense_layer_macs(widths)
  return sum(layers), layers[0]


def dense_layer_macs(widths: Sequence[int]) -> list[int]:
  """Multiply-adds per example of each layer of an MLP with `widths`."""
  return [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]


def conv_macs(out_h: int, out_w: int, kernel: int, c_in: int, c_out: int) -> int:
  """Multiply-adds per example of a convolution: every output pixel reads k*k*c_in inputs."""
  return out_h * out_w * kernel * kernel * c_in * c_out


def conv_transpose_macs(in_h: int, in_w: int, kernel: int, c_in: int, c_out: int) -> int:
  """Multiply-adds per example of a transposed convolution: every input pixel scatters a
  k*k*c_out patch (no multiplications by the zeros a dilated-input formulation inserts)."""
  return in_h * in_w * kernel * kernel * c_in * c_out


def dcgan_layer_macs(z_in: int, hidden: int, channels: int, d_in: int,
                     d_hidden: int) -> tuple[list[int], list[int]]:
  """Per-example multiply-adds of the course's DCGAN generator and discriminator layers.

  Generator 1 -> 3 -> 6 -> 13 -> 28 (kernels 3, 4, 3, 4); discriminator 28 -> 13 -> 5 -> 1
  (kernel 4). `z_in` and `d_in` include a conditional GAN's class inputs.
  """
  h = hidden
  g = [conv_transpose_macs(1, 1, 3, z_in, 4 * h), conv_transpose_macs(3, 3, 4, 4 * h, 2 * h),
       conv_transpose_macs(6, 6, 3, 2 * h, h), conv_transpose_macs(13, 13, 4, h, channels)]
  d = [conv_macs(13, 13, 4, d_in, d_hidden), conv_macs(5, 5, 4, d_hidden, 2 * d_hidden),
       conv_macs(1, 1, 4, 2 * d_hidden, 1)]
  return g, d


def gan_step_flops_from_layers(g_layers: Sequence[int], d_layers: Sequence[int], batch: int,
                               n_critic: int = 1, penalties: int = 0) -> int:
  """FLOPs of one GAN train step from per-example layer multiply-adds.

  Each of the `n_critic` discriminator updates: generate B fakes; D forward and weight
  gradients on 2B examples (real and fake), input gradients below the first layer only;
  plus, per gradient penalty (WGAN-GP's, R1), on B images: D forward, input gradients
  through every layer, and the reverse pass of both for the weight gradients (two
  products per product, less the input gradient of the first forward layer).
  Generator update: generate B fakes; D forward and input gradients down to the image
  (no D weight gradients); G weight gradients and input gradients below its first layer.
  """
  g, g_first = sum(g_layers), g_layers[0]
  d, d_first = sum(d_layers), d_layers[0]
  penalty = d + d + 2 * d + (2 * d - d_first)
  d_update = g + 2 * d + 2 * d + 2 * (d - d_first) + penalties * penalty
  g_update = g + d + d + g + (g - g_first)
  return 2 * batch * (n_critic * d_update + g_update)


def gan_step_flops(generator_widths: Sequence[int], discriminator_widths: Sequence[int],
                   batch: int) -> int:
  """FLOPs of one step of an MLP GAN (see gan_step_flops_from_layers)."""
  return gan_step_flops_from_layers(dense_layer_macs(generator_widths),
                                    dense_layer_macs(discriminator_widths), batch)


def traced_dots(jaxpr) -> list:
  """Every dot_general of a jaxpr, sub-jaxprs included, as (lhs aval, rhs aval, params)."""
  from jax.extend import core as jex_core
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      found.append((eqn.invars[0].aval, eqn.invars[1].aval, eqn.params))
    for value in eqn.params.values():
      for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, jex_core.ClosedJaxpr):
          found += traced_dots(item.jaxpr)
        elif isinstance(item, jex_core.Jaxpr):
          found += traced_dots(item)
  return found


def dot_flops(lhs, rhs, params) -> int:
  """2 * multiply-adds of one dot_general of operands `lhs`, `rhs` (avals) and `params`."""
  (lc, rc), (lb, rb) = params["dimension_numbers"]
  contracted = math.prod(lhs.shape[d] for d in lc)
  batch = math.prod(lhs.shape[d] for d in lb)
  lhs_free = math.prod(s for d, s in enumerate(lhs.shape) if d not in (*lc, *lb))
  rhs_free = math.prod(s for d, s in enumerate(rhs.shape) if d not in (*rc, *rb))
  return 2 * batch * lhs_free * rhs_free * contracted


def traced_dot_flops(jaxpr) -> int:
  """2 * multiply-adds of every dot_general in a jaxpr: what the step really multiplies."""
  return sum(dot_flops(lhs, rhs, params) for lhs, rhs, params in traced_dots(jaxpr))


def executed_dot_flops(jaxpr) -> int:
  """traced_dot_flops with the body of each `lax.scan` counted as often as it runs (its
  `length`): a CD-k chain or a scanned epoch counts every sweep. A while loop's body (a
  `fori_loop` with a traced trip count) counts once, and every branch of a `cond` counts."""
  from jax.extend import core as jex_core
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      total += dot_flops(eqn.invars[0].aval, eqn.invars[1].aval, eqn.params)
    times = eqn.params["length"] if eqn.primitive.name == "scan" else 1
    for value in eqn.params.values():
      for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, jex_core.ClosedJaxpr):
          total += times * executed_dot_flops(item.jaxpr)
        elif isinstance(item, jex_core.Jaxpr):
          total += times * executed_dot_flops(item)
  return total


def vae_step_flops(encoder_widths: Sequence[int], decoder_widths: Sequence[int], batch: int,
                   k: int = 1) -> int:
  """FLOPs of one train step of an MLP VAE with one stochastic layer and k samples per image.

  The encoder (its last width counts both heads, mean and log std) runs on B images, the
  decoder on B * k latents. Forward, weight gradients of every layer, input gradients of
  every layer but the encoder's first (the image needs none): 3E - E_first + 3kD per image.
  """
  e, e_first = dense_macs(encoder_widths)
  d, _ = dense_macs(decoder_widths)
  return 2 * batch * (3 * e - e_first + 3 * k * d)
