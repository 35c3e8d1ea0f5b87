"""HMM emission models: categorical, Gaussian (diagonal, full covariance), Gaussian mixture.

Each is a pytree with `log_prob(x) -> [K]` for one observation (optionally also
`log_prob_batch(x_...) -> [..., K]`, for many at once where that is faster), `sample(key, z)`,
expected sufficient statistics `stats(x_N..., w_NxK)` (sums weighted by state posteriors, so
that sums of chunks are the stats of the whole data) and `m_step(stats)` (maximum likelihood
with smoothing).
`event_ndim` is the number of axes of one observation (0 for a symbol id, 1 for a vector).
"""

import math

import flax.struct
import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2 * math.pi)


def _data_points(key: jax.Array, x_NxD: jax.Array, num: int) -> jax.Array:
  """`num` distinct rows of x_NxD drawn at random: initial means."""
  return x_NxD[jax.random.choice(key, x_NxD.shape[0], (num,), replace=False)]


def _diag_log_normal(x_D: jax.Array, mean_xD: jax.Array, var_xD: jax.Array) -> jax.Array:
  """log N(x; mean, diag(var)) for every leading index of mean and var: [...]."""
  d = x_D - mean_xD
  return -0.5 * jnp.sum(d * d / var_xD + jnp.log(var_xD) + _LOG_2PI, axis=-1)


def _diag_moments(w_x: jax.Array, wx_xD: jax.Array, wxx_xD: jax.Array,
                  min_var: float) -> tuple[jax.Array, jax.Array]:
  """Weighted means and variances (floored at min_var) from sums of weights, x and x^2."""
  w = jnp.maximum(w_x, 1e-10)[..., None]
  mean = wx_xD / w
  return mean, jnp.maximum(wxx_xD / w - mean * mean, min_var)


@flax.struct.dataclass
class Categorical:
  """Symbols 0..V-1: log_B_KxV[k, v] = log p(x = v | z = k); `pseudo_count` is add-k smoothing."""

  log_B_KxV: jax.Array
  pseudo_count: float = flax.struct.field(pytree_node=False, default=0.0)
  event_ndim = 0

  @classmethod
  def random(cls, key: jax.Array, num_states: int, num_symbols: int, concentration: float = 1.0,
             pseudo_count: float = 0.0) -> "Categorical":
    """Rows drawn from a symmetric Dirichlet(concentration)."""
    B = jax.random.dirichlet(key, jnp.full((num_symbols,), concentration), (num_states,))
    return cls(jnp.log(B), pseudo_count)

  def log_prob(self, x: jax.Array) -> jax.Array:
    return self.log_B_KxV[:, x]

  def log_prob_batch(self, x: jax.Array) -> jax.Array:
    """log_prob of every symbol of x_... at once: [..., K], rows of the transposed table (a
    contiguous K-vector per symbol, not K strided reads)."""
    return jnp.take(self.log_B_KxV.T, x, axis=0)

  def sample(self, key: jax.Array, z: jax.Array) -> jax.Array:
    return jax.random.categorical(key, self.log_B_KxV[z])

  def stats(self, x_N: jax.Array, w_NxK: jax.Array) -> jax.Array:
    """Expected counts [K, V]: sum_n w_nk [x_n = v]."""
    return jax.ops.segment_sum(w_NxK, x_N, num_segments=self.log_B_KxV.shape[1]).T

  def m_step(self, counts_KxV: jax.Array) -> "Categorical":
    counts = counts_KxV + self.pseudo_count
    total = jnp.sum(counts, axis=1, keepdims=True)
    return self.replace(log_B_KxV=jnp.log(counts) - jnp.log(jnp.maximum(total, 1e-30)))


@flax.struct.dataclass
class DiagGaussian:
  """Vectors in R^D: x | z = k ~ N(mean_KxD[k], diag(var_KxD[k])); `min_var` floors variances."""

  mean_KxD: jax.Array
  var_KxD: jax.Array
  min_var: float = flax.struct.field(pytree_node=False, default=1e-4)
  event_ndim = 1

  @classmethod
  def from_data(cls, key: jax.Array, num_states: int, x_NxD: jax.Array,
                min_var: float = 1e-4) -> "DiagGaussian":
    """Means at random data points, every variance the data's."""
    var = jnp.broadcast_to(jnp.var(x_NxD, axis=0), (num_states, x_NxD.shape[1]))
    return cls(_data_points(key, x_NxD, num_states), var, min_var)

  def log_prob(self, x_D: jax.Array) -> jax.Array:
    return _diag_log_normal(x_D, self.mean_KxD, self.var_KxD)

  def sample(self, key: jax.Array, z: jax.Array) -> jax.Array:
    eps = jax.random.normal(key, self.mean_KxD.shape[1:])
    return self.mean_KxD[z] + jnp.sqrt(self.var_KxD[z]) * eps

  def stats(self, x_NxD: jax.Array, w_NxK: jax.Array) -> dict:
    return {"w": jnp.sum(w_NxK, 0), "wx": w_NxK.T @ x_NxD, "wxx": w_NxK.T @ (x_NxD * x_NxD)}

  def m_step(self, s: dict) -> "DiagGaussian":
    mean, var = _diag_moments(s["w"], s["wx"], s["wxx"], self.min_var)
    return self.replace(mean_KxD=mean, var_KxD=var)


