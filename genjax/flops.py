"""Analytic FLOP counts of train steps, from layer shapes (multiply-adds at their true sizes).

A dense layer (d_in -> d_out) on B examples costs B * d_in * d_out multiply-adds
forward, as many for its weight gradient, and as many for its input gradient
when that gradient is needed. One multiply-add is two FLOPs.
"""

import math
from collections.abc import Sequence


def dense_macs(widths: Sequence[int]) -> tuple[int, int]:
  """(multiply-adds of all layers, of the first layer) per example of an MLP with `widths`."""
  layers = [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
  return sum(layers), layers[0]


def gan_step_flops(generator_widths: Sequence[int], discriminator_widths: Sequence[int],
                   batch: int) -> int:
  """FLOPs of one GAN train step: a discriminator update, then a generator update.

  Discriminator update: generate B fakes; D forward and weight gradients on 2B
  examples (real and fake), input gradients below the first layer only.
  Generator update: generate B fakes; D forward and input gradients down to the
  image (no D weight gradients); G weight gradients and input gradients below
  its first layer.
  """
  g, g_first = dense_macs(generator_widths)
  d, d_first = dense_macs(discriminator_widths)
  d_update = g + 2 * d + 2 * d + 2 * (d - d_first)
  g_update = g + d + d + g + (g - g_first)
  return 2 * batch * (d_update + g_update)


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


def traced_dot_flops(jaxpr) -> int:
  """2 * multiply-adds of every dot_general in a jaxpr: what the step really multiplies."""
  total = 0
  for lhs, rhs, params in traced_dots(jaxpr):
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    contracted = math.prod(lhs.shape[d] for d in lc)
    batch = math.prod(lhs.shape[d] for d in lb)
    lhs_free = math.prod(s for d, s in enumerate(lhs.shape) if d not in (*lc, *lb))
    rhs_free = math.prod(s for d, s in enumerate(rhs.shape) if d not in (*rc, *rb))
    total += 2 * batch * lhs_free * rhs_free * contracted
  return total
