"""The generic loop: config -> data -> state -> train (steps, or one fit) -> checkpoints -> evals.

Families follow the contract of genjax.family: a *step family* (create_state, train_step,
eval_step) is trained by `train_and_evaluate`'s step loop; a *fit family* (create_state, fit)
is fitted once over the training split by `fit_and_evaluate`. Both then run the config's
evaluators (genjax.evals) and leave the same workdir: config.json, checkpoints/,
metrics.jsonl (where training iterates), results.json. `config.family` names the module
(`gan` means genjax.families.gan; a dotted path names any importable module). The loop knows
nothing of images: the dataset split (genjax.data.splits) describes its batches.
"""

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import checkpoint as checkpoint_lib
from genjax import evals, population, preemption, writers
from genjax import family as family_lib
from genjax import workdir as workdir_lib
from genjax.checkpoint import Checkpointer
from genjax.data import labelled, pipeline
from genjax.data import splits as splits_lib
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
  if t.get("eval_every", 0) < 0:
    raise ValueError(f"train.eval_every must be >= 0, got {t.eval_every}")
  if config.data.batch_size <= 0:
    raise ValueError(f"data.batch_size must be positive, got {config.data.batch_size}")
  k = t.get("steps_per_dispatch", 1)
  if k <= 0:
    raise ValueError(f"train.steps_per_dispatch must be positive, got {k}")
  if k > 1 and not config.data.get("in_memory", True):
    raise ValueError("train.steps_per_dispatch > 1 needs the training split in memory "
                     "(data.in_memory): a streamed input hands over one batch per step")


def total_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  t = config.train
  return t.num_steps if t.num_steps > 0 else t.num_epochs * steps_per_epoch


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


def make_multi_step(loop_step):
  """`count` loop steps (make_loop_step, or a population's) in one compiled call: a
  `lax.fori_loop` whose trip count is an argument, so one program serves every count. The
  input's arguments must hold for all `count` steps (they change only between epochs)."""

  def multi_step(state, acc, train_key, data_key, count, *source_args, axis_name=None):
    def body(_, carry):
      return loop_step(*carry, train_key, data_key, *source_args, axis_name=axis_name)
    return jax.lax.fori_loop(0, count, body, (state, acc))

  return multi_step