@flax.struct.dataclass
class FullGaussian:
  """Vectors in R^D: x | z = k ~ N(mean_KxD[k], cov_KxDxD[k]); `reg` is added to the diagonal."""

  mean_KxD: jax.Array
  cov_KxDxD: jax.Array
  reg: float = flax.struct.field(pytree_node=False, default=1e-4)
  event_ndim = 1

  @classmethod
  def from_data(cls, key: jax.Array, num_states: int, x_NxD: jax.Array,
                reg: float = 1e-4) -> "FullGaussian":
    """Means at random data points, every covariance the data's."""
    cov = jnp.cov(x_NxD.T).reshape(x_NxD.shape[1], x_NxD.shape[1])
    cov = cov + reg * jnp.eye(x_NxD.shape[1])
    return cls(_data_points(key, x_NxD, num_states),
               jnp.broadcast_to(cov, (num_states, *cov.shape)), reg)

  def log_prob(self, x_D: jax.Array) -> jax.Array:
    L_KxDxD = jnp.linalg.cholesky(self.cov_KxDxD)
    d_KxD = x_D - self.mean_KxD
    u_KxD = jax.scipy.linalg.solve_triangular(L_KxDxD, d_KxD[..., None], lower=True)[..., 0]
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(L_KxDxD, axis1=1, axis2=2)), axis=-1)
    return -0.5 * (jnp.sum(u_KxD * u_KxD, -1) + log_det + x_D.shape[-1] * _LOG_2PI)

  def sample(self, key: jax.Array, z: jax.Array) -> jax.Array:
    eps = jax.random.normal(key, self.mean_KxD.shape[1:])
    return self.mean_KxD[z] + jnp.linalg.cholesky(self.cov_KxDxD[z]) @ eps

  def stats(self, x_NxD: jax.Array, w_NxK: jax.Array) -> dict:
    return {"w": jnp.sum(w_NxK, 0), "wx": w_NxK.T @ x_NxD,
            "wxx": jnp.einsum("nk,nd,ne->kde", w_NxK, x_NxD, x_NxD)}

  def m_step(self, s: dict) -> "FullGaussian":
    w = jnp.maximum(s["w"], 1e-10)
    mean = s["wx"] / w[:, None]
    cov = s["wxx"] / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + self.reg * jnp.eye(mean.shape[1])
    return self.replace(mean_KxD=mean, cov_KxDxD=cov)


@flax.struct.dataclass
class GaussianMixture:
  """Vectors in R^D: per state a mixture of M diagonal Gaussians with log-weights log_w_KxM."""

  log_w_KxM: jax.Array
  mean_KxMxD: jax.Array
  var_KxMxD: jax.Array
  min_var: float = flax.struct.field(pytree_node=False, default=1e-4)
  event_ndim = 1

  @classmethod
  def from_data(cls, key: jax.Array, num_states: int, num_components: int, x_NxD: jax.Array,
                min_var: float = 1e-4) -> "GaussianMixture":
    """Equal weights, means at random data points, every variance the data's."""
    k, m, d = num_states, num_components, x_NxD.shape[1]
    var = jnp.broadcast_to(jnp.var(x_NxD, axis=0), (k, m, d))
    return cls(jnp.full((k, m), -math.log(m)), _data_points(key, x_NxD, k * m).reshape(k, m, d),
               var, min_var)

  def component_log_prob(self, x_D: jax.Array) -> jax.Array:
    """[K, M]: log w_km + log N(x | mean_km, var_km)."""
    return self.log_w_KxM + _diag_log_normal(x_D, self.mean_KxMxD, self.var_KxMxD)

  def log_prob(self, x_D: jax.Array) -> jax.Array:
    return jax.nn.logsumexp(self.component_log_prob(x_D), axis=-1)

  def sample(self, key: jax.Array, z: jax.Array) -> jax.Array:
    k_m, k_x = jax.random.split(key)
    m = jax.random.categorical(k_m, self.log_w_KxM[z])
    eps = jax.random.normal(k_x, self.mean_KxMxD.shape[2:])
    return self.mean_KxMxD[z, m] + jnp.sqrt(self.var_KxMxD[z, m]) * eps

  def stats(self, x_NxD: jax.Array, w_NxK: jax.Array) -> dict:
    # Responsibilities within a state, weighted by the state's posterior.
    r_NxKxM = w_NxK[..., None] * jax.nn.softmax(jax.vmap(self.component_log_prob)(x_NxD), -1)
    return {"r": jnp.sum(r_NxKxM, 0), "rx": jnp.einsum("nkm,nd->kmd", r_NxKxM, x_NxD),
            "rxx": jnp.einsum("nkm,nd->kmd", r_NxKxM, x_NxD * x_NxD)}

  def m_step(self, s: dict) -> "GaussianMixture":
    mean, var = _diag_moments(s["r"], s["rx"], s["rxx"], self.min_var)
    r = jnp.maximum(s["r"], 1e-10)
    log_w = jnp.log(r) - jnp.log(jnp.sum(r, -1, keepdims=True))
    return self.replace(log_w_KxM=log_w, mean_KxMxD=mean, var_KxMxD=var)
