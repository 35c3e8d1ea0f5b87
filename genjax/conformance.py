"""Data-parallel conformance: a step family's training on N devices equals it on one.

Every step family must give the same training whatever the device layout: the loop's compiled
step (genjax.train.make_loop_step: the batch drawn on the device, the family's train_step, the
metric sums) run for a few steps with `parallel=none` on one device, and with `pmap` and
`shard_map` on all of them, must leave the same state. What this catches: a gradient or a
batch-norm statistic averaged per device instead of over the global batch, random draws that
depend on the device layout, a batch split the wrong way, a metric summed where it should be
averaged.

  python -m genjax.conformance --config=experiments/configs/my_model.py:smoke [--devices=8]

runs the check on `--devices` simulated CPU devices (it sets XLA_FLAGS itself) and prints one
line per mode. tests/test_conformance.py runs it for every step family the project ships.

What "the same" means in float32. The devices' partial sums are added in another order, so
results agree to rounding, not bit for bit; the tolerances follow from that:
- metrics (the sums over the steps) and integer leaves: rtol 1e-5 (integers exactly);
- optimiser moments and momenta (`mu`, `nu`, `trace`: linear in the gradients, ~1e-3 to 1e-10
  in size): 1e-5 of the largest entry of the same moment of the same network, so a gradient
  8 times too large or too small fails;
- batch statistics and parameters: rtol 1e-5 and 1e-5 of the leaf's network's largest entry,
  except parameters that Adam moved on a rounding-level gradient. Adam divides the first moment
  by the root of the second, so a coordinate whose true gradient is zero (a bias in front of
  batch norm) moves by up to the learning rate either way on rounding noise alone. Those
  coordinates, the ones whose first moment is below 1e-4 of its network's largest, are
  compared through their moments only, and batch statistics taken after such a move (a GAN's
  generator step runs the just-updated discriminator) may differ by as much as they moved.
  A noise-moved coordinate then changes every later gradient a little, and Adam amplifies that
  again, so after the last step the parameters, moments and batch statistics of a network
  that had such coordinates are judged by its metrics (summed over the steps: rtol 1e-4, the
  effect on the loss of moving coordinates whose gradient is near zero) instead.
The state is compared after the first step and after the last.
"""

import dataclasses
import re
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

MODES = ("pmap", "shard_map")
MOMENT = re.compile(r"^(.*?)\.opt_state\b.*?\.(mu|nu|trace)(\[.*)?$")
PARAM = re.compile(r"^(.*?)\.params(\[.*|\..*)?$")
METRICS_PREFIX = "metrics/"


def leaves(tree) -> dict[str, np.ndarray]:
  """{keystr path: array} of a pytree, on the host."""
  flat, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))
  return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def run(config: ml_collections.ConfigDict, mode: str, num_steps: int = 2,
        devices: Sequence[jax.Device] | None = None, num_examples: int = 512,
        train=None) -> dict[str, np.ndarray]:
  """`num_steps` loop steps of `config` under `mode` on `devices` (all local ones by default).

  Returns, after the first and after the last step (keys prefixed "1/" and "<num_steps>/"),
  the leaves of the state, the metrics summed over the steps so far ("metrics/<name>") and
  "replica_spread": the largest difference between the devices' copies of the state (0 when
  every device holds the same state, as it must). The training split is
  cut to its first `num_examples` (less to copy to every device); pass `train` to reuse one.
  """
  from genjax import train as train_lib
  from genjax.data import pipeline
  from genjax.parallel import DataParallel

  family = train_lib.load_family(config.family)
  dp = DataParallel(mode, devices=devices)
  keys = train_lib.RunKeys.from_seed(config.seed)
  if train is None:
    train = cut(train_lib.load_split(config, "train"), num_examples)
  source = pipeline.make_input(config, dp, keys.data, train)
  state = family.create_state(keys.init, config)
  if hasattr(family, "init_from_data"):
    state = family.init_from_data(state, train, keys.init)
  loop_step = dp.wrap(train_lib.make_loop_step(family, source), "rrrr" + source.kinds, "rr",
                      donate_argnums=())
  batch_spec = {k: jax.ShapeDtypeStruct((2, *v.shape), v.dtype)
                for k, v in source.element_spec.items()}
  metric_shapes = jax.eval_shape(lambda s, b, k: family.train_step(s, b, k)[1], state,
                                 batch_spec, keys.train)
  state_d = dp.replicate(jax.tree.map(jnp.copy, state))
  acc = dp.replicate(train_lib.zero_accumulator(metric_shapes))
  train_key, data_key = dp.replicate((keys.train, keys.data))
  out = {}
  for step in range(num_steps):
    state_d, acc = loop_step(state_d, acc, train_key, data_key, *source.args(step))
    if step + 1 in (1, num_steps):
      summed = jax.device_get(dp.unreplicate(acc))
      after = {**leaves(dp.unreplicate(state_d)),
               **{METRICS_PREFIX + k: np.asarray(v) for k, v in summed["sum"].items()},
               "first_bad_step": np.asarray(summed["first_bad_step"]),
               "replica_spread": np.float64(replica_spread(state_d))}
      out.update({f"{step + 1}/{k}": v for k, v in after.items()})
  return out