def dispatch_end(step: int, num_steps: int, steps_per_dispatch: int, periods) -> int:
  """The step a dispatch that starts after `step` ends at: `steps_per_dispatch` steps on, or
  sooner at the end of the run or at the next multiple of any of `periods` (the steps where the
  host logs, evaluates, draws samples, or the input's arguments change)."""
  end = min(step + steps_per_dispatch, num_steps)
  for period in periods:
    end = min(end, (step // period + 1) * period)
  return end


def _dispatcher(loop_fn, dp: DataParallel, source_kinds: str, steps_per_dispatch: int):
  """`advance(state, acc, train_key, data_key, count, *source_args)`: `count` loop steps, each
  its own compiled call when `steps_per_dispatch` is 1 (count is then always 1), else all in one
  (make_multi_step)."""
  if steps_per_dispatch == 1:
    step = dp.wrap(loop_fn, "rrrr" + source_kinds, "rr", donate_argnums=(0, 1))
    return lambda state, acc, train_key, data_key, count, *args: step(state, acc, train_key,
                                                                      data_key, *args)
  multi_step = dp.wrap(make_multi_step(loop_fn), "rrrrr" + source_kinds, "rr",
                       donate_argnums=(0, 1))
  counts = {}  # the replicated trip counts, made once each

  def advance(state, acc, train_key, data_key, count, *args):
    if count not in counts:
      counts[count] = dp.replicate(jnp.int32(count))
    return multi_step(state, acc, train_key, data_key, counts[count], *args)

  return advance


def evaluate(family: ModuleType, state, split, key: jax.Array, batch_size: int = 500) -> dict:
  """Mean of `family.eval_step` over a whole split, weighted by batch size (one device)."""
  from genjax.evals.metrics import evaluate_split
  return evaluate_split(family, state, split, key, batch_size)


def load_split(config: ml_collections.ConfigDict, split: str):
  """One split of the config's dataset (genjax.data.splits)."""
  return splits_lib.load(config.data, split)


def eval_split_name(config: ml_collections.ConfigDict) -> str:
  """The split of periodic evaluation: `train.eval_split`, else validation when the config
  holds one out, else test."""
  name = config.train.get("eval_split")
  if name:
    return name
  return "validation" if config.data.get("validation_size", 0) > 0 else "test"


def _progress(enabled: bool, initial: int, total: int):
  from tqdm import tqdm
  return tqdm(initial=initial, total=total, unit="step", dynamic_ncols=True, disable=not enabled,
              mininterval=1.0, smoothing=0.1)


def zero_accumulator(metric_shapes: dict) -> dict:
  """Running sums of a step's metrics since the last log step (see make_loop_step)."""
  return {"sum": {k: jnp.zeros((), jnp.float32) for k in metric_shapes},
          "count": jnp.zeros((), jnp.int32),
          "first_bad_step": jnp.full((), np.iinfo(np.int32).max, jnp.int32)}


DEFAULT_CHECKPOINT_SECONDS = 300.0  # train.checkpoint_every_seconds when a config does not say


def _warn(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _run_lock(workdir: str, is_writer: bool):
  """The workdir's one-writer lock for the block (only the writing process takes it)."""
  if not is_writer:
    yield
    return
  with workdir_lib.Lock(workdir):
    yield


def _accumulator_to_json(acc) -> dict | None:
  """The loop's running metric sums (between two log steps) as exact JSON (numbers, or lists of
  them for a population's members), or None when there are none (a checkpoint on a log
  step)."""
  acc = jax.device_get(acc)
  if np.all(np.asarray(acc["count"]) == 0):
    return None
  return {"accumulator": {"sum": {k: np.asarray(v).tolist() for k, v in acc["sum"].items()},
                          "count": np.asarray(acc["count"]).tolist(),
                          "first_bad_step": np.asarray(acc["first_bad_step"]).tolist()}}


def _accumulator_from_json(extra: dict | None, metric_shapes: dict, members: int = 1) -> dict:
  if not extra or "accumulator" not in extra:
    acc = zero_accumulator(metric_shapes)
    return acc if members == 1 else population.stack([acc] * members)
  a = extra["accumulator"]
  return {"sum": {k: jnp.asarray(a["sum"][k], jnp.float32) for k in metric_shapes},
          "count": jnp.asarray(a["count"], jnp.int32),
          "first_bad_step": jnp.asarray(a["first_bad_step"], jnp.int32)}


def _any_process(flag: bool) -> bool:
  """True on every process when it is true on any (the processes of a multi-host run must take
  the same checkpoint decisions)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       on_eval: Callable[[int, dict], bool] | None = None, *,
                       override: bool = False, resume_step: int | None = None) -> dict:
  """Train `config` in `workdir` (resuming from its latest checkpoint) and evaluate.

  A fit family is fitted instead (fit_and_evaluate). With `train.eval_every > 0` the family's
  eval_step metrics on `eval_split_name(config)` are logged every that many steps (as
  `<split>/<name>` in metrics.jsonl); `on_eval(step, metrics)` returning True stops training
  there (time-to-accuracy benchmarks). `train.eval_from` skips the evaluations before that step.

  The workdir is guarded by genjax.workdir: a config that differs from the one the workdir
  recorded in a field that changes the computation is refused (unless `override`), before
  anything is written; one process writes at a time. The newest checkpoint that restores is
  used (`resume_step` picks one). SIGTERM / Ctrl-C checkpoint the current step and raise
  genjax.preemption.Interrupted; `train.checkpoint_every_seconds` adds a time-based cadence.

  Returns the final evaluation results, also written to `workdir/results.json`.
  Raises NonFiniteLossError if a metric becomes NaN or infinite.
  """
  family = load_family(config.family)
  if family_lib.is_fit(family):
    return fit_and_evaluate(config, workdir, family, override=override)
  validate_config(config)
  workdir_lib.check(config, workdir, override)  # refuse before reading data or writing
  evaluators = evals.resolve(config, family)
  dp = DataParallel(config.parallel)
  pipeline.process_batch_size(config.data.batch_size, dp)  # fail before reading any data
  is_writer = jax.process_index() == 0

  in_memory = config.data.get("in_memory", True)
  if not in_memory:
    pipeline.check_streamed(config.data)  # before the lock creates the workdir
  train_split = None
  if in_memory or family_lib.has_hook(family, "init_from_data"):
    train_split = load_split(config, "train")
  with _run_lock(workdir, is_writer):
    changes = workdir_lib.check(config, workdir, override)  # again, now that it is ours
    return _train_locked(config, workdir, family, evaluators, dp, train_split, changes, on_eval,
                         resume_step)


@dataclasses.dataclass
class _Members:
  """The runs one invocation trains: one, or a population's members (genjax.population), with
  each member's config, keys and workdir."""

  configs: list
  keys: list
  dirs: list

  @classmethod
  def of(cls, config: ml_collections.ConfigDict, workdir: str) -> "_Members":
    s = population.size(config)
    if s == 1:
      return cls([config], [RunKeys.from_seed(config.seed)], [workdir])
    configs = [population.member_config(config, i) for i in range(s)]
    return cls(configs, [RunKeys.from_seed(c.seed) for c in configs],
               [population.member_dir(workdir, i) for i in range(s)])

  @property
  def stacked(self) -> bool:
    return len(self.configs) > 1

  def stack(self, trees: list):
    return population.stack(trees) if self.stacked else trees[0]

  def split(self, tree) -> list:
    """One tree per member (a stacked tree unstacked)."""
    if not self.stacked:
      return [tree]
    return [population.member(tree, i) for i in range(len(self.configs))]


def _make_input(members: _Members, dp: DataParallel, train_split):
  """The training input of every member (one input for one run)."""
  c0 = members.configs[0]
  first = pipeline.make_input(c0, dp, members.keys[0].data, train_split)
  if not members.stacked:
    return first
  if first.member_axes is None:
    raise ValueError("config.population needs an in-memory training input (data.in_memory)")
  rest = [pipeline.make_input(c, dp, k.data, train_split, arrays=first.arrays)
          for c, k in zip(members.configs[1:], members.keys[1:])]
  return population.PopulationInput([first, *rest])


class _Window:
  """Steps and wall clock since the last log step: the logged steps_per_sec (evaluations are
  not training time, so they restart the clock)."""

  def __init__(self):
    self.restart()

  def restart(self) -> None:
    self.start, self.steps = time.perf_counter(), 0

  def pause_ended(self) -> None:
    """Time so far was not training time (an evaluation): count from now, keep the steps."""
    self.start = time.perf_counter()

  def steps_per_sec(self) -> float:
    return self.steps / (time.perf_counter() - self.start)


@dataclasses.dataclass
class _Run:
  """One invocation's training run: the members, their input, checkpoints and writers, and
  what the loop does at each of its cadences (log, evaluate, sample, checkpoint, finish)."""

  config: ml_collections.ConfigDict
  family: ModuleType
  members: _Members
  dp: DataParallel
  source: Any
  ckpt: Checkpointer
  writer: writers.MetricWriter
  member_writers: list
  metric_names: dict
  is_writer: bool
  eval_split: Any = None

  @property
  def all_writers(self) -> list:
    """The workdir's writer and the members' (each once)."""
    return list({id(w): w for w in (self.writer, *self.member_writers)}.values())

  def accumulator(self, extra: dict | None = None):
    """Zeroed running sums of the step metrics (or those a checkpoint kept), on the devices."""
    return self.dp.replicate(_accumulator_from_json(extra, self.metric_names,
                                                    len(self.members.configs)))

  def states(self, state_d) -> list:
    """Each member's state, on the host."""
    return self.members.split(self.dp.unreplicate(state_d))

  def log(self, step: int, acc, window: _Window, progress) -> None:
    """Write the means since the last log step; stop on a non-finite one."""
    summary = jax.device_get(self.dp.unreplicate(acc))
    first_bad = int(np.min(summary["first_bad_step"]))
    if first_bad != np.iinfo(np.int32).max:
      raise NonFiniteLossError(f"non-finite loss at step {first_bad}: training stopped; "
                               f"{_last_good(self.ckpt)}")
    means = {k: v / summary["count"] for k, v in summary["sum"].items()}
    _write_member_scalars(self.writer, self.member_writers, step, means, self.members.stacked)
    self.writer.write_scalars(step, {"steps_per_sec": window.steps_per_sec()}, jsonl=False)
    progress.set_postfix({k: f"{np.mean(v):.4f}" for k, v in means.items()}, refresh=False)
    window.restart()

  def periodic_eval(self, step: int, state_d, on_eval) -> bool:
    """Log eval_step's metrics on the evaluation split; whether `on_eval` asks to stop."""
    metrics = [evaluate(self.family, s, self.eval_split, jax.random.fold_in(k.eval, step))
               for s, k in zip(self.states(state_d), self.members.keys)]
    metrics = {k: np.array([float(m[k]) for m in metrics]) for k in metrics[0]}
    if not self.members.stacked:
      metrics = {k: v[0] for k, v in metrics.items()}
    _write_member_scalars(self.writer, self.member_writers, step,
                          {f"{self.eval_split.name}/{k}": v for k, v in metrics.items()},
                          self.members.stacked)
    return on_eval is not None and bool(on_eval(step, {k: float(np.mean(v))
                                                       for k, v in metrics.items()}))

  def sample_grids(self, step: int, state_d) -> None:
    """Each member's sample grid of this step."""
    from genjax.evals.samples import write_sample_grid
    for s, k, w in zip(self.states(state_d), self.members.keys, self.member_writers):
      write_sample_grid(self.family, s, k.eval, self.source.postprocess, w, step,
                        self.config.train.sample_grid)

  def save(self, step: int, state_d, acc) -> None:
    """Checkpoint the state, with the running metric sums beside it (exact resume between
    log steps); a checkpoint that cannot be written stops the run, naming the last good one."""
    try:
      self.ckpt.save(step, jax.device_get(self.dp.unreplicate(state_d)),
                     extra=_accumulator_to_json(self.dp.unreplicate(acc)))
    except checkpoint_lib.CheckpointWriteError as e:
      raise checkpoint_lib.CheckpointWriteError(
          e.errno, f"{e}: training stopped; {_last_good(self.ckpt)}") from e

  def finish(self, state, workdir: str, evaluators: dict, train_split,
             train_seconds: float) -> dict:
    """Every member's final evaluation (a population's aggregated into the workdir's
    results.json); closes the writers and the checkpointer."""
    splits = {"train": train_split} if train_split is not None else {}
    stacked = self.members.stacked
    results = [final_evaluation(self.family, s, c, k.eval, w, d, evaluators, splits,
                                extra={"train_seconds": train_seconds,
                                       **({"seed": c.seed} if stacked else {})})
               for s, c, k, w, d in zip(self.members.split(state), self.members.configs,
                                        self.members.keys, self.member_writers,
                                        self.members.dirs)]
    if stacked:
      results = population.aggregate(results, [c.seed for c in self.members.configs])
      if self.is_writer:
        writers.write_json(os.path.join(workdir, "results.json"), results)
    else:
      results = results[0]
    for w in self.all_writers:
      w.close()
    self.ckpt.close()
    return results


def _start_run(config, workdir, family, dp, train_split, changes, resume_step):
  """The run's members, input, writers and checkpointer, and its state: restored from the
  newest good checkpoint (with the metric sums kept beside it), else freshly created. Records
  of steps after the restored one are dropped, to be recomputed.

  Returns (run, state, step, extra)."""
  is_writer = jax.process_index() == 0
  members = _Members.of(config, workdir)
  in_memory = config.data.get("in_memory", True)
  source = _make_input(members, dp, train_split if in_memory else None)
  states = [family.create_state(k.init, c) for c, k in zip(members.configs, members.keys)]
  writer = writers.MetricWriter(workdir, enabled=is_writer, tensorboard=config.train.tensorboard)
  batch_spec = {k: jax.ShapeDtypeStruct((2, *v.shape), v.dtype)
                for k, v in source.element_spec.items()}
  run = _Run(
      config=config, family=family, members=members, dp=dp, source=source,
      ckpt=Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints,
                        cleanup=is_writer),
      writer=writer,
      member_writers=([writers.MetricWriter(d, enabled=is_writer, tensorboard=False)
                       for d in members.dirs] if members.stacked else [writer]),
      metric_names=jax.eval_shape(lambda s, b, k: family.train_step(s, b, k)[1], states[0],
                                  batch_spec, members.keys[0].train),
      is_writer=is_writer,
      eval_split=(load_split(config, eval_split_name(config))
                  if config.train.get("eval_every", 0) > 0 else None))
  extra = None
  if run.ckpt.latest_step() is not None or resume_step is not None:
    restored_step, state = run.ckpt.restore_good(members.stack(states), resume_step, warn=_warn)
    extra = run.ckpt.extra(restored_step)
  else:
    if family_lib.has_hook(family, "init_from_data"):
      states = [family.init_from_data(s, train_split, k.init)
                for s, k in zip(states, members.keys)]
    state = members.stack(states)
  step = int(np.asarray(state.step).reshape(-1)[0])
  if is_writer:
    workdir_lib.record(config, workdir, changes, step)
    # Records and sample grids of steps after the restored checkpoint (after step 0 when there
    # is none: a run that died before its first checkpoint) are recomputed: drop them rather
    # than keep two versions.
    for w in run.all_writers:
      w.truncate_after(step)
      workdir_lib.remove_artefacts_after(w.workdir, step)
  return run, state, step, extra


def _train_locked(config, workdir, family, evaluators, dp, train_split, changes, on_eval,
                  resume_step) -> dict:
  """The step loop, its cadences in order: dispatch, log, evaluate, sample, checkpoint, stop."""
  run, state, step, extra = _start_run(config, workdir, family, dp, train_split, changes,
                                       resume_step)
  members, source, t = run.members, run.source, config.train
  num_steps = total_steps(config, source.steps_per_epoch)
  loop_fn = make_loop_step(family, source)
  if members.stacked:
    loop_fn = population.member_step(loop_fn, source.member_axes)
  per_dispatch = t.get("steps_per_dispatch", 1)
  advance = _dispatcher(loop_fn, dp, source.kinds, per_dispatch)
  eval_every = t.get("eval_every", 0)
  samples = family_lib.has_hook(family, "sample")
  # The host acts at these steps' multiples, so a dispatch of several steps ends there.
  periods = [t.log_every, source.steps_per_epoch, *([eval_every] if eval_every > 0 else []),
             *([t.sample_every] if samples else [])]
  state_d = dp.replicate(state)
  train_key_d, data_key_d = dp.replicate((members.stack([k.train for k in members.keys]),
                                          members.stack([k.data for k in members.keys])))
  acc = run.accumulator(extra)
  checkpoint_seconds = t.get("checkpoint_every_seconds", DEFAULT_CHECKPOINT_SECONDS)
  progress = _progress(run.is_writer and t.progress, step, num_steps)
  loop_start = time.perf_counter()
  window = _Window()
  last_save = time.monotonic()
  single_process = jax.process_count() == 1
  try:
    with preemption.StopRequests() as stop_requests:
      while step < num_steps:
        count = dispatch_end(step, num_steps, per_dispatch, periods) - step
        state_d, acc = advance(state_d, acc, train_key_d, data_key_d, count, *source.args(step))
        step += count
        window.steps += count
        progress.update(count)
        last = step == num_steps
        log_step = step % t.log_every == 0 or last
        if log_step:
          run.log(step, acc, window, progress)
          acc = run.accumulator()
        stop = False
        if eval_every > 0 and step % eval_every == 0 and step >= t.get("eval_from", 0):
          stop = run.periodic_eval(step, state_d, on_eval)
          window.pause_ended()
        if samples and step % t.sample_every == 0 and not last:  # the final evaluation draws
          run.sample_grids(step, state_d)                         # the last grid
        # A signal or the time-based cadence checkpoints this step (every process decides
        # alike: a multi-host run agrees at its log steps).
        interrupted = due = False
        if single_process or log_step:
          interrupted = _any_process(stop_requests.signum is not None)
          due = _any_process(checkpoint_seconds > 0
                             and time.monotonic() - last_save >= checkpoint_seconds)
        if step % t.checkpoint_every == 0 or last or stop or interrupted or due:
          run.save(step, state_d, acc)
          last_save = time.monotonic()
        if interrupted:
          run.writer.flush()
          raise preemption.Interrupted(stop_requests.signum or signal.SIGTERM, step,
                                       run.ckpt.directory)
        if stop:
          break
    state = dp.unreplicate(state_d)
  finally:
    progress.close()
    run.writer.flush()
  # Wall clock of this invocation's steps (compilation included; a resumed run counts only the
  # steps it took).
  return run.finish(state, workdir, evaluators, train_split, time.perf_counter() - loop_start)


def _last_good(ckpt: Checkpointer) -> str:
  """Where a stopped run resumes from: its newest checkpoint, or the start if none was written."""
  step = ckpt.latest_step()
  if step is None:
    return "no checkpoint was written yet: the same command starts the run again from step 0"
  return f"the last good checkpoint is step {step} in {ckpt.directory}"


def _write_member_scalars(writer, member_writers, step: int, scalars: dict,
                          stacked: bool) -> None:
  """Log scalars: one run's as they are; a population's per member, and their mean in the
  workdir's own log."""
  if not stacked:
    writer.write_scalars(step, scalars)
    return
  for i, w in enumerate(member_writers):
    w.write_scalars(step, {k: np.asarray(v)[i] for k, v in scalars.items()})
  writer.write_scalars(step, {k: np.mean(v) for k, v in scalars.items()})


def fit_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                     family: ModuleType | None = None, *, override: bool = False) -> dict:
  """Fit a fit family's state over the whole training split (or restore it from `workdir`),
  checkpoint it, and run its evaluators. results.json gains `fit_seconds` (wall clock,
  compilation included, as measured when the state was fitted). The workdir is guarded as in
  train_and_evaluate."""
  family = family or load_family(config.family)
  if population.size(config) > 1:
    raise ValueError("config.population trains step families; a fit family is fitted once")
  workdir_lib.check(config, workdir, override)
  evaluators = evals.resolve(config, family)
  is_writer = jax.process_index() == 0
  keys = RunKeys.from_seed(config.seed)
  train = labelled.restrict(config, load_split(config, "train"))
  state = family.create_state(keys.init, config, train)
  with _run_lock(workdir, is_writer):
    changes = workdir_lib.check(config, workdir, override)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), 1, cleanup=is_writer)
    writer = writers.MetricWriter(workdir, enabled=is_writer, tensorboard=False)
    fit_path = os.path.join(workdir, "fit.json")
    fitted = None
    refit = any(not workdir_lib.extends_only(k) for k in changes)  # an --override'd change
    if ckpt.latest_step() is not None and os.path.exists(fit_path) and not refit:
      try:
        _, fitted = ckpt.restore_good(state, warn=_warn)
      except checkpoint_lib.CheckpointError as e:
        _warn(f"warning: {e}; fitting again")
    if is_writer:
      workdir_lib.record(config, workdir, changes, FITTED_STEP if fitted is not None else 0)
    if fitted is not None:
      state = fitted
      with open(fit_path) as f:
        fit_info = json.load(f)
    else:
      writer.truncate_after(0)
      start = time.perf_counter()
      state = jax.block_until_ready(family.fit(state, train, keys.train,
                                               log=writer.write_scalars))
      fit_info = {"fit_seconds": time.perf_counter() - start, "backend": jax.default_backend(),
                  "num_train": len(train)}
      ckpt.save(FITTED_STEP, jax.device_get(state))
      if is_writer:
        writers.write_json(fit_path, fit_info)
    results = final_evaluation(family, state, config, keys.eval, writer, workdir, evaluators,
                               {"train": train}, step=FITTED_STEP, extra=fit_info)
    writer.close()
    ckpt.close()
  return results


