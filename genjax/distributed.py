"""Multi-host start-up: join a Cloud TPU pod or multi-process GPU cluster when launched as one."""

import os

import jax

# A peer that stops answering ends the others' run after this long (JAX's default is 100 s).
HEARTBEAT_TIMEOUT_SECONDS = 20


def maybe_initialize() -> None:
  """Call jax.distributed.initialize() when this process is one of several.

  On a Cloud TPU pod slice JAX discovers the other hosts itself; set GENJAX_DISTRIBUTED=1 there
  (the README's launch command does). Elsewhere (a GPU cluster, `python -m genjax.launch`) it
  reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID; GENJAX_CPU_COLLECTIVES
  (`gloo`) picks the CPU backend's cross-process collectives.
  """
  if "JAX_COORDINATOR_ADDRESS" in os.environ:
    if os.environ.get("GENJAX_CPU_COLLECTIVES"):
      jax.config.update("jax_cpu_collectives_implementation",
                        os.environ["GENJAX_CPU_COLLECTIVES"])
    jax.distributed.initialize(
        coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_SECONDS)
  elif os.environ.get("GENJAX_DISTRIBUTED") == "1":
    jax.distributed.initialize()


def gather_shards(arrays: dict) -> dict:
  """Every process's shard of a split (NumPy arrays with a leading example axis, in process
  order, possibly one example apart in length) concatenated: the whole split on every process.
  One process: `arrays` unchanged."""
  if jax.process_count() == 1:
    return arrays
  import numpy as np
  from jax.experimental import multihost_utils
  n = len(next(iter(arrays.values())))
  sizes = np.asarray(multihost_utils.process_allgather(np.asarray(n, np.int64))).reshape(-1)
  longest = int(sizes.max())
  out = {}
  for name, x in arrays.items():
    padded = np.zeros((longest, *x.shape[1:]), x.dtype)
    padded[:n] = x
    every = np.asarray(multihost_utils.process_allgather(padded))  # (processes, longest, ...)
    out[name] = np.concatenate([every[i, :size] for i, size in enumerate(sizes)])
  return out