def cut(split, num_examples: int):
  """The first `num_examples` examples of an ArraySplit."""
  arrays = {k: v[:num_examples] for k, v in split.arrays.items()}
  return dataclasses.replace(split, arrays=arrays)


def replica_spread(tree) -> float:
  """The largest difference between the devices' copies of a replicated tree."""
  spread = 0.0
  for x in jax.tree.leaves(tree):
    if not hasattr(x, "addressable_shards") or jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      continue
    copies = [np.asarray(s.data, np.float64) for s in x.addressable_shards]
    spread = max([spread, *(float(np.max(np.abs(c - copies[0]))) for c in copies[1:])])
  return spread


def _parse(name: str) -> tuple[int, str, str, str]:
  """(step, network, kind, path within the network) of a `run` result key: kind is "metric",
  "info" (replica_spread, first_bad_step), "mu" | "nu" | "trace" (optimiser moments),
  "params", "batch_stats" or "state" (anything else: step counters, chains...)."""
  step, _, name = name.partition("/")
  if name.startswith(METRICS_PREFIX):
    return int(step), "", "metric", name
  if name in ("replica_spread", "first_bad_step"):
    return int(step), "", "info", name
  if match := MOMENT.match(name):
    return int(step), match.group(1).lstrip("."), match.group(2), match.group(3) or ""
  if match := PARAM.match(name):
    return int(step), match.group(1).lstrip("."), "params", match.group(2) or ""
  parts = name.lstrip(".").split(".", 1)
  network = parts[0] if len(parts) > 1 else ""
  kind = "batch_stats" if "batch_stats" in name else "state"
  return int(step), network, kind, parts[-1]


