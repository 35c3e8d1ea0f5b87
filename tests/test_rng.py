"""Tests of genjax.rng: per-step and per-example keys, and N simulated devices = one device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from genjax import rng

N_DEV = 4


def _on_devices(fn, n_dev: int = N_DEV):
  """Run fn(device_index) on n_dev simulated devices (vmap with axis name 'i')."""
  return jax.jit(jax.vmap(fn, axis_name="i"))(jnp.arange(n_dev))


def _concat(x):
  return x.reshape((-1, *x.shape[2:]))


def test_step_key_is_deterministic_and_differs_per_step():
  base = jax.random.key(0)
  keys = [jax.random.key_data(rng.step_key(base, s)) for s in range(200)]
  again = [jax.random.key_data(rng.step_key(base, s)) for s in range(200)]
  assert all(np.array_equal(a, b) for a, b in zip(keys, again, strict=True))
  assert len({np.asarray(k).tobytes() for k in keys}) == 200
  # The same key under jit with a traced step (as in the compiled train step) and for another
  # base key: a resumed run re-derives its keys from the step alone.
  jitted = jax.jit(rng.step_key)
  np.testing.assert_array_equal(jax.random.key_data(jitted(base, jnp.int32(17))), keys[17])
  other = jax.random.key_data(rng.step_key(jax.random.key(1), 17))
  assert not np.array_equal(other, keys[17])


def test_step_key_is_fold_in():
  base = jax.random.key(3)
  np.testing.assert_array_equal(jax.random.key_data(rng.step_key(base, 5)),
                                jax.random.key_data(jax.random.fold_in(base, 5)))


def test_example_keys_are_distinct_and_fold_the_global_index():
  key = jax.random.key(0)
  keys = jax.random.key_data(rng.example_keys(key, 64))
  assert keys.shape[0] == 64
  assert len({np.asarray(k).tobytes() for k in keys}) == 64
  np.testing.assert_array_equal(keys[10], jax.random.key_data(jax.random.fold_in(key, 10)))


def test_example_keys_on_simulated_devices_equal_one_device():
  key = jax.random.key(1)
  local = 3
  per_dev = _on_devices(lambda _: jax.random.key_data(rng.example_keys(key, local, "i")))
  assert per_dev.shape[:2] == (N_DEV, local)
  np.testing.assert_array_equal(_concat(per_dev),
                                jax.random.key_data(rng.example_keys(key, N_DEV * local)))


def test_normal_on_simulated_devices_equals_one_device_draw():
  key = jax.random.key(2)
  local, shape = 5, (3, 2)
  per_dev = _on_devices(lambda _: rng.normal(key, local, shape, "i"))
  one = rng.normal(key, N_DEV * local, shape)
  assert per_dev.shape == (N_DEV, local, *shape)
  np.testing.assert_array_equal(_concat(per_dev), one)
  # Devices draw different noise (no device repeats another's slice).
  assert not np.allclose(per_dev[0], per_dev[1])


def test_bernoulli_on_simulated_devices_equals_one_device_draw():
  key = jax.random.key(3)
  local = 8
  p = jax.random.uniform(jax.random.key(4), (N_DEV * local, 6))
  per_dev = _on_devices(lambda d: rng.bernoulli(
      key, jax.lax.dynamic_slice_in_dim(p, d * local, local), "i"))
  np.testing.assert_array_equal(_concat(per_dev), rng.bernoulli(key, p))


def test_normal_under_shard_map_equals_one_device_draw():
  # The real multi-device path: every available device holds one slice of the global batch.
  n_dev = jax.device_count()
  mesh = Mesh(np.array(jax.devices()), ("i",))
  key = jax.random.key(5)
  local = 4

  def per_device(dummy):
    del dummy
    return rng.normal(key, local, (7,), "i")

  sharded = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=PartitionSpec("i"),
                                  out_specs=PartitionSpec("i")))
  got = sharded(jnp.zeros((n_dev,)))
  assert got.shape == (n_dev * local, 7)
  np.testing.assert_array_equal(got, rng.normal(key, n_dev * local, (7,)))


def test_normal_is_a_pure_function_of_the_key():
  a = rng.normal(jax.random.key(6), 4, (3,))
  np.testing.assert_array_equal(a, rng.normal(jax.random.key(6), 4, (3,)))
  assert not np.allclose(a, rng.normal(jax.random.key(7), 4, (3,)))
  # Example i's noise does not depend on the batch size (a prefix of a larger draw).
  np.testing.assert_array_equal(a, rng.normal(jax.random.key(6), 10, (3,))[:4])


def test_normal_moments():
  x = np.asarray(rng.normal(jax.random.key(8), 2000, (100,)), np.float64)
  n = x.size
  assert x.shape == (2000, 100)
  # 5-sigma sampling tolerances: sd(mean) = 1/sqrt(n), sd(var) = sqrt(2/n).
  assert abs(x.mean()) < 5 / np.sqrt(n)
  assert abs(x.var() - 1.0) < 5 * np.sqrt(2 / n)
  skew = np.mean(x**3)
  kurt = np.mean(x**4)
  assert abs(skew) < 5 * np.sqrt(15 / n)
  assert abs(kurt - 3.0) < 5 * np.sqrt(96 / n)
  # Examples are independent: the correlation between consecutive examples' draws is ~0.
  corr = np.corrcoef(x[:-1].ravel(), x[1:].ravel())[0, 1]
  assert abs(corr) < 5 / np.sqrt(n)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_bernoulli_frequency(p):
  n = 20000
  draws = np.asarray(rng.bernoulli(jax.random.key(9), jnp.full((n // 10, 10), p)))
  assert draws.dtype == np.bool_
  assert abs(draws.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_bernoulli_extremes_are_exact():
  p = jnp.array([[0.0, 1.0]] * 500)
  draws = np.asarray(rng.bernoulli(jax.random.key(10), p))
  assert not draws[:, 0].any()
  assert draws[:, 1].all()


# ----------------------------------------------------------------- quantised_normal

LEVELS = 1 << 16


def _levels_float64() -> np.ndarray:
  """The exact levels Phi^-1((k + 1/2) / 2^16), k = 0 .. 2^16 - 1, in float64."""
  from scipy.special import ndtri
  return ndtri((np.arange(LEVELS) + 0.5) / LEVELS)


def test_normal_levels_are_the_normal_quantiles():
  want = _levels_float64()
  got = np.asarray(rng.normal_level(jnp.arange(LEVELS)), np.float64)
  # The argument v = (2k + 1) / 2^16 - 1 is exact in float32; float32 erfinv works through
  # w = -log(1 - v^2), whose v^2 rounds by a relative 2^-24 (log's own rounding alike). That
  # moves q = sqrt(2) erfinv(v) by dq/d(v^2) * v^2 * 2^-24 = sqrt(pi / 2) e^(q^2 / 2) |v| / 2 *
  # 2^-24 each; both, plus 4 ulp of q for the polynomial and the final products.
  v = (2 * np.arange(LEVELS) + 1 - LEVELS) / LEVELS
  tol = (np.sqrt(np.pi / 2) * np.exp(want**2 / 2) * np.abs(v) * 2.0**-24
         + 4 * np.abs(want) * 2.0**-23)
  assert np.all(np.abs(got - want) <= tol)
  # Symmetric about 0, exactly: level k is minus level 2^16 - 1 - k.
  np.testing.assert_array_equal(got, -got[::-1])
  assert got[-1] == pytest.approx(4.3250, abs=1e-4)  # the largest draw


def test_threefry2x32_is_jax_threefry():
  """rng.threefry2x32 against jax.extend.random.threefry_2x32, which hashes the count array's
  halves as the (x0, x1) words of its pairs and returns the pairs' two words in its halves."""
  from jax.extend.random import threefry_2x32
  rs = np.random.RandomState(16)
  for k0, k1 in [(0, 0), (0xFFFFFFFF, 1), tuple(rs.randint(0, 2**32, 2, dtype=np.uint64))]:
    x = rs.randint(0, 2**32, (2, 257), dtype=np.uint64).astype(np.uint32)
    x[:, :2] = [[0, 0xFFFFFFFF], [0, 0xFFFFFFFF]]
    want = np.asarray(threefry_2x32((np.uint32(k0), np.uint32(k1)), jnp.asarray(x.ravel())))
    a, b = rng.threefry2x32(jnp.uint32(k0), jnp.uint32(k1), jnp.asarray(x[0]), jnp.asarray(x[1]))
    np.testing.assert_array_equal(np.concatenate([a, b]), want)


