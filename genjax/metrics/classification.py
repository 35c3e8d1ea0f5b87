"""Classification metrics from predicted log-probabilities: accuracy, log-loss, calibration."""

import jax
import jax.numpy as jnp


def accuracy(log_probs_NxC: jax.Array, y_N: jax.Array) -> jax.Array:
  """Fraction of rows whose arg-max class is the label."""
  return jnp.mean(jnp.argmax(log_probs_NxC, axis=-1) == y_N)


def log_loss(log_probs_NxC: jax.Array, y_N: jax.Array) -> jax.Array:
  """Mean negative log-probability of the label (nats); log_probs are normalised per row."""
  return -jnp.mean(jnp.take_along_axis(log_probs_NxC, y_N[:, None], axis=-1))


def expected_calibration_error(log_probs_NxC: jax.Array, y_N: jax.Array,
                               num_bins: int = 15) -> jax.Array:
  """ECE: |accuracy - confidence| of the top class, averaged over equal-width confidence bins
  weighted by their share of rows (Guo et al. 2017; bins (i/B, (i+1)/B])."""
  confidence = jnp.exp(jnp.max(log_probs_NxC, axis=-1))
  correct = (jnp.argmax(log_probs_NxC, axis=-1) == y_N).astype(jnp.float32)
  bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
  gap = jnp.zeros(num_bins).at[bins].add(correct - confidence)
  return jnp.sum(jnp.abs(gap)) / confidence.shape[0]


def summary(log_probs_NxC: jax.Array, y_N: jax.Array, num_bins: int = 15) -> dict[str, float]:
  """{"accuracy", "log_loss", "ece"} as Python floats."""
  return {"accuracy": float(accuracy(log_probs_NxC, y_N)),
          "log_loss": float(log_loss(log_probs_NxC, y_N)),
          "ece": float(expected_calibration_error(log_probs_NxC, y_N, num_bins))}
