"""Likelihood estimators of latent-variable models: the IWAE bound, importance-sampled test NLL
(k = 5000 in memory-bounded chunks, a stable running log-mean-exp), and active units."""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# log_weight_fn(x_bxD, keys_b, n) -> (b, n) log importance weights log p(x, z) - log q(z | x),
# with n samples z ~ q(z | x) drawn for each example from its own key.
LogWeightFn = Callable[[jax.Array, jax.Array, int], jax.Array]


def log_mean_exp(a: jax.Array, axis: int = -1) -> jax.Array:
  """log(mean(exp(a))) along `axis`, stable for any magnitude (max subtracted first)."""
  return jax.nn.logsumexp(a, axis=axis) - math.log(a.shape[axis])


def iwae_bound(log_w_BxK: jax.Array) -> jax.Array:
  """The k-sample importance-weighted bound of each example, log (1/k) sum_j w_j: (B,).

  Its expectation is the ELBO at k = 1 and does not decrease with k (Burda et al., 2016).
  """
  return log_mean_exp(log_w_BxK, axis=-1)


def _running_lse(carry: tuple[jax.Array, jax.Array], log_w_bxC: jax.Array):
  """Fold a chunk of log weights into a running (max, sum of exp(w - max)) per example."""
  m, s = carry
  m_new = jnp.maximum(m, jnp.max(log_w_bxC, axis=-1))
  s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(log_w_bxC - m_new[:, None]), axis=-1)
  return m_new, s


def importance_log_likelihood(log_weight_fn: LogWeightFn, x_bxD: jax.Array, keys_b: jax.Array,
                              k: int, chunk: int) -> jax.Array:
  """log p(x) ~ log (1/k) sum_j p(x, z_j) / q(z_j | x), z_j ~ q, for each example: (b,).

  The k samples are drawn `chunk` at a time (a `lax.scan`), so memory is that of b * chunk
  samples; chunk c of example i draws from fold_in(keys_b[i], c). The running log-sum-exp
  keeps the maximum seen so far, so no weight overflows whatever its size.
  """
  if k % chunk:
    raise ValueError(f"k={k} must be a multiple of chunk={chunk}")
  b = x_bxD.shape[0]

  def body(carry, c):
    chunk_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys_b, c)
    return _running_lse(carry, log_weight_fn(x_bxD, chunk_keys, chunk)), None

  init = (jnp.full((b,), -jnp.inf, jnp.float32), jnp.zeros((b,), jnp.float32))
  (m, s), _ = jax.lax.scan(body, init, jnp.arange(k // chunk))
  return m + jnp.log(s) - math.log(k)


def dataset_log_likelihood(log_weight_fn: LogWeightFn, x_NxD: np.ndarray, key: jax.Array,
                        k: int = 5000, batch: int = 20, chunk: int = 1000) -> np.ndarray:
  """The importance-sampled log-likelihood of every example of a dataset: (N,) float64.

  Example i draws its samples from fold_in(key, i), so the estimate of an example depends
  only on (key, i, k, chunk), not on the batch it is in. Batches of `batch` examples hold
  batch * chunk samples at a time; the last batch is padded (and the padding dropped).
  """
  n = len(x_NxD)
  estimate = jax.jit(lambda x, keys: importance_log_likelihood(log_weight_fn, x, keys, k, chunk))
  out = np.empty(n, np.float64)
  for start in range(0, n, batch):
    x = np.asarray(x_NxD[start:start + batch])
    m = len(x)
    if m < batch:
      x = np.concatenate([x, np.repeat(x[-1:], batch - m, axis=0)])
    index = jnp.arange(start, start + batch)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index)
    out[start:start + m] = np.asarray(estimate(jnp.asarray(x), keys))[:m]
  return out


def active_units(mean_NxZ: jax.Array, threshold: float = 1e-2) -> tuple[int, jax.Array]:
  """Burda et al.'s active units: latent u is active if Cov_x(E_q[u | x]) > threshold.

  Takes the posterior means of N examples (N, Z); returns (how many are active, the
  variance of each unit's mean over the examples (Z,)).
  """
  var = jnp.var(mean_NxZ, axis=0)
  return int(jnp.sum(var > threshold)), var