def test_quantised_normal_is_threefry_of_example_and_counter():
  """Draws 4c .. 4c + 3 of global example g are the 16-bit halves of threefry2x32(key, (g, c))
  (jax.extend.random's threefry_2x32 of the count pair [g, c] gives its two words)."""
  from jax.extend.random import threefry_2x32
  key = jax.random.key(11)
  x = np.asarray(rng.quantised_normal(key, 7, 18))
  for g, c in [(0, 0), (5, 3), (6, 4)]:
    a, b = np.asarray(threefry_2x32(jax.random.key_data(key), jnp.uint32([g, c])))
    halves = np.uint32([a & 0xFFFF, a >> 16, b & 0xFFFF, b >> 16])
    want = np.asarray(rng.normal_level(jnp.asarray(halves)))
    width = min(4, 18 - 4 * c)
    np.testing.assert_array_equal(x[g, 4 * c:4 * c + width], want[:width])


def test_quantised_normal_on_simulated_devices_equals_one_device_draw():
  key = jax.random.key(12)
  local, width = 5, 13
  per_dev = _on_devices(lambda _: rng.quantised_normal(key, local, width, "i"))
  one = rng.quantised_normal(key, N_DEV * local, width)
  assert per_dev.shape == (N_DEV, local, width)
  np.testing.assert_array_equal(_concat(per_dev), one)
  assert not np.allclose(per_dev[0], per_dev[1])
  # A pure function of (key, example, column): smaller batches and narrower draws are prefixes.
  np.testing.assert_array_equal(rng.quantised_normal(key, 3, 6), one[:3, :6])
  assert not np.allclose(rng.quantised_normal(jax.random.key(13), 3, 6), one[:3, :6])


