"""GAN sample-quality metrics (FID, KID, IS, precision/recall, density/coverage) from features.

The features and class probabilities come from a domain classifier (its penultimate layer and
its softmax), an offline stand-in for the Inception network of the original papers, so values
are comparable only between runs that use the same classifier.

Every metric is a pure function of its inputs. Pairwise distances are computed in row blocks
(`block_size` query rows against the whole other set at a time), so memory grows as
block_size * N rather than N * M.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32 / bf16 passes in the matmuls on accelerators


def _as_f32(x) -> jax.Array:
  return jnp.asarray(x, jnp.float32)


# ----------------------------------------------------------------------------------------------
# Frechet distance (FID)


@jax.jit
def gaussian_stats(features_NxD: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and unbiased covariance of a feature set.

  Takes features (N, D) with N >= 2. Returns (mean_D, cov_DxD), the covariance divided by
  N - 1. It is formed from centred features: E[x x^T] - mu mu^T would cancel catastrophically
  in float32 when the mean is large against the spread.
  """
  x_NxD = _as_f32(features_NxD)
  mean_D = jnp.mean(x_NxD, axis=0)
  centred_NxD = x_NxD - mean_D
  cov_DxD = jnp.dot(centred_NxD.T, centred_NxD, precision=_HIGHEST) / (x_NxD.shape[0] - 1)
  return mean_D, cov_DxD


def _frechet_distance_float64(mu1, cov1, mu2, cov2) -> np.ndarray:
  """The Frechet distance in float64 NumPy; see frechet_distance."""
  mu1, cov1, mu2, cov2 = (np.asarray(a, np.float64) for a in (mu1, cov1, mu2, cov2))
  cov1 = 0.5 * (cov1 + cov1.T)
  cov2 = 0.5 * (cov2 + cov2.T)
  eigvals1, eigvecs1 = np.linalg.eigh(cov1)
  sqrt_cov1 = (eigvecs1 * np.sqrt(np.clip(eigvals1, 0.0, None))) @ eigvecs1.T
  # S1 C2 S1 is similar to C1 C2 (same eigenvalues) but symmetric PSD, so eigvalsh applies.
  middle = sqrt_cov1 @ cov2 @ sqrt_cov1
  middle = 0.5 * (middle + middle.T)
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)))
  value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
  return np.asarray(value, np.float32)


def frechet_distance(mu1: jax.Array, cov1: jax.Array, mu2: jax.Array,
                     cov2: jax.Array) -> jax.Array:
  """Frechet distance between N(mu1, cov1) and N(mu2, cov2).

  Takes two means (D,) and two symmetric PSD covariances (D, D). Returns a float32 scalar,
  ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2}), where tr (C1 C2)^{1/2} is the sum of the
  square roots of the eigenvalues (clipped at 0) of S1 C2 S1 with S1 = C1^{1/2} from eigh.

  The value is a small difference of traces that are each of order D times the feature
  variance, so it is computed in float64 NumPy on the host through `jax.pure_callback`: in
  float32 the cancellation leaves an error of about 1e-6 of the trace (measured for D = 128),
  which is a visible fraction of the FID between two good models. The function stays pure and
  can be called under `jax.jit`.
  """
  args = tuple(_as_f32(a) for a in (mu1, cov1, mu2, cov2))
  return jax.pure_callback(_frechet_distance_float64, jax.ShapeDtypeStruct((), jnp.float32),
                           *args, vmap_method="sequential")


def fid(features_a_NxD: jax.Array, features_b_MxD: jax.Array) -> jax.Array:
  """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D).

  Returns a float32 scalar (0 for identical sets; symmetric in its arguments).
  """
  return frechet_distance(*gaussian_stats(features_a_NxD), *gaussian_stats(features_b_MxD))


# ----------------------------------------------------------------------------------------------
# Kernel distance (KID)


def _offdiag_mean(kernel_MxM: jax.Array) -> jax.Array:
  """Mean of the off-diagonal entries of a square matrix."""
  m = kernel_MxM.shape[0]
  return (_sum_2d(kernel_MxM) - jnp.trace(kernel_MxM)) / (m * (m - 1))


def _sum_2d(x_MxN: jax.Array) -> jax.Array:
  # Row sums first, then their sum: each float32 accumulation runs over ~sqrt of the entries,
  # which keeps the rounding error well below the MMD of two close distributions.
  return jnp.sum(jnp.sum(x_MxN, axis=1))


