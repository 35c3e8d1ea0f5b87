"""The README's research-code example runs as written (on 2 simulated CPU devices)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_python_blocks() -> list[str]:
  with open(os.path.join(ROOT, "README.md")) as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_research_code_example_runs_under_jit_and_pmap():
  # The research-code example; the "Adding a model" snippets are excerpts, not programs.
  (block,) = [b for b in readme_python_blocks() if "DataParallel(" in b]
  check = """
import numpy as np
assert int(state.step) == 2, int(state.step)
assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
assert np.asarray(metrics["d_loss"]).shape == (2,)  # one copy per device under pmap
assert np.all(np.isfinite(np.asarray(metrics["d_loss"])))
print("ok")
"""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", block + check], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().endswith("ok")