def test_quantised_normal_under_shard_map_equals_one_device_draw():
  n_dev = jax.device_count()
  mesh = Mesh(np.array(jax.devices()), ("i",))
  key = jax.random.key(14)

  def per_device(dummy):
    del dummy
    return rng.quantised_normal(key, 4, 9, "i")

  sharded = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=PartitionSpec("i"),
                                  out_specs=PartitionSpec("i")))
  np.testing.assert_array_equal(sharded(jnp.zeros((n_dev,))),
                                rng.quantised_normal(key, n_dev * 4, 9))


def test_quantised_normal_statistics():
  """Moments against the level distribution's exact ones, a Kolmogorov-Smirnov bound against
  the normal CDF, and no correlation between the halves of one threefry call or between
  examples."""
  from scipy.special import ndtr
  x = np.asarray(rng.quantised_normal(jax.random.key(15), 2000, 1000), np.float64)
  n = x.size
  levels = _levels_float64()
  var, m4 = np.mean(levels**2), np.mean(levels**4)  # the level distribution's (mean 0)
  assert 1 - var < 3e-5  # the quantisation loses the tails beyond 4.33: a variance of ~1 - 2e-5
  # 5-sigma sampling tolerances: sd(mean) = sqrt(var / n), sd(mean of x^2) = sqrt((m4 - var^2) / n).
  assert abs(x.mean()) < 5 * np.sqrt(var / n)
  assert abs(np.mean(x**2) - var) < 5 * np.sqrt((m4 - var**2) / n)
  assert abs(np.mean(x**3)) < 5 * np.sqrt(15 / n)
  # Kolmogorov-Smirnov: by the DKW inequality, P(sup |F_n - F| > e) <= 2 exp(-2 n e^2), F the
  # level distribution's CDF, which is within 2^-16 of the normal's (one level's mass): at
  # alpha = 1e-6, e = sqrt(log(2 / alpha) / (2 n)).
  s = np.sort(x.ravel())
  cdf = ndtr(s)
  ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
  assert ks < np.sqrt(np.log(2 / 1e-6) / (2 * n)) + 1.0 / LEVELS
  # Independence: the four halves of a call (columns 4c .. 4c + 3) and consecutive examples.
  quads = x.reshape(2000, 250, 4)
  for i, j in [(0, 1), (0, 2), (1, 3), (2, 3)]:
    corr = np.corrcoef(quads[..., i].ravel(), quads[..., j].ravel())[0, 1]
    assert abs(corr) < 5 / np.sqrt(quads[..., i].size)
  corr = np.corrcoef(x[:-1].ravel(), x[1:].ravel())[0, 1]
  assert abs(corr) < 5 / np.sqrt(n)


def test_quantised_normal_refuses_other_key_kinds():
  with pytest.raises(ValueError, match="threefry2x32"):
    rng.quantised_normal(jax.random.key(0, impl="rbg"), 2, 3)
