"""genjax.parallel on one device: mode resolution and the batch-size check.

Eight devices against one, for every step family, pmap and shard_map, step by step and
through the loop: tests/test_conformance.py (genjax.conformance).
"""

import pytest


def test_resolve_mode():
  from genjax.parallel import resolve_mode
  assert resolve_mode("auto", 8) == "pmap"
  assert resolve_mode("auto", 1) == "none"
  assert resolve_mode("shard_map", 1) == "shard_map"
  with pytest.raises(ValueError, match="unknown parallel mode 'pmapp'"):
    resolve_mode("pmapp", 8)


def test_check_batch_size_on_one_device():
  import jax

  from genjax.parallel import DataParallel
  dp = DataParallel("auto", devices=jax.local_devices()[:1])
  assert dp.mode == "none" and dp.num_devices == 1
  assert dp.check_batch_size(100) == 100


PMAP_COMPILES_ONCE = """
import jax, jax.numpy as jnp
from genjax.parallel import DataParallel
dp = DataParallel("pmap")
assert dp.num_devices == 2
traces = []
def step(state, batch, axis_name=None):
  traces.append(1)
  return state + jax.lax.pmean(batch.sum(), axis_name), batch
f = dp.wrap(step, "rs", "rs")
state, batch = dp.replicate(jnp.zeros(())), dp.shard(jnp.arange(8.0))
for _ in range(3):
  state, batch = f(state, batch)
print(len(traces), float(dp.unreplicate(state)))
"""


def test_pmap_step_compiles_once(subprocess_env):
  """Arrays placed by `replicate` / `shard` and those the pmapped step returns share one
  sharding, so feeding a step its own outputs does not compile it again."""
  import subprocess
  import sys
  out = subprocess.run([sys.executable, "-c", PMAP_COMPILES_ONCE], env=subprocess_env(2),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  traces, total = out.stdout.split()
  assert int(traces) == 1
  assert float(total) == 3 * 14.0  # the halves' sums (6 and 22) averaged: 14 a step
