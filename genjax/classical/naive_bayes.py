"""Naive Bayes: shared sufficient statistics for the four variants (their priors and Bayes'
rule are genjax.classical.bayes_rule's).

The variants live in their own modules, each with the classical-model contract
(`fit`, `log_proba`, `predict`, `sample`, `init_stats`, `update_stats`, `finalize`,
`HYPERPARAMETERS`):

- genjax.classical.gaussian_nb: Gaussian features, variance smoothing;
- genjax.classical.bernoulli_nb: binary (or thresholded) features, Lidstone alpha;
- genjax.classical.multinomial_nb: count features, Lidstone alpha;
- genjax.classical.categorical_nb: integer categories per feature, Lidstone alpha.

`VARIANTS` maps a short name to the module path.
"""

import jax
import jax.numpy as jnp

VARIANTS = {
    "gaussian": "genjax.classical.gaussian_nb",
    "bernoulli": "genjax.classical.bernoulli_nb",
    "multinomial": "genjax.classical.multinomial_nb",
    "categorical": "genjax.classical.categorical_nb",
}


def one_hot(y_N: jax.Array, num_classes: int) -> jax.Array:
  """Float32 one-hot rows [N, C] of integer labels."""
  return jax.nn.one_hot(y_N, num_classes, dtype=jnp.float32)


def moments_init(num_features: int, num_classes: int) -> dict:
  """Empty per-class diagonal moments: counts [C], means [C, D], centred squares [C, D]."""
  return {"count_C": jnp.zeros(num_classes, jnp.float32),
          "mean_CxD": jnp.zeros((num_classes, num_features), jnp.float32),
          "m2_CxD": jnp.zeros((num_classes, num_features), jnp.float32)}


def moments_update(stats: dict, x_NxD: jax.Array, y_N: jax.Array) -> dict:
  """Fold a batch into per-class means and centred sums of squares.

  Chan et al.'s pairwise merge of (count, mean, M2): the batch's moments are taken about
  its own class means first, so float32 keeps its precision however many batches come.
  """
  x_NxD = jnp.asarray(x_NxD, jnp.float32)
  onehot_NxC = one_hot(y_N, stats["count_C"].shape[0])
  nb_C = onehot_NxC.sum(0)
  safe_C = jnp.maximum(nb_C, 1.0)[:, None]
  mb_CxD = onehot_NxC.T @ x_NxD / safe_C
  # The barrier keeps XLA from fusing the squares into the matmul, whose fused form on CPU is
  # a naive loop several times slower than the library matmul of a materialised operand.
  m2b_CxD = onehot_NxC.T @ jax.lax.optimization_barrier(jnp.square(x_NxD - onehot_NxC @ mb_CxD))
  na_C = stats["count_C"]
  n_C = na_C + nb_C
  delta_CxD = mb_CxD - stats["mean_CxD"]
  frac_C = (nb_C / jnp.maximum(n_C, 1.0))[:, None]
  return {"count_C": n_C,
          "mean_CxD": stats["mean_CxD"] + delta_CxD * frac_C,
          "m2_CxD": stats["m2_CxD"] + m2b_CxD + jnp.square(delta_CxD) * na_C[:, None] * frac_C}


def pooled_variance(count_C: jax.Array, mean_CxD: jax.Array, m2_CxD: jax.Array) -> jax.Array:
  """Variance [D] of every feature over all rows (all classes), from per-class moments."""
  n = jnp.sum(count_C)
  mean_D = count_C @ mean_CxD / n
  m2_D = m2_CxD.sum(0) + count_C @ jnp.square(mean_CxD - mean_D)
  return m2_D / n


def scan_rows(update, stats: dict, x_NxD: jax.Array, y_N: jax.Array, rows: int = 2048) -> dict:
  """`update(stats, x, y)` applied to blocks of `rows` rows in turn (a lax.scan), then to
  the remaining rows.

  On CPU an elementwise transform of a whole [N, D] batch (thresholding, centring) costs far
  more than the matmul after it, through the fresh memory it touches; blocks sliced from the
  batch in place keep it in cache.
  """
  n = x_NxD.shape[0]
  blocks = n // rows
  if blocks <= 1:
    return update(stats, x_NxD, y_N)

  def step(s, i):
    start = i * rows
    return update(s, jax.lax.dynamic_slice_in_dim(x_NxD, start, rows),
                  jax.lax.dynamic_slice_in_dim(y_N, start, rows)), None

  stats, _ = jax.lax.scan(step, stats, jnp.arange(blocks))
  if blocks * rows < n:
    stats = update(stats, x_NxD[blocks * rows:], y_N[blocks * rows:])
  return stats
