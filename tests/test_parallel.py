"""genjax.parallel: eight CPU devices against one, for pmap and shard_map, step by step and
through the whole training loop.

XLA_FLAGS must give the host platform eight devices before JAX starts, so the multi-device
work runs in one subprocess (this file, run as a script) with its 1-device reference runs
beside it (`devices=jax.local_devices()[:1]`, or parallel=none); it saves its results to a
temporary directory and the tests compare them here.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

NUM_DEVICES = 8
GLOBAL_BATCH = 64  # 8 examples per device: batch norm sees 8, and must average to all 64
NUM_STEPS = 3
STEP_MODES = ("pmap", "shard_map")
LOOP_OVERRIDES = {
    "data.batch_size": GLOBAL_BATCH, "train.num_steps": 6, "train.log_every": 2,
    "train.checkpoint_every": 6, "train.sample_every": 1000, "train.tensorboard": False,
    "data.validation_size": 59_000,  # train on 1,000 examples: less to copy to 8 devices
}


# The subprocess ----------------------------------------------------------------------------


def _leaves(tree) -> dict:
  import jax
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def _replica_spread(tree) -> float:
  """The largest difference between the devices' copies of a replicated tree."""
  import jax
  spread = 0.0
  for x in jax.tree.leaves(tree):
    copies = [np.asarray(s.data, np.float64) for s in x.addressable_shards]
    spread = max([spread, *(float(np.max(np.abs(c - copies[0]))) for c in copies[1:])])
  return spread


def worker(out_dir: Path, loop_modes: list[str]) -> None:
  """Runs with 8 CPU devices: writes info.json, steps.npz and loop/<mode>/ under out_dir."""
  # Run as a script, this file's directory (tests/) is sys.path[0]: conftest imports.
  import jax
  import jax.numpy as jnp
  from conftest import GAN_MNIST_CONFIG, apply_overrides, load_config_module

  from genjax import train
  from genjax.families import gan
  from genjax.parallel import DataParallel

  get_config = load_config_module(GAN_MNIST_CONFIG).get_config
  devices = jax.local_devices()
  one = devices[:1]
  info = {"num_devices": len(devices), "auto_many": DataParallel("auto").mode,
          "auto_one": DataParallel("auto", devices=one).mode,
          "per_device_batch": DataParallel("pmap").check_batch_size(GLOBAL_BATCH)}
  try:
    DataParallel("pmap").check_batch_size(100)
  except ValueError as e:
    info["batch_error"] = str(e)

  # One train step, then two more, on 1 device and on 8 with the same global batches.
  config = get_config("smoke")
  state0 = gan.create_state(jax.random.key(0), config)
  key = jax.random.key(1)
  rs = np.random.RandomState(0)
  batches = [{"image": rs.uniform(size=(GLOBAL_BATCH, 28, 28, 1)).astype(np.float32),
              "label": rs.randint(0, 10, GLOBAL_BATCH).astype(np.int32)}
             for _ in range(NUM_STEPS)]
  arrays = {}
  for mode, mode_devices in (("none", one), *((m, devices) for m in STEP_MODES)):
    dp = DataParallel(mode, devices=mode_devices)
    step = dp.wrap(gan.train_step, "rsr", "rr")
    state = dp.replicate(jax.tree.map(jnp.copy, state0))  # plain jit donates its input
    key_d = dp.replicate(key)
    for i, batch in enumerate(batches, 1):
      state, metrics = step(state, dp.shard(batch), key_d)
      one_copy = jax.device_get(dp.unreplicate((state, metrics)))
      for name, x in _leaves({"state": one_copy[0], "metrics": one_copy[1]}).items():
        arrays[f"{mode}/{i}/{name}"] = x
      arrays[f"{mode}/{i}/replica_spread"] = np.float64(_replica_spread((state, metrics)))
  np.savez(out_dir / "steps.npz", **arrays)

  # The whole loop on real data: parallel=none is one device.
  for mode in loop_modes:
    config = get_config("smoke")
    apply_overrides(config, {**LOOP_OVERRIDES, "parallel": mode, "train.progress": False})
    train.train_and_evaluate(config, str(out_dir / "loop" / mode))
  (out_dir / "info.json").write_text(json.dumps(info))