def polynomial_mmd2_unbiased(x_MxD: jax.Array, y_NxD: jax.Array) -> jax.Array:
  """Unbiased estimate of MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / D + 1)^3.

  Takes two sets (M, D) and (N, D), M, N >= 2. Returns the U-statistic
  mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j),
  a float32 scalar that can be negative when the distributions are close.
  """
  x_MxD, y_NxD = _as_f32(x_MxD), _as_f32(y_NxD)
  d = x_MxD.shape[1]
  kernel = lambda a, b: (jnp.dot(a, b.T, precision=_HIGHEST) / d + 1.0) ** 3
  k_xy_MxN = kernel(x_MxD, y_NxD)
  cross = _sum_2d(k_xy_MxN) / (x_MxD.shape[0] * y_NxD.shape[0])
  return _offdiag_mean(kernel(x_MxD, x_MxD)) + _offdiag_mean(kernel(y_NxD, y_NxD)) - 2.0 * cross


@functools.partial(jax.jit, static_argnames=("num_subsets", "subset_size"))
def kid(features_a_NxD: jax.Array, features_b_MxD: jax.Array, key: jax.Array,
        num_subsets: int = 100, subset_size: int = 1000) -> tuple[jax.Array, jax.Array]:
  """Kernel Inception Distance (Binkowski et al. 2018) over random subsets.

  Takes two feature sets (N, D) and (M, D) and a PRNG key. Each of `num_subsets` subsets draws
  `subset_size` rows (clipped to min(N, M)) without replacement from each set and scores them
  with `polynomial_mmd2_unbiased`. Returns (mean, std) over the subsets as float32 scalars; std
  is the spread of one subset's estimate (ddof 0), not the standard error of the mean.
  """
  a_NxD, b_MxD = _as_f32(features_a_NxD), _as_f32(features_b_MxD)
  m = min(subset_size, a_NxD.shape[0], b_MxD.shape[0])
  if m < 2:
    raise ValueError(f"KID needs subsets of at least 2 rows, got {m}")

  def one_subset(subset_key):
    key_a, key_b = jax.random.split(subset_key)
    rows_a = jax.random.choice(key_a, a_NxD.shape[0], (m,), replace=False)
    rows_b = jax.random.choice(key_b, b_MxD.shape[0], (m,), replace=False)
    return polynomial_mmd2_unbiased(a_NxD[rows_a], b_MxD[rows_b])

  # lax.map, not vmap: one subset's three m x m kernel matrices live at a time.
  values = jax.lax.map(one_subset, jax.random.split(key, num_subsets))
  return jnp.mean(values), jnp.std(values)


# ----------------------------------------------------------------------------------------------
# Inception score


@functools.partial(jax.jit, static_argnames=("num_splits",))
def inception_score(probs_NxK: jax.Array, num_splits: int = 10) -> tuple[jax.Array, jax.Array]:
  """Inception score exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016), per split.

  Takes class probabilities (N, K) whose rows sum to 1, N >= num_splits. The rows are cut into
  `num_splits` contiguous splits whose sizes differ by at most one (no row is dropped); p(y) is
  the mean prediction within a split. Returns (mean, std) of the per-split scores (ddof 0).
  Each score lies in [1, K]: 1 when all predictions are equal, K when they are confident and
  the classes are balanced.
  """
  p_NxK = _as_f32(probs_NxK)
  n = p_NxK.shape[0]
  if not 1 <= num_splits <= n:
    raise ValueError(f"num_splits must be in [1, {n}], got {num_splits}")
  split_N = (jnp.arange(n) * num_splits) // n
  segment_sum = functools.partial(jax.ops.segment_sum, segment_ids=split_N,
                                  num_segments=num_splits, indices_are_sorted=True)
  counts_S = segment_sum(jnp.ones((n,), jnp.float32))
  marginal_SxK = segment_sum(p_NxK) / counts_S[:, None]
  xlogy = jax.scipy.special.xlogy  # 0 log 0 = 0 for classes a row gives no mass
  kl_N = jnp.sum(xlogy(p_NxK, p_NxK) - xlogy(p_NxK, marginal_SxK[split_N]), axis=1)
  scores_S = jnp.exp(segment_sum(kl_N) / counts_S)
  return jnp.mean(scores_S), jnp.std(scores_S)


# ----------------------------------------------------------------------------------------------
# k-nearest-neighbour manifold metrics: precision/recall, density/coverage


