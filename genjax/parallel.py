"""The only module that knows about devices: one step function, run on one or many devices.

A step is written once, as `fn(*args, axis_name=None)`. When `axis_name` is given
it averages gradients, metrics and batch statistics with `jax.lax.pmean` over
that axis. `DataParallel` runs it

- `none`: on one device with `jax.jit` (the train state donated);
- `pmap`: with `jax.pmap` over the devices (the documented multi-device path on TPU and
  multi-GPU hosts): replicated arguments carry a leading device axis. In a multi-process run
  (genjax.distributed) it spans every process's devices: each process places and reads back
  the slices of its own devices;
- `shard_map`: with `jax.jit(jax.shard_map(...))` over a one-axis mesh, the form
  current JAX recommends: replicated arguments are global arrays.

Each argument is either replicated ("r": states, keys, in-memory datasets) or
sharded along its leading (batch) axis ("s").
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"
MODES = ("auto", "none", "pmap", "shard_map")


def resolve_mode(mode: str, num_devices: int) -> str:
  """`auto` is pmap when there is more than one device, plain jit otherwise."""
  if mode not in MODES:
    raise ValueError(f"unknown parallel mode {mode!r}; expected one of {MODES}")
  if mode == "auto":
    return "pmap" if num_devices > 1 else "none"
  return mode


class DataParallel:
  """Data parallelism over this process's devices (every process's, in a multi-process run)
  with one of the three modes."""

  def __init__(self, mode: str = "auto", devices: Sequence[jax.Device] | None = None,
               axis_name: str = AXIS):
    processes = jax.process_count() if devices is None else 1
    self.devices = list((jax.devices() if processes > 1 else jax.local_devices())
                        if devices is None else devices)
    self.mode = resolve_mode(mode, len(self.devices))
    if processes > 1 and self.mode != "pmap":
      raise ValueError(f"a run of {processes} processes trains with parallel=pmap (or auto), "
                       f"not {mode!r}")
    if self.mode == "none":
      self.devices = self.devices[:1]
    self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
    self.axis_name = axis_name
    self.mesh = Mesh(self.devices, (axis_name,)) if self.mode == "shard_map" else None

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  def check_batch_size(self, global_batch: int) -> int:
    """The per-device batch; a clear error if `global_batch` does not split evenly."""
    if global_batch % self.num_devices:
      raise ValueError(f"batch size {global_batch} is not divisible by the {self.num_devices} "
                       f"devices of parallel mode {self.mode!r}; choose a multiple of "
                       f"{self.num_devices} or set --config.parallel=none")
    return global_batch // self.num_devices

  # Placement -------------------------------------------------------------------------------

  def _stacked(self):
    # pmap's per-device arrays: a leading device axis split over the devices. (This is what
    # jax.device_put_replicated/_sharded did; JAX 0.8.1 deprecated them and later removed them.)
    # The mesh axis carries the pmap's axis name, as the arrays pmap returns do: with any other
    # name the step's own outputs miss the compile cache and the step compiles a second time.
    # In a multi-process run these are host-local arrays over this process's devices, as
    # pmap takes and returns them.
    return NamedSharding(Mesh(self.local_devices, (self.axis_name,)), P(self.axis_name))

  def replicate(self, tree):
    """Put a copy of `tree` on every device."""
    if self.mode == "pmap":
      sharding, n = self._stacked(), len(self.local_devices)

      def put(x):
        x = x if isinstance(x, jax.Array) else np.asarray(x)
        shards = [jax.device_put(x[None], d) for d in self.local_devices]
        return jax.make_array_from_single_device_arrays((n, *x.shape), sharding, shards)

      return jax.tree.map(put, tree)
    if self.mode == "shard_map":
      return jax.device_put(tree, NamedSharding(self.mesh, P()))
    return jax.device_put(tree, self.devices[0])

  def shard(self, tree):
    """Split `tree`'s leading (batch) axis across the devices (this process's part of the
    global batch across this process's devices)."""
    if self.mode == "pmap":
      n = len(self.local_devices)
      split = jax.tree.map(lambda x: x.reshape((n, x.shape[0] // n, *x.shape[1:])), tree)
      return jax.device_put(split, self._stacked())
    if self.mode == "shard_map":
      return jax.device_put(tree, NamedSharding(self.mesh, P(self.axis_name)))
    return jax.device_put(tree, self.devices[0])

  def unreplicate(self, tree):
    """One copy of a replicated tree (this process's first device's under pmap)."""
    if self.mode == "pmap":
      # The first local device's slice as it is (no multi-device program: in a multi-process
      # run one would need the other processes).
      return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)
    return tree

  # Compilation -----------------------------------------------------------------------------

  def wrap(self, fn: Callable, in_kinds: str, out_kinds: str,
           donate_argnums: tuple[int, ...] = (0,)) -> Callable:
    """Compile `fn(*args, axis_name=...)` for this mode.

    Args:
      fn: the step, taking positional arguments and an `axis_name` keyword.
      in_kinds: one letter per positional argument, "r" (replicated) or "s" (sharded).
      out_kinds: likewise for the elements of the returned tuple ("r" or "s"; a single
        letter if `fn` returns a single value).
      donate_argnums: arguments whose buffers are reused for the outputs.
    """
    for kinds in (in_kinds, out_kinds):
      if set(kinds) - {"r", "s"}:
        raise ValueError(f"argument kinds must be 'r' or 's', got {kinds!r}")
    if self.mode == "none":
      return jax.jit(functools.partial(fn, axis_name=None), donate_argnums=donate_argnums)
    step = functools.partial(fn, axis_name=self.axis_name)
    if self.mode == "pmap":
      return jax.pmap(step, axis_name=self.axis_name, devices=self.devices,
                      donate_argnums=donate_argnums)
    spec = {"r": P(), "s": P(self.axis_name)}
    out_specs = spec[out_kinds] if len(out_kinds) == 1 else tuple(spec[k] for k in out_kinds)
    # check_vma=False gives pmap's semantics, which the steps are written for: with it on,
    # jax.grad psums the gradient of replicated parameters over the devices by itself, so the
    # step's explicit pmean would then leave it N times too large.
    mapped = jax.shard_map(step, mesh=self.mesh, in_specs=tuple(spec[k] for k in in_kinds),
                           out_specs=out_specs, check_vma=False)
    return jax.jit(mapped, donate_argnums=donate_argnums)


def pmean_if(tree, axis_name: str | None):
  """`tree` averaged over the devices of `axis_name` (jax.lax.pmean); `tree` itself without
  data parallelism (axis_name None)."""
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def device_index(axis_name: str | None) -> jax.Array:
  """This device's index along `axis_name` (0 without data parallelism)."""
  return jnp.zeros((), jnp.int32) if axis_name is None else jax.lax.axis_index(axis_name)
