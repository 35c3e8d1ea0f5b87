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

A checkpoint that cannot be written (a full disk, a quota, a file-size limit) raises
`CheckpointWriteError`, one line naming the step, the directory and the errno; the checkpoints
before it are untouched, and the unfinished one is removed when that step is saved again or by
the next run that writes here. What orbax's writer threads report of the same failure is not
repeated: their logged tracebacks are dropped, and so are the "Event loop is closed" errors of
the writes still in flight when orbax closed the event loop they would have woken (tensorstore
reports them as unraisable exceptions, hundreds of lines, for a while after the save failed).
"""

import contextlib
import errno as errno_lib
import json
import logging
import os
import re
import shutil
import sys
import traceback

import jax
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
  """No checkpoint of the run can be restored as asked."""


class CheckpointWriteError(OSError):
  """A checkpoint could not be written for an operating-system reason (`errno`, e.g. ENOSPC);
  the message is one line and the checkpoints before it are intact."""

  def __init__(self, errno: int, message: str):
    super().__init__(errno, message)

  def __str__(self) -> str:
    return self.strerror


# tensorstore's form of the OS error behind a failed write, in the versions seen so far:
# "... [os_error_code='28']" and "... [OS error 28: ENOSPC ...]".
_TENSORSTORE_ERRNO = re.compile(r"os_error_code='(\d+)'|OS error (\d+)")


def os_errno(e: BaseException) -> int | None:
  """The errno behind an exception: its own (an OSError), the one tensorstore names in its
  message, or that of the exception it was raised from or while handling; None if none has one."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno:
      return e.errno
    match = _TENSORSTORE_ERRNO.search(str(e))
    if match:
      return int(match.group(1) or match.group(2))
    e = e.__cause__ or e.__context__
  return None


def _errno_text(number: int) -> str:
  """'No space left on device, ENOSPC'."""
  return f"{os.strerror(number)}, {errno_lib.errorcode.get(number, f'errno {number}')}"


class _HoldErrorLogs(logging.Filter):
  """Holds back the error records that orbax's threads log through absl's logger."""

  def __init__(self):
    super().__init__()
    self.held = []

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and f"{os.sep}orbax{os.sep}" in record.pathname:
      self.held.append(record)
      return False
    return True


class _DropClosedLoopWakeups:
  """An unraisable-exception hook that drops one report and passes the others to the hook it
  replaced: the RuntimeError of tensorstore waking an asyncio loop that is already closed (a
  write finishing after orbax gave up on a failed save and closed the loop)."""

  def __init__(self, previous):
    self.previous = previous

  def __call__(self, unraisable) -> None:
    if not is_closed_loop_wakeup(unraisable):
      self.previous(unraisable)


def is_closed_loop_wakeup(unraisable) -> bool:
  """Whether an unraisable exception (sys.UnraisableHookArgs) is asyncio refusing
  `call_soon_threadsafe` because its loop is closed, raised where no object is to blame."""
  return (unraisable.object is None and isinstance(unraisable.exc_value, RuntimeError)
          and str(unraisable.exc_value) == "Event loop is closed"
          and any(frame.f_code.co_name == "call_soon_threadsafe"
                  for frame, _ in traceback.walk_tb(unraisable.exc_traceback)))


@contextlib.contextmanager
def _one_error_per_failed_save():
  """While orbax saves: its threads' error logs are held back, and re-logged unless the save
  fails (the exception raised says the same); the closed-loop wake-ups are dropped, and after a
  failed save they keep being dropped (the writes in flight end when they end)."""
  absl_logger = logging.getLogger("absl")
  hold = _HoldErrorLogs()
  absl_logger.addFilter(hold)
  installed = not isinstance(sys.unraisablehook, _DropClosedLoopWakeups)
  if installed:
    sys.unraisablehook = _DropClosedLoopWakeups(sys.unraisablehook)
  try:
    yield
  except BaseException:
    absl_logger.removeFilter(hold)
    raise
  absl_logger.removeFilter(hold)
  if installed and isinstance(sys.unraisablehook, _DropClosedLoopWakeups):
    sys.unraisablehook = sys.unraisablehook.previous
  for record in hold.held:
    absl_logger.handle(record)


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
    (JSON) is written beside it first.

    Raises CheckpointWriteError (one line) where the writing fails for an operating-system
    reason (e.g. ENOSPC): the earlier checkpoints are intact and a later save may try again."""
    path = self._extra_path(step)
    try:
      with _one_error_per_failed_save():
        if extra is not None and jax.process_index() == 0:
          from genjax import writers
          writers.write_json(path, extra)
        elif os.path.exists(path):
          os.remove(path)
        self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
        self.manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001 -- only an OS error is re-raised as another
      number = os_errno(e)
      if number is None:
        raise
      if jax.process_index() == 0 and step not in self.manager.all_steps():
        for leftover in (path, path + ".tmp"):  # an extra without its checkpoint
          with contextlib.suppress(OSError):
            os.remove(leftover)
      raise CheckpointWriteError(number, f"checkpoint {step} could not be written to "
                                         f"{self.directory} ({_errno_text(number)})") from e
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