def _map_row_blocks(fn, queries_QxD: jax.Array, block_size: int):
  """fn(block_BxD, first_row) over row blocks of the queries, outputs concatenated to Q rows.

  The last block is zero-padded to full size (so lax.map compiles one block shape) and the
  padded rows' outputs are dropped.
  """
  q, d = queries_QxD.shape
  block = min(block_size, q)
  num_blocks = -(-q // block)
  padded = jnp.pad(queries_QxD, ((0, num_blocks * block - q), (0, 0)))
  first_rows = jnp.arange(num_blocks) * block
  out = jax.lax.map(lambda args: fn(*args), (padded.reshape(num_blocks, block, d), first_rows))
  return jax.tree.map(lambda o: o.reshape((num_blocks * block,) + o.shape[2:])[:q], out)


def _sq_dists(a_BxD: jax.Array, b_NxD: jax.Array, b_sqnorm_N: jax.Array) -> jax.Array:
  """Squared Euclidean distances by ||a||^2 - 2 a.b + ||b||^2, clipped at 0 against rounding."""
  a_sqnorm_B = jnp.sum(a_BxD**2, axis=1)
  cross_BxN = jnp.dot(a_BxD, b_NxD.T, precision=_HIGHEST)
  return jnp.maximum(a_sqnorm_B[:, None] - 2.0 * cross_BxN + b_sqnorm_N[None, :], 0.0)


def _kth_nn_sq_dists(x_NxD: jax.Array, k: int, block_size: int) -> jax.Array:
  """Squared distance from every row to its k-th nearest other row, (N,)."""
  n = x_NxD.shape[0]
  if not 1 <= k < n:
    raise ValueError(f"k must be in [1, {n - 1}] for {n} points, got {k}")
  sqnorm_N = jnp.sum(x_NxD**2, axis=1)

  def block_fn(block_BxD, first_row):
    sq_BxN = _sq_dists(block_BxD, x_NxD, sqnorm_N)
    rows_B = first_row + jnp.arange(block_BxD.shape[0])
    # A point is not its own neighbour; masking by index (not by distance 0) keeps duplicates.
    sq_BxN = jnp.where(rows_B[:, None] == jnp.arange(n)[None, :], jnp.inf, sq_BxN)
    neg_smallest_Bxk, _ = jax.lax.top_k(-sq_BxN, k)
    # All k columns leave the block: slicing out the k-th inside the loop makes XLA on CPU
    # replace top_k by a full sort of every row, about 25 times slower at N = 10,000.
    return -neg_smallest_Bxk

  return _map_row_blocks(block_fn, x_NxD, block_size)[:, k - 1]


def _ball_counts(queries_QxD: jax.Array, centres_NxD: jax.Array, radii_sq_N: jax.Array,
                 block_size: int) -> tuple[jax.Array, jax.Array]:
  """For every query: how many closed balls B(centre_i, radius_i) hold it, and its squared
  distance to the nearest centre. Returns (counts_Q int32, nearest_sq_Q)."""
  sqnorm_N = jnp.sum(centres_NxD**2, axis=1)

  def block_fn(block_BxD, first_row):
    del first_row
    sq_BxN = _sq_dists(block_BxD, centres_NxD, sqnorm_N)
    counts_B = jnp.sum(sq_BxN <= radii_sq_N[None, :], axis=1, dtype=jnp.int32)
    return counts_B, jnp.min(sq_BxN, axis=1)

  return _map_row_blocks(block_fn, queries_QxD, block_size)


def _centred_pair(real_NxD, fake_MxD) -> tuple[jax.Array, jax.Array]:
  # Distances are translation invariant; centring on the real mean shrinks the norms that
  # ||a||^2 - 2 a.b + ||b||^2 cancels, so small distances keep more float32 digits.
  real_NxD, fake_MxD = _as_f32(real_NxD), _as_f32(fake_MxD)
  centre_D = jnp.mean(real_NxD, axis=0)
  return real_NxD - centre_D, fake_MxD - centre_D


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def knn_radii(features_NxD: jax.Array, k: int = 3, block_size: int = 1024) -> jax.Array:
  """Distance from every point to its k-th nearest neighbour in the same set (itself excluded).

  Takes features (N, D), 1 <= k < N. Returns radii (N,), computed `block_size` rows at a time.
  """
  x_NxD = _as_f32(features_NxD)
  x_NxD = x_NxD - jnp.mean(x_NxD, axis=0)  # see _centred_pair
  return jnp.sqrt(_kth_nn_sq_dists(x_NxD, k, block_size))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def precision_recall(real_NxD: jax.Array, fake_MxD: jax.Array, k: int = 3,
                     block_size: int = 1024) -> tuple[jax.Array, jax.Array]:
  """Improved precision and recall (Kynkaanniemi et al. 2019).

  Each real point owns the closed ball reaching its k-th nearest real neighbour; precision is
  the fraction of fakes inside at least one real ball. Recall is the same with the roles of the
  sets swapped. Takes real (N, D) and fake (M, D) features; returns float32 scalars in [0, 1].
  """
  real_NxD, fake_MxD = _centred_pair(real_NxD, fake_MxD)
  real_radii_sq_N = _kth_nn_sq_dists(real_NxD, k, block_size)
  fake_radii_sq_M = _kth_nn_sq_dists(fake_MxD, k, block_size)
  fake_counts_M, _ = _ball_counts(fake_MxD, real_NxD, real_radii_sq_N, block_size)
  real_counts_N, _ = _ball_counts(real_NxD, fake_MxD, fake_radii_sq_M, block_size)
  return jnp.mean(fake_counts_M > 0), jnp.mean(real_counts_N > 0)


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def density_coverage(real_NxD: jax.Array, fake_MxD: jax.Array, k: int = 3,
                     block_size: int = 1024) -> tuple[jax.Array, jax.Array]:
  """Density and coverage (Naeem et al. 2020), with the real k-NN balls of precision_recall.

  Density is the number of (fake, real ball) memberships divided by k M: about 1 when the fakes
  follow the reals, above 1 where they crowd dense regions, unbounded. Coverage is the fraction
  of real points whose ball holds at least one fake, in [0, 1]. Takes real (N, D) and fake
  (M, D) features; returns float32 scalars.
  """
  real_NxD, fake_MxD = _centred_pair(real_NxD, fake_MxD)
  real_radii_sq_N = _kth_nn_sq_dists(real_NxD, k, block_size)
  fake_counts_M, _ = _ball_counts(fake_MxD, real_NxD, real_radii_sq_N, block_size)
  # The ball radii do not matter here, only the nearest-fake distance.
  _, nearest_fake_sq_N = _ball_counts(real_NxD, fake_MxD, jnp.zeros(fake_MxD.shape[0]),
                                      block_size)
  density = jnp.sum(fake_counts_M) / (k * fake_MxD.shape[0])
  return density, jnp.mean(nearest_fake_sq_N <= real_radii_sq_N)


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _manifold_metrics(real_NxD, fake_MxD, k: int, block_size: int) -> dict[str, jax.Array]:
  """precision_recall and density_coverage sharing their distance passes (four instead of
  six)."""
  real_NxD, fake_MxD = _centred_pair(real_NxD, fake_MxD)
  real_radii_sq_N = _kth_nn_sq_dists(real_NxD, k, block_size)
  fake_radii_sq_M = _kth_nn_sq_dists(fake_MxD, k, block_size)
  fake_counts_M, _ = _ball_counts(fake_MxD, real_NxD, real_radii_sq_N, block_size)
  real_counts_N, nearest_fake_sq_N = _ball_counts(real_NxD, fake_MxD, fake_radii_sq_M,
                                                  block_size)
  return {
      "precision": jnp.mean(fake_counts_M > 0),
      "recall": jnp.mean(real_counts_N > 0),
      "density": jnp.sum(fake_counts_M) / (k * fake_MxD.shape[0]),
      "coverage": jnp.mean(nearest_fake_sq_N <= real_radii_sq_N),
  }


# ----------------------------------------------------------------------------------------------


def all_metrics(real_features: jax.Array, real_probs: jax.Array, fake_features: jax.Array,
                fake_probs: jax.Array, key: jax.Array, *, k: int = 3, num_subsets: int = 100,
                subset_size: int = 1000, num_splits: int = 10,
                block_size: int = 1024) -> dict[str, float]:
  """Every metric of this module for one real and one fake sample.

  Takes real and fake classifier features (N, D) and (M, D), their class probabilities (N, K)
  and (M, K), and a PRNG key for KID's subsets. Returns Python floats under the keys fid, kid,
  kid_std, is, is_std (the Inception score of the fakes), precision, recall, density and
  coverage. `real_probs` only has its shape checked; the Inception score of the reals, the
  ceiling a generator can hope for, is `inception_score(real_probs)`.
  """
  if real_features.shape[1] != fake_features.shape[1]:
    raise ValueError(f"feature sizes differ: {real_features.shape} vs {fake_features.shape}")
  if (real_probs.shape[1] != fake_probs.shape[1] or real_probs.shape[0] != real_features.shape[0]
      or fake_probs.shape[0] != fake_features.shape[0]):
    raise ValueError(f"probabilities {real_probs.shape}, {fake_probs.shape} do not match "
                     f"features {real_features.shape}, {fake_features.shape}")
  kid_mean, kid_std = kid(real_features, fake_features, key, num_subsets=num_subsets,
                          subset_size=subset_size)
  is_mean, is_std = inception_score(fake_probs, num_splits=num_splits)
  values = {
      "fid": fid(real_features, fake_features),
      "kid": kid_mean,
      "kid_std": kid_std,
      "is": is_mean,
      "is_std": is_std,
      **_manifold_metrics(real_features, fake_features, k=k, block_size=block_size),
  }
  return {name: float(value) for name, value in values.items()}