def _run_worker(out_dir: Path, loop_modes: list[str], env: dict) -> Path:
  result = subprocess.run([sys.executable, __file__, str(out_dir), ",".join(loop_modes)],
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, (
      f"8-device worker failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
      f"{result.stderr[-6000:]}")
  return out_dir


# The tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory, subprocess_env) -> Path:
  """The results of one 8-device worker: steps in all modes, the loop with none and pmap."""
  return _run_worker(tmp_path_factory.mktemp("eight_devices"), ["none", "pmap"],
                     subprocess_env(NUM_DEVICES))


def _step_results(out_dir: Path, mode: str, step: int) -> dict:
  with np.load(out_dir / "steps.npz") as z:
    prefix = f"{mode}/{step}/"
    return {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}


def _moment(name: str) -> str | None:
  """The Adam moment a leaf belongs to (`....generator.opt_state[0].mu`), else None."""
  match = re.match(r"(.*opt_state\[\d+\]\.(mu|nu))\[", name)
  return match and match.group(1)


def _assert_trees_close(actual: dict, expected: dict, what: str, loosen: float = 1.0) -> None:
  """Float leaves within rtol 1e-5 and atol 1e-6 (times `loosen`); integer leaves equal.

  Adam's moments are ~1e-5 (mu) and ~1e-10 (nu), so their atol is 1e-5 of the largest entry
  of the same moment of the same network: an atol of 1e-6 would accept gradients 8 times too
  large. (Per-leaf scales would not do: the biases in front of batch norm have zero gradient
  up to rounding, so their moments are rounding noise.)
  """
  assert actual.keys() == expected.keys()
  assert any("batch_stats" in k for k in expected) and any(_moment(k) for k in expected)
  scale = {}
  for name, want in expected.items():
    if _moment(name):
      scale[_moment(name)] = max(scale.get(_moment(name), 0.0), float(np.max(np.abs(want))))
  for name, want in expected.items():
    got = actual[name]
    assert got.shape == want.shape and got.dtype == want.dtype, name
    if np.issubdtype(want.dtype, np.floating):
      atol = 1e-5 * scale[_moment(name)] if _moment(name) else 1e-6
      np.testing.assert_allclose(got, want, rtol=1e-5 * loosen, atol=atol * loosen,
                                 err_msg=f"{what}: {name}")
    else:
      np.testing.assert_array_equal(got, want, err_msg=f"{what}: {name}")


# The 8-device checks: on 2 cores shared with the other test worker, XLA's CPU collectives can
# miss their 40-second rendezvous deadline, so they run on demand (`pytest -m slow`).
@pytest.mark.slow
@pytest.mark.parametrize("step", [1, NUM_STEPS])
@pytest.mark.parametrize("mode", STEP_MODES)
def test_eight_devices_match_one_device(eight_devices, mode, step):
  """Params, batch-norm statistics, optimiser state and metrics after 1 and 3 steps."""
  one = _step_results(eight_devices, "none", step)
  many = _step_results(eight_devices, mode, step)
  spread = float(many.pop("replica_spread"))
  one.pop("replica_spread")
  assert int(many["['state'].step"]) == step
  _assert_trees_close(many, one, f"{mode} vs none after {step} steps")
  # Every device holds the same state (batch norm statistics are averaged, not per device).
  assert spread == 0.0, f"{mode}: the devices' copies differ by {spread}"


@pytest.mark.slow
def test_steps_change_the_state(eight_devices):
  """The comparison above is not vacuous: each step moves the parameters and the statistics."""
  first = _step_results(eight_devices, "none", 1)
  last = _step_results(eight_devices, "none", NUM_STEPS)
  for name in first:
    if "params" in name or "batch_stats" in name:
      assert not np.array_equal(first[name], last[name]), name


@pytest.mark.slow
def test_auto_mode_and_batch_size_check(eight_devices):
  info = json.loads((eight_devices / "info.json").read_text())
  assert info["num_devices"] == NUM_DEVICES
  assert info["auto_many"] == "pmap"
  assert info["auto_one"] == "none"
  assert info["per_device_batch"] == GLOBAL_BATCH // NUM_DEVICES
  message = info["batch_error"]
  assert "batch size 100" in message and "8 devices" in message, message


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


def _assert_loops_match(out_dir: Path, mode: str) -> None:
  from genjax.train import restore_for_eval
  from genjax.writers import read_metrics

  ref, run = out_dir / "loop" / "none", out_dir / "loop" / mode
  assert json.loads((run / "config.json").read_text())["parallel"] == mode
  ref_metrics, metrics = read_metrics(ref / "metrics.jsonl"), read_metrics(run / "metrics.jsonl")
  assert [r["step"] for r in metrics] == [r["step"] for r in ref_metrics] == [2, 4, 6]
  for got, want in zip(metrics, ref_metrics, strict=True):
    assert got.keys() == want.keys()
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, err_msg=f"step {want['step']} {k}")
  ref_results = json.loads((ref / "results.json").read_text())
  results = json.loads((run / "results.json").read_text())
  assert results["step"] == ref_results["step"] == 6
  for k, v in ref_results["test"].items():
    np.testing.assert_allclose(results["test"][k], v, rtol=1e-5, err_msg=k)

  import jax
  *_, ref_state = restore_for_eval(str(ref))
  *_, state = restore_for_eval(str(run))
  # Six GAN steps amplify rounding: Adam moves a parameter by about the learning rate whatever
  # the size of its gradient, so one whose gradient is near zero can move the other way, and
  # the networks' later gradients follow. The metrics above agree to 1e-5 all the same.
  _assert_trees_close(_leaves(jax.device_get(state)), _leaves(jax.device_get(ref_state)),
                      f"loop {mode} vs none", loosen=100)
  assert int(state.step) == 6


@pytest.mark.slow
def test_loop_pmap_on_eight_devices_matches_one_device(eight_devices):
  """train_and_evaluate: final params, metrics.jsonl and results.json agree."""
  _assert_loops_match(eight_devices, "pmap")


@pytest.mark.slow
def test_loop_shard_map_on_eight_devices_matches_one_device(tmp_path, subprocess_env):
  out_dir = _run_worker(tmp_path, ["none", "shard_map"], subprocess_env(NUM_DEVICES))
  _assert_loops_match(out_dir, "shard_map")


if __name__ == "__main__":
  worker(Path(sys.argv[1]), sys.argv[2].split(","))
