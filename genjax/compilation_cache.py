"""Opt-in persistent compilation cache: JAX keeps compiled programs on disk, so that a new
process (or one whose in-memory caches were cleared) fitting a model of a shape seen before
loads its program instead of compiling it again.

    from genjax.classical import compilation_cache
    compilation_cache.enable()  # $GENJAX_COMPILATION_CACHE, else ~/.cache/genjax/jax

Nothing is cached unless `enable` is called. The closed-form models (naive Bayes, LDA, QDA)
gain most: on MNIST their compilation takes longer than their fit and prediction.
"""

import os

import jax

DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "genjax", "jax")


def enable(path: str | None = None, min_compile_seconds: float = 0.0) -> str:
  """Cache every program that took at least `min_compile_seconds` to compile in `path`
  (default: $GENJAX_COMPILATION_CACHE, else DEFAULT_DIR); returns the directory used."""
  path = path or os.environ.get("GENJAX_COMPILATION_CACHE") or DEFAULT_DIR
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
  return path


def disable() -> None:
  """Stop caching: programs compiled from now on are neither read from nor written to disk."""
  from jax.experimental.compilation_cache import compilation_cache
  jax.config.update("jax_compilation_cache_dir", None)
  compilation_cache.reset_cache()  # JAX keeps the cache it opened until it is reset
