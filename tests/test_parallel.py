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