FITTED_STEP = 1  # the checkpoint step of a fitted state


def final_evaluation(family: ModuleType, state, config: ml_collections.ConfigDict,
                     key: jax.Array, writer: writers.MetricWriter, workdir: str,
                     evaluators: dict | None = None, splits: dict | None = None,
                     step: int | None = None, only_on_train_end: bool = True,
                     extra: dict | None = None) -> dict:
  """Run the config's evaluators (those marked on_train_end unless told otherwise) and write
  results.json, with the `extra` top-level fields (timings)."""
  evaluators = evals.resolve(config, family) if evaluators is None else evaluators
  ctx = evals.Context(family=family, state=state, config=config,
                      step=int(state.step) if step is None else step, key=key,
                      workdir=workdir, writer=writer)
  for split in (splits or {}).values():
    ctx.add_split(split)
  results = {**evals.run(ctx, evaluators, only_on_train_end=only_on_train_end),
             **objective_fields(config), **(extra or {})}
  if writer.enabled:
    writers.write_json(os.path.join(workdir, "results.json"), results)
  return results


def objective_fields(config: ml_collections.ConfigDict) -> dict:
  """The fields of results.json that say which objective trained the model: `joint_weight`
  (the weight of log p(x, y) against log p(y | x)) where the config's model has one."""
  model = config.get("model")
  if model is None or "joint_weight" not in model:
    return {}
  return {"joint_weight": float(model.joint_weight)}


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a workdir: it has no config.json")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_for_eval(workdir: str, step: int | None = None):
  """(family, config, state) from a workdir's config.json and its latest checkpoint (a
  population's members stacked, as trained: genjax.population.member picks one)."""
  config = read_config(workdir)
  family = load_family(config.family)
  keys = RunKeys.from_seed(config.seed)
  if family_lib.is_fit(family):
    state = family.create_state(keys.init, config,
                                labelled.restrict(config, load_split(config, "train")))
    keep = 1
  else:
    # Only the structure and shapes are needed to restore into: tracing create_state gives
    # them without compiling (or running) the networks' initialisers.
    members = _Members.of(config, workdir)
    state = jax.eval_shape(lambda: members.stack([
        family.create_state(k.init, c) for c, k in zip(members.configs, members.keys)]))
    keep = config.train.keep_checkpoints
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep)
  state = ckpt.restore(state, step)
  ckpt.close()
  return family, config, state
