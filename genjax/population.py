"""Populations: S independent runs of one config trained as one compiled program.

`config.population = S > 1` trains members 0..S-1; member i is the run of the same config with
`seed = config.seed + i` (its initial state, training and data keys, and its labelled subset
where `data.label_seed` is left unset). The loop stacks the members' states on a leading axis
and `jax.vmap`s its step over states, keys and the per-member input arguments (each input
names them in `member_axes`); the training split is held once. Member i equals the run of its
seed on its own: bit for bit on CPU where XLA sums the batched program in the same order,
otherwise to float32 rounding (see `member_step`; tests/test_population.py).

Workdir: one checkpoint holds every member; `members/<i>/` holds member i's metrics.jsonl and
results.json; the workdir's metrics.jsonl logs the members' mean, and its results.json holds
the mean of every number over the members with their sample standard deviations under
`population.sd` (see `aggregate`).
"""

import copy
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


def size(config: ml_collections.ConfigDict) -> int:
  """The number of members a config trains (1: an ordinary run)."""
  s = config.get("population", 1)
  if s < 1:
    raise ValueError(f"config.population must be >= 1, got {s}")
  return s


def member_config(config: ml_collections.ConfigDict, i: int) -> ml_collections.ConfigDict:
  """The config of member i run on its own: seed + i, population 1."""
  c = copy.deepcopy(config)
  with c.unlocked():
    c.seed = config.seed + i
    if "population" in c:
      c.population = 1
  return c


def member_dir(workdir: str, i: int) -> str:
  return os.path.join(workdir, "members", str(i))


def stack(trees: list):
  """Member trees stacked on a new leading axis. The trees' leaves must match; their static
  fields (modules, optimisers) are member 0's, which every member's equal in value."""
  treedef = jax.tree.structure(trees[0])
  leaves = [jax.tree.leaves(t) for t in trees]
  return jax.tree.unflatten(treedef, [jnp.stack(xs) for xs in zip(*leaves)])


def member(tree, i: int):
  """Member i of a stacked tree."""
  return jax.tree.map(lambda x: x[i], tree)


def member_step(loop_step, member_axes: tuple):
  """`loop_step(state, acc, train_key, data_key, *input_args, axis_name)` over stacked members
  (jax.vmap): states, accumulators and keys have a leading member axis, the input arguments
  where `member_axes` says 0 (None: shared).

  On CPU a member's numbers equal its own run's bit for bit where the batched program sums in
  the order the single one does (the MLP VAE, softmax regression: tested), and otherwise to
  float32 rounding: XLA reduces a batch-norm layer's [members, batch, features] gradients in
  another order than [batch, features] ones (the MLP GAN's first step differs by 5e-9).
  """
  def step(*args, axis_name=None):
    def one(*a):
      return loop_step(*a, axis_name=axis_name)
    return jax.vmap(one, in_axes=(0, 0, 0, 0, *member_axes))(*args)

  return step


class PopulationInput:
  """The members' training inputs as one: shared arguments from member 0's input (the split's
  arrays, held once), per-member ones stacked (epoch orders, labelled subsets)."""

  def __init__(self, inputs: list):
    self.inputs = inputs
    base = inputs[0]
    self.kinds = base.kinds
    self.member_axes = base.member_axes
    self._stacked, self._last = None, None

  def __getattr__(self, name):  # steps_per_epoch, element_spec, postprocess, draw
    return getattr(self.inputs[0], name)

  def args(self, step: int) -> tuple:
    per_member = [inp.args(step) for inp in self.inputs]
    ids = [id(a) for args in per_member for a in args]
    if ids != self._last:  # new epoch orders: stack them once per epoch
      self._last = ids
      self._stacked = tuple(
          per_member[0][j] if axis is None else jnp.stack([args[j] for args in per_member])
          for j, axis in enumerate(self.member_axes))
    return self._stacked


def _numbers(tree) -> dict:
  """{path: number} of the numeric leaves of a results dict (booleans left out)."""
  out = {}

  def walk(prefix, x):
    if isinstance(x, dict):
      for k, v in x.items():
        walk((*prefix, k), v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
      out[prefix] = float(x)

  walk((), tree)
  return out


def _set(tree: dict, path: tuple, value) -> None:
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


def aggregate(results: list[dict], seeds: list[int]) -> dict:
  """The population's results: member 0's layout with every number replaced by the members'
  mean, plus `population`: {size, seeds, sd (the same layout: sample standard deviations,
  ddof 1; 0 for one member), min, max}. Numbers some member lacks are left out."""
  per_member = [_numbers(r) for r in results]
  common = [p for p in per_member[0] if all(p in m for m in per_member)]
  out = copy.deepcopy(results[0])
  sd, lo, hi = {}, {}, {}
  for path in common:
    values = np.array([m[path] for m in per_member])
    if path in (("step",),):
      continue
    finite = np.all(np.isfinite(values))
    _set(out, path, float(values.mean()) if finite else math.nan)
    _set(sd, path, float(values.std(ddof=1)) if len(values) > 1 and finite else 0.0)
    _set(lo, path, float(values.min()))
    _set(hi, path, float(values.max()))
  out["population"] = {"size": len(results), "seeds": list(seeds), "sd": sd, "min": lo,
                       "max": hi}
  return out
