"""Orbax checkpoints of a train state: save every N steps, keep the last k, restore the newest
one that restores.

Orbax writes each checkpoint to a temporary directory and renames it when it is complete, so a
process killed mid-write leaves the previous checkpoints intact and the unfinished one is
ignored (and cleaned up) by the next run. A complete checkpoint that no longer restores (a
truncated or overwritten file) is moved aside to `<directory>.corrupt/` by `restore_good` and
the one before it is used.

A checkpoint may carry a small JSON `extra` beside it (`<directory>.extra/<step>.json`, written
before the checkpoint, so a complete checkpoint always has its extra): the loop keeps its
running metric sums there when it checkpoints between two log steps.
"""

import json
import os
import shutil

import jax
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
  """No checkpoint of the run can be restored as asked."""


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0][:160] if text else ''}"


class Checkpointer:
  """Checkpoints of one run under `directory`."""

  def __init__(self, directory: str, keep: int = 3, cleanup: bool = False):
    """`cleanup` deletes unfinished checkpoints left by a killed run: only the run that writes
    here may do that (a reader could delete the one a live run is writing)."""
    self.directory = os.path.abspath(directory)
    self.extra_directory = self.directory + ".extra"
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=cleanup)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def _extra_path(self, step: int) -> str:
    return os.path.join(self.extra_directory, f"{step}.json")

  def save(self, step: int, state, extra: dict | None = None) -> None:
    """Save `state` (one copy, not replicated) as checkpoint `step` and wait for it; `extra`
    (JSON) is written beside it first."""
    path = self._extra_path(step)
    if extra is not None and jax.process_index() == 0:
      from genjax import writers
      writers.write_json(path, extra)
    elif os.path.exists(path):
      os.remove(path)
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self.manager.wait_until_finished()
    if jax.process_index() == 0 and os.path.isdir(self.extra_directory):
      kept = {f"{s}.json" for s in self.manager.all_steps()}
      for name in os.listdir(self.extra_directory):
        if name not in kept:
          os.remove(os.path.join(self.extra_directory, name))

  def extra(self, step: int) -> dict | None:
    """The extra saved with checkpoint `step` (None if it had none)."""
    path = self._extra_path(step)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def restore(self, target, step: int | None = None):
    """Restore checkpoint `step` (default: the latest) into the structure of `target`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_good(self, target, step: int | None = None, warn=print):
    """(step, state) of the newest checkpoint that restores into `target`'s structure.

    A checkpoint that fails while an older one restores is reported through `warn` in one line
    and moved to `<directory>.corrupt/`. If none restores nothing is moved (the checkpoints may
    be whole and the target another model) and CheckpointError says why. With `step`, exactly
    that checkpoint is restored, and the newer ones are moved to `<directory>.superseded/`
    (the run continues from `step` and would write them again).
    """
    steps = self.all_steps()
    if step is not None:
      if step not in steps:
        raise CheckpointError(f"no checkpoint at step {step} in {self.directory} "
                              f"(there are {steps or 'none'})")
      try:
        state = self.restore(target, step)
      except Exception as e:  # noqa: BLE001 -- any failure to read it is reported the same way
        raise CheckpointError(f"checkpoint {step} in {self.directory} does not restore "
                              f"({_first_line(e)})") from None
      later = [s for s in steps if s > step]
      if later:
        self._move_aside(later, "superseded")
        warn(f"resuming from step {step}: checkpoints {later} moved to "
             f"{self.directory}.superseded")
      return step, state
    failures = []
    for s in reversed(steps):
      try:
        state = self.restore(target, s)
      except Exception as e:  # noqa: BLE001
        failures.append((s, _first_line(e)))
        continue
      if failures:
        bad = [f for f, _ in failures]
        self._move_aside(bad, "corrupt")
        for f, why in failures:
          warn(f"warning: checkpoint {f} in {self.directory} does not restore ({why}); moved to "
               f"{self.directory}.corrupt, resuming from step {s}")
      return s, state
    if not failures:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    s, why = failures[0]
    raise CheckpointError(f"no checkpoint in {self.directory} restores into this config's state "
                          f"(checkpoint {s}: {why})")

  def _move_aside(self, steps: list[int], reason: str) -> None:
    if jax.process_index() == 0:
      dest_root = f"{self.directory}.{reason}"
      os.makedirs(dest_root, exist_ok=True)
      for s in steps:
        dest, n = os.path.join(dest_root, str(s)), 1
        while os.path.exists(dest):
          dest, n = os.path.join(dest_root, f"{s}.{n}"), n + 1
        shutil.move(os.path.join(self.directory, str(s)), dest)
        if os.path.exists(self._extra_path(s)):
          shutil.move(self._extra_path(s), dest + ".extra.json")
    self.manager.reload()

  def close(self) -> None:
    self.manager.close()
