"""Timing on a shared, noisy machine: interleaved windows and the in-process matmul peak."""

import time
from collections.abc import Callable

import numpy as np


def calibrate(fn: Callable[[], object], window_seconds: float) -> int:
  """Calls per timed window: compile and warm up, then size a window to ~window_seconds."""
  import jax
  for _ in range(3):
    jax.block_until_ready(fn())
  t = time.perf_counter()
  jax.block_until_ready(fn())
  return max(1, int(window_seconds / max(time.perf_counter() - t, 1e-6)))


def time_interleaved(fns: dict[str, Callable[[], object]], windows: int,
                     window_seconds: float) -> dict[str, float]:
  """Median seconds per call of each function, their timed windows interleaved.

  Interleaving (a window of each, repeated) exposes every function to the same
  background load, so their ratios hold on a shared, noisy machine.
  """
  import jax
  calls = {name: calibrate(fn, window_seconds) for name, fn in fns.items()}
  seconds = {name: [] for name in fns}
  for _ in range(windows):
    for name, fn in fns.items():
      t = time.perf_counter()
      for _ in range(calls[name] - 1):
        fn()
      jax.block_until_ready(fn())
      seconds[name].append((time.perf_counter() - t) / calls[name])
  return {name: float(np.median(s)) for name, s in seconds.items()}


def matmul_fn(n: int) -> Callable[[], object]:
  """An n x n float32 matmul on the default device: the machine's peak for this benchmark."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  mm = jax.jit(jnp.matmul)
  return lambda: mm(a, b)
