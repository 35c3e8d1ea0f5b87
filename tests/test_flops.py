"""The benchmark's analytic FLOP counts against the matrix products JAX actually traces."""

import jax
import jax.numpy as jnp
import pytest

from genjax import config as gconfig
from genjax.families import gan
from genjax.flops import dense_macs, executed_dot_flops, gan_step_flops, traced_dot_flops


def test_traced_dot_flops_of_a_known_function():
  f = lambda a, b, c: jnp.einsum("bij,bjk->bik", a, b) @ c  # batched, then plain
  a, b, c = jnp.zeros((3, 4, 5)), jnp.zeros((3, 5, 6)), jnp.zeros((6, 7))
  want = 2 * 3 * 4 * 5 * 6 + 2 * 3 * 4 * 6 * 7
  assert traced_dot_flops(jax.make_jaxpr(f)(a, b, c).jaxpr) == want


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


@pytest.mark.slow
def test_conv_gan_step_flops_match_xla_cost_analysis():
  """The conv GAN count (transposed convs without dilation zeros) against XLA's own count of
  the compiled step, whose convolutions are matrix products (genjax.nn.conv): XLA adds the
  elementwise work (batch norm, activations, Adam), a few percent here."""
  from genjax.flops import dcgan_layer_macs, gan_step_flops_from_layers
  config = gconfig.load("experiments/configs/cgan_mnist.py")
  key = jax.random.key(0)
  state = gan.create_state(key, config)
  batch = {"image": jnp.zeros((128, 28, 28, 1)), "label": jnp.zeros((128,), jnp.int32)}
  cost = jax.jit(gan.train_step).lower(state, batch, key).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  g, d = dcgan_layer_macs(64 + 10, 64, 1, 1 + 10, 64)
  analytic = gan_step_flops_from_layers(g, d, 128)
  assert analytic <= cost["flops"] <= 1.03 * analytic


def test_executed_dot_flops_counts_a_scan_body_as_often_as_it_runs():
  def f(a, b):
    return jax.lax.scan(lambda c, _: (c @ b, None), a, None, length=5)[0]
  a, b = jnp.zeros((3, 4)), jnp.zeros((4, 4))
  jaxpr = jax.make_jaxpr(f)(a, b).jaxpr
  assert traced_dot_flops(jaxpr) == 2 * 3 * 4 * 4  # the body, once
  assert executed_dot_flops(jaxpr) == 5 * 2 * 3 * 4 * 4


def test_executed_dot_flops_of_a_cd_k_step_grow_by_one_gibbs_sweep_per_k():
  """rbm_mnist's CD-k step: each further Gibbs sweep (a scan step) multiplies a batch of 100
  by W on the way up and on the way down: 2 * 2 * 100 * 784 * 500 FLOPs."""
  from genjax.families import rbm
  config = gconfig.load("experiments/configs/rbm_mnist.py")
  key = jax.random.key(0)
  batch = {"image": jnp.zeros((100, 28, 28, 1))}

  def flops(k):
    config.unlock()
    config.model.cd_k = k
    state = jax.eval_shape(lambda: rbm.create_state(key, config))
    return executed_dot_flops(jax.make_jaxpr(rbm.train_step)(state, batch, key).jaxpr)

  assert flops(25) - flops(1) == 24 * 2 * 2 * 100 * 784 * 500
