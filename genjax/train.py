"""The generic training loop: config -> data -> state -> jitted steps -> logs -> checkpoints.

A model family is a module exposing

  create_state(key, config) -> state                  (a pytree with an integer `step`)
  train_step(state, batch, key, axis_name=None) -> (state, metrics)
  eval_step(state, batch, key, axis_name=None) -> metrics
  sample(state, key, num) -> images in [0, 1]           (optional: generative families)

and this loop calls only those. `config.family` names the module (`gan` means
`genjax.families.gan`; a dotted path names any importable module).
"""

import dataclasses
import os
import time
from types import ModuleType

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import family as family_lib
from genjax import writers
from genjax.checkpoint import Checkpointer
from genjax.data import images as image_data
from genjax.data import pipeline
from genjax.parallel import DataParallel


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or infinite metric; the run stopped without checkpointing it."""


def load_family(name: str) -> ModuleType:
  """The module of a model family (`gan` -> genjax.families.gan); see genjax.family."""
  return family_lib.load(name)


@dataclasses.dataclass(frozen=True)
class RunKeys:
  """The run's base keys, all split from config.seed."""

  init: jax.Array
  train: jax.Array
  data: jax.Array
  eval: jax.Array

  @classmethod
  def from_seed(cls, seed: int) -> "RunKeys":
    return cls(*jax.random.split(jax.random.key(seed), 4))


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Clear errors for inconsistent settings, before any data is read or anything compiles."""
  t = config.train
  if t.num_steps <= 0 and t.num_epochs <= 0:
    raise ValueError("set train.num_steps or train.num_epochs to a positive number")
  for name in ("log_every", "checkpoint_every", "keep_checkpoints"):
    if t[name] <= 0:
      raise ValueError(f"train.{name} must be positive, got {t[name]}")
  if t.checkpoint_every % t.log_every:
    # Logged values are means since the previous log step; checkpoints on log
    # boundaries make a resumed run log exactly what an uninterrupted one does.
    raise ValueError(f"train.checkpoint_every ({t.checkpoint_every}) must be a multiple of "
                     f"train.log_every ({t.log_every})")
  if config.data.preprocess not in image_data.PREPROCESS_MODES:
    raise ValueError(f"unknown data.preprocess {config.data.preprocess!r}; "
                     f"expected one of {image_data.PREPROCESS_MODES}")
  if config.data.batch_size <= 0:
    raise ValueError(f"data.batch_size must be positive, got {config.data.batch_size}")


def total_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  t = config.train
  return t.num_steps if t.num_steps > 0 else t.num_epochs * steps_per_epoch


def _zero_accumulator(metric_shapes: dict) -> dict:
  return {"sum": {k: jnp.zeros((), jnp.float32) for k in metric_shapes},
          "count": jnp.zeros((), jnp.int32),
          "first_bad_step": jnp.full((), np.iinfo(np.int32).max, jnp.int32)}


def make_loop_step(family: ModuleType, source):
  """Draw this step's batch on the device, take one train step, accumulate its metrics.

  `source` is a training input (genjax.data.pipeline): the step's trailing
  arguments are its `args(step)`. One dispatch per step: the input pipeline, the
  step and the bookkeeping compile into a single program.
  """

  def loop_step(state, acc, train_key, data_key, *source_args, axis_name=None):
    step = state.step
    batch = source.draw(step, data_key, *source_args, axis_name=axis_name)
    state, metrics = family.train_step(state, batch, train_key, axis_name=axis_name)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    acc = {"sum": {k: acc["sum"][k] + metrics[k].astype(jnp.float32) for k in acc["sum"]},
           "count": acc["count"] + 1,
           "first_bad_step": jnp.where(finite, acc["first_bad_step"],
                                       jnp.minimum(acc["first_bad_step"], step + 1))}
    return state, acc

  return loop_step


def evaluate(family: ModuleType, state, arrays: image_data.ImageArrays, key: jax.Array,
             preprocess_mode: str, batch_size: int = 500) -> dict:
  """Mean of `family.eval_step` over a whole split, weighted by batch size (one device)."""
  eval_step = jax.jit(family.eval_step)
  totals, n = {}, 0
  for i, start in enumerate(range(0, len(arrays), batch_size)):
    k_data, k_eval = jax.random.split(jax.random.fold_in(key, i))
    x = arrays.images[start:start + batch_size]
    batch = {"image": image_data.preprocess(jnp.asarray(x), preprocess_mode, k_data),
             "label": jnp.asarray(arrays.labels[start:start + batch_size])}
    metrics = jax.device_get(eval_step(state, batch, k_eval))
    for k, v in metrics.items():
      totals[k] = totals.get(k, 0.0) + float(v) * len(x)
    n += len(x)
  return {k: v / n for k, v in totals.items()}


def write_samples(family: ModuleType, state, key: jax.Array, writer: writers.MetricWriter,
                  step: int, config: ml_collections.ConfigDict) -> None:
  """A grid drawn from the same evaluation noise at every step, so grids compare."""
  if not hasattr(family, "sample"):
    return
  side = config.train.sample_grid
  x = jax.jit(family.sample, static_argnums=2)(state, key, side * side)
  x = image_data.postprocess(x, config.data.preprocess)
  writer.write_grid(step, "samples", np.asarray(jax.device_get(x)), ncol=side)


def load_split(config: ml_collections.ConfigDict, split: str) -> image_data.ImageArrays:
  d = config.data
  return image_data.load_arrays(d.name, split, validation_size=d.validation_size,
                                image_shape=tuple(d.image_shape), data_dir=d.get("data_dir"),
                                download=d.get("download"), idx_dir=d.get("idx_dir"))


def _progress(enabled: bool, initial: int, total: int):
  from tqdm import tqdm
  return tqdm(initial=initial, total=total, unit="step", dynamic_ncols=True, disable=not enabled,
              mininterval=1.0, smoothing=0.1)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Train `config` in `workdir` (resuming from its latest checkpoint) and evaluate.

  Returns the final evaluation results, also written to `workdir/results.json`.
  Raises NonFiniteLossError if a metric becomes NaN or infinite.
  """
  validate_config(config)
  family = load_family(config.family)
  dp = DataParallel(config.parallel)
  pipeline.process_batch_size(config.data.batch_size, dp)  # fail before reading any data
  is_writer = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if is_writer:
    writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())

  keys = RunKeys.from_seed(config.seed)
  train_arrays = load_split(config, "train") if config.data.get("in_memory", True) else None
  source = pipeline.make_input(config, dp, keys.data, train_arrays)
  num_steps = total_steps(config, source.steps_per_epoch)

  state = family.create_state(keys.init, config)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints,
                      cleanup=True)
  writer = writers.MetricWriter(workdir, enabled=is_writer, tensorboard=config.train.tensorboard)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(state)
  step = int(state.step)
  # Records logged after the restored checkpoint (after step 0 when there is none: a run that
  # died before its first checkpoint) are recomputed, so drop them rather than log them twice.
  writer.truncate_after(step)

  loop_step = dp.wrap(make_loop_step(family, source), "rrrr" + source.kinds, "rr",
                      donate_argnums=(0, 1))
  state_d = dp.replicate(state)
  train_key_d, data_key_d = dp.replicate((keys.train, keys.data))
  metric_names = jax.eval_shape(lambda s, b, k: family.train_step(s, b, k)[1], state,
                                {"image": jax.ShapeDtypeStruct((2, *config.data.image_shape),
                                                               jnp.float32),
                                 "label": jax.ShapeDtypeStruct((2,), jnp.int32)},
                                keys.train)
  acc = dp.replicate(_zero_accumulator(metric_names))

  t = config.train
  progress = _progress(is_writer and t.progress, step, num_steps)
  window_start, window_steps = time.perf_counter(), 0
  try:
    while step < num_steps:
      state_d, acc = loop_step(state_d, acc, train_key_d, data_key_d, *source.args(step))
      step += 1
      window_steps += 1
      progress.update(1)
      last = step == num_steps
      if step % t.log_every == 0 or last:
        summary = jax.device_get(dp.unreplicate(acc))
        if summary["first_bad_step"] != np.iinfo(np.int32).max:
          raise NonFiniteLossError(
              f"non-finite loss at step {int(summary['first_bad_step'])}: training stopped; "
              f"the last good checkpoint is step {ckpt.latest_step()} in {ckpt.directory}")
        means = {k: v / summary["count"] for k, v in summary["sum"].items()}
        writer.write_scalars(step, means)
        elapsed = time.perf_counter() - window_start
        writer.write_scalars(step, {"steps_per_sec": window_steps / elapsed}, jsonl=False)
        progress.set_postfix({k: f"{v:.4f}" for k, v in means.items()}, refresh=False)
        window_start, window_steps = time.perf_counter(), 0
        acc = dp.replicate(_zero_accumulator(metric_names))
      if step % t.sample_every == 0 and not last:  # final_evaluation draws the last grid
        write_samples(family, dp.unreplicate(state_d), keys.eval, writer, step, config)
      if step % t.checkpoint_every == 0 or last:
        ckpt.save(step, jax.device_get(dp.unreplicate(state_d)))
    state = dp.unreplicate(state_d)
  finally:
    progress.close()
    writer.flush()

  results = final_evaluation(family, state, config, keys.eval, writer, workdir)
  writer.close()
  ckpt.close()
  return results


def final_evaluation(family: ModuleType, state, config: ml_collections.ConfigDict,
                     key: jax.Array, writer: writers.MetricWriter, workdir: str) -> dict:
  """Evaluate on the test split, write results.json and a sample grid."""
  step = int(state.step)
  test = load_split(config, "test")
  results = {"step": step, "test": evaluate(family, state, test, jax.random.fold_in(key, 1),
                                            config.data.preprocess)}
  write_samples(family, state, key, writer, step, config)
  if writer.enabled:
    writers.write_json(os.path.join(workdir, "results.json"), results)
  return results


def restore_for_eval(workdir: str, step: int | None = None):
  """(family, config, state) from a workdir's config.json and its latest checkpoint."""
  import json
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  family = load_family(config.family)
  state = family.create_state(RunKeys.from_seed(config.seed).init, config)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
  state = ckpt.restore(state, step)
  ckpt.close()
  return family, config, state
