"""The benchmark's analytic FLOP counts against the matrix products JAX actually traces."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from genjax import config as gconfig
from genjax import gan
from genjax.flops import dense_macs, gan_step_flops


def _subjaxprs(eqn):
  for v in eqn.params.values():
    for item in v if isinstance(v, (list, tuple)) else [v]:
      if isinstance(item, jex_core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, jex_core.Jaxpr):
        yield item


def traced_dot_flops(jaxpr) -> int:
  """2 * multiply-adds of every dot_general in a jaxpr, sub-jaxprs included."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (lc, _), (lb, _) = eqn.params["dimension_numbers"]
      lhs, rhs = (v.aval.shape for v in eqn.invars)
      out = eqn.outvars[0].aval.shape
      del rhs, lb
      contracted = int(np.prod([lhs[d] for d in lc]))
      total += 2 * int(np.prod(out)) * contracted
    for sub in _subjaxprs(eqn):
      total += traced_dot_flops(sub)
  return total


def test_dense_macs():
  assert dense_macs((3, 4, 5)) == (3 * 4 + 4 * 5, 12)


def test_gan_step_flops_match_traced_matrix_products():
  config = gconfig.load("experiments/configs/gan_mnist.py")
  key = jax.random.key(0)
  state = gan.create_state(key, config)
  batch = {"image": jnp.zeros((128, 28, 28, 1))}
  jaxpr = jax.make_jaxpr(gan.train_step)(state, batch, key).jaxpr
  analytic = gan_step_flops((64, 128, 256, 512, 1024, 784), (784, 512, 256, 128, 1), 128)
  assert traced_dot_flops(jaxpr) == analytic
  # The figure quoted in the README's benchmark: 2.49 GFLOP per step.
  assert analytic == 2_485_387_264
