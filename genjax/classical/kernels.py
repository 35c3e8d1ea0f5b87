"""RBF kernel and its explicit feature maps: random Fourier features and Nystroem features.

Both maps are written as `phi(x) = pre(x) @ M`: random Fourier features have `pre(x) =
sqrt(2 / F) cos(x Omega + beta)` and no `M`; Nystroem features have `pre(x) = k(x, L)` for
landmarks L and `M = chol(k(L, L) + jitter I)^-T`, so `phi(x) phi(z)^T = k(x, L) (k(L, L) +
jitter I)^-1 k(L, z)`. Linear models can then score `pre(x) @ (M @ W)` without ever
forming `phi(x)` for the whole training set (an [N, m] x [m, m] product saved).
"""

import jax
import jax.numpy as jnp


def squared_distances(a_NxD: jax.Array, b_MxD: jax.Array) -> jax.Array:
  """|a_i - b_j|^2 as |a|^2 - 2 a.b + |b|^2 (one matmul), clipped at 0, [N, M]."""
  d_NxM = (jnp.sum(a_NxD**2, -1)[:, None] - 2.0 * a_NxD @ b_MxD.T
           + jnp.sum(b_MxD**2, -1)[None, :])
  return jnp.maximum(d_NxM, 0.0)


def rbf(a_NxD: jax.Array, b_MxD: jax.Array, gamma: jax.Array) -> jax.Array:
  """The RBF kernel exp(-gamma |a_i - b_j|^2), [N, M]."""
  return jnp.exp(-gamma * squared_distances(a_NxD, b_MxD))


def scale_gamma(x_NxD: jax.Array) -> jax.Array:
  """scikit-learn's gamma="scale": 1 / (D * Var(x)) over all entries."""
  return 1.0 / (x_NxD.shape[1] * jnp.var(x_NxD))


def fourier_init(key: jax.Array, dim: int, num_features: int, gamma: jax.Array) -> dict:
  """Random Fourier features of the RBF kernel (Rahimi & Recht 2007): frequencies
  Omega ~ N(0, 2 gamma I) [D, F] and phases beta ~ U[0, 2 pi) [F]."""
  k_omega, k_phase = jax.random.split(key)
  return {"omega": jnp.sqrt(2.0 * gamma) * jax.random.normal(k_omega, (dim, num_features)),
          "phase": jax.random.uniform(k_phase, (num_features,), maxval=2.0 * jnp.pi)}


def fourier_features(fp: dict, x_NxD: jax.Array) -> jax.Array:
  """sqrt(2 / F) cos(x Omega + beta), [N, F]; E[phi(x) phi(z)] = exp(-gamma |x - z|^2)."""
  num_features = fp["omega"].shape[1]
  return jnp.sqrt(2.0 / num_features) * jnp.cos(x_NxD @ fp["omega"] + fp["phase"])


def nystroem_init(key: jax.Array, x_NxD: jax.Array, num_features: int, gamma: jax.Array,
                  jitter: float = 1e-5) -> dict:
  """Nystroem features (Williams & Seeger 2001) on `num_features` landmarks drawn without
  replacement from the rows of x. Returns {"landmarks": [m, D], "gamma": [],
  "whiten": [m, m] = chol(k(L, L) + jitter I)^-T}; the jitter keeps the float32 Cholesky
  factor finite when landmarks nearly coincide."""
  idx = jax.random.permutation(key, x_NxD.shape[0])[:num_features]
  landmarks = x_NxD[idx]
  k_mm = rbf(landmarks, landmarks, gamma) + jitter * jnp.eye(num_features)
  chol = jnp.linalg.cholesky(k_mm)
  whiten = jax.scipy.linalg.solve_triangular(chol, jnp.eye(num_features), lower=True).T
  return {"landmarks": landmarks, "gamma": jnp.asarray(gamma, jnp.float32), "whiten": whiten}


def nystroem_pre(fp: dict, x_NxD: jax.Array) -> jax.Array:
  """k(x, landmarks), [N, m]: Nystroem features before the whitening matrix."""
  return rbf(x_NxD, fp["landmarks"], fp["gamma"])


def nystroem_features(fp: dict, x_NxD: jax.Array) -> jax.Array:
  """k(x, L) chol(k(L, L))^-T, [N, m]."""
  return nystroem_pre(fp, x_NxD) @ fp["whiten"]
