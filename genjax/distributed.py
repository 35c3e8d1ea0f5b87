"""Multi-host start-up: join a Cloud TPU pod or multi-process GPU cluster when launched as one."""

import os

import jax


def maybe_initialize() -> None:
  """Call jax.distributed.initialize() when this process is one of several.

  On a Cloud TPU pod slice JAX discovers the other hosts itself; set
  GENJAX_DISTRIBUTED=1 there (the README's launch command does). Elsewhere it
  reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
  """
  if os.environ.get("GENJAX_DISTRIBUTED") == "1" or "JAX_COORDINATOR_ADDRESS" in os.environ:
    jax.distributed.initialize()
