"""DCGAN generator and discriminator of the course (week 2): shapes, sizes, initialisation."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genjax.state import init_variables


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def test_generator_shapes_range_and_parameter_count():
  g = DCGANGenerator()
  v = init_variables(g, jax.random.key(0), jnp.zeros((2, 64)), train=False)
  x = jax.jit(lambda v, z: g.apply(v, z, train=False))(v, jax.random.normal(jax.random.key(1),
                                                                           (3, 64)))
  assert x.shape == (3, 28, 28, 1)
  assert float(jnp.max(jnp.abs(x))) <= 1.0
  # ConvT weights k*k*in*out + bias out; batch norm scale + bias per channel.
  want = (3 * 3 * 64 * 256 + 256 + 2 * 256) + (4 * 4 * 256 * 128 + 128 + 2 * 128) \
      + (3 * 3 * 128 * 64 + 64 + 2 * 64) + (4 * 4 * 64 * 1 + 1)
  assert _count(v["params"]) == want


def test_discriminator_shapes_and_parameter_count():
  d = DCGANDiscriminator()
  x = jnp.zeros((4, 28, 28, 1))
  v = init_variables(d, jax.random.key(0), x, train=False)
  assert jax.eval_shape(lambda v, x: d.apply(v, x, train=False), v, x).shape == (4,)
  want = (4 * 4 * 1 * 16 + 16 + 2 * 16) + (4 * 4 * 16 * 32 + 32 + 2 * 32) + (4 * 4 * 32 + 1)
  assert _count(v["params"]) == want


def test_weights_are_drawn_from_normal_0_002():
  g = DCGANGenerator()
  params = init_variables(g, jax.random.key(0), jnp.zeros((1, 64)), train=False)["params"]
  w = np.asarray(params["ConvTranspose_1"]["kernel"]).ravel()  # 524,288 draws
  assert abs(w.mean()) < 5 * 0.02 / np.sqrt(w.size)
  np.testing.assert_allclose(w.std(), 0.02, rtol=0.01)
  scale = np.asarray(params["BatchNorm_0"]["scale"])
  assert np.all(np.abs(scale) < 0.02 * 6) and scale.std() > 0.005
  assert np.all(np.asarray(params["BatchNorm_0"]["bias"]) == 0)
