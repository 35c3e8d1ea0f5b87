"""A batch's model inputs as feature rows: what the fit families and the linear models read."""

import jax
import jax.numpy as jnp
import numpy as np


def features(batch: dict) -> jax.Array:
  """The batch's inputs (`x` of a UCI split, else `image`) as float32 rows [B, D]."""
  x = batch["x"] if "x" in batch else batch["image"]
  return jnp.reshape(x, (x.shape[0], -1)).astype(jnp.float32)


def num_features(split) -> int:
  """D, the length of one example's feature row, from a split's element_spec."""
  spec = split.element_spec
  return int(np.prod((spec["x"] if "x" in spec else spec["image"]).shape))