def _noise_masks(want: dict[str, np.ndarray], parsed: dict) -> dict[str, np.ndarray]:
  """{parameter key: True where Adam moved it on a rounding-level gradient} (the parameters
  with a first moment `mu`: where |mu| < 1e-4 of the network's largest |mu|)."""
  mu = {(step, net, path): want[k] for k, (step, net, kind, path) in parsed.items()
        if kind == "mu"}
  largest: dict = {}
  for (step, net, _), x in mu.items():
    largest[step, net] = max(largest.get((step, net), 0.0), float(np.max(np.abs(x), initial=0)))
  masks = {}
  for k, (step, net, kind, path) in parsed.items():
    if kind == "params" and (step, net, path) in mu:
      masks[k] = np.abs(mu[step, net, path]) < 1e-4 * largest[step, net]
  return masks


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> list[str]:
  """What differs between two `run` results beyond float32 rounding (see the module's
  docstring); an empty list when they conform."""
  if got.keys() != want.keys():
    return [f"different leaves: {sorted(got.keys() ^ want.keys())}"]
  parsed = {k: _parse(k) for k in want}
  last = max(step for step, *_ in parsed.values())
  masks = _noise_masks(want, parsed)
  # Per (step, network): the largest |entry| of each kind, and how far the parameters that
  # Adam moved on noise ended up apart (batch statistics taken after such a move carry it).
  scale: dict = {}
  noise_moved: dict = {}
  for k, (step, net, kind, _) in parsed.items():
    if np.issubdtype(want[k].dtype, np.floating) and want[k].size:
      scale[step, net, kind] = max(scale.get((step, net, kind), 0.0),
                                   float(np.max(np.abs(want[k]))))
    if k in masks and masks[k].any():
      moved = float(np.max(np.abs(got[k] - want[k])[masks[k]]))
      noise_moved[step, net] = max(noise_moved.get((step, net), 0.0), moved)

  problems = []
  for k, w in want.items():
    step, net, kind, _ = parsed[k]
    g = got[k]
    if kind == "info" and k.endswith("replica_spread"):
      if float(g) != 0.0:
        problems.append(f"after step {step} the devices' copies of the state differ by {float(g)}")
      continue
    if g.shape != w.shape or g.dtype != w.dtype:
      problems.append(f"{k}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}")
      continue
    if not np.issubdtype(w.dtype, np.floating):
      if not np.array_equal(g, w):
        problems.append(f"{k}: integers differ")
      continue
    if step == last > 1 and kind in ("params", "mu", "nu", "trace", "batch_stats") and \
        (1, net) in noise_moved:
      continue  # Adam amplified rounding in the first step: the metrics judge the later ones
    mask = masks.get(k)
    if kind == "metric":
      rtol, atol = (1e-5 if step == 1 else 1e-4), 1e-6 * max(float(np.max(np.abs(w))), 1.0)
    else:
      rtol, atol = 1e-5, 1e-5 * scale.get((step, net, kind), 0.0)
      if kind == "batch_stats":
        atol += noise_moved.get((step, net), 0.0)
    ok = (np.abs(g - w) <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w))
    if mask is not None:
      ok |= mask
    if not np.all(ok):
      worst = np.unravel_index(np.argmax(np.where(ok, 0, np.abs(g - w))), w.shape)
      problems.append(f"{k}: {int(np.sum(~ok))} of {w.size} entries differ (at {worst}: "
                      f"{g[worst]!r} vs {w[worst]!r}, tolerance {atol + rtol * abs(w[worst]):.3g})")
  return problems


def check(config: ml_collections.ConfigDict, modes: Sequence[str] = MODES, num_steps: int = 2,
          num_examples: int = 512) -> dict[str, list[str]]:
  """{mode: problems} for each multi-device mode against parallel=none on one device."""
  from genjax import train as train_lib
  train = cut(train_lib.load_split(config, "train"), num_examples)
  reference = run(config, "none", num_steps, jax.local_devices()[:1], train=train)
  return {mode: compare(run(config, mode, num_steps, train=train), reference) for mode in modes}


def _main(argv: list[str]) -> int:
  import argparse
  import os
  parser = argparse.ArgumentParser(prog="python -m genjax.conformance", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a config file, `path.py[:arg]`")
  parser.add_argument("--devices", type=int, default=8, help="simulated CPU devices")
  parser.add_argument("--steps", type=int, default=2)
  args = parser.parse_args(argv)
  flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", os.environ.get("XLA_FLAGS", ""))
  os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={args.devices}"
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from genjax import config as gconfig
  config = gconfig.load(args.config)
  failed = False
  for mode, problems in check(config, num_steps=args.steps).items():
    print(f"{mode}: " + ("conforms" if not problems else "; ".join(problems)))
    failed |= bool(problems)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(_main(sys.argv[1:]))
