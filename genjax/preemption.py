"""Stopping a run cleanly: SIGTERM (a preempted VM, `kill`) and Ctrl-C ask the loop to
checkpoint the step it is at and exit; a second Ctrl-C stops at once."""

import signal
import threading


class Interrupted(Exception):
  """The run was stopped by a signal after checkpointing `step`; the same command resumes."""

  def __init__(self, signum: int, step: int, directory: str):
    self.signum, self.step = signum, step
    super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}, checkpointed in "
                     f"{directory}: run the same command to resume")

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class StopRequests:
  """While entered (in the main thread), SIGTERM and SIGINT set `signum` instead of killing the
  process; the loop checks it between steps. Outside the main thread it does nothing."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
    self.signum = signum

  def __enter__(self) -> "StopRequests":
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}
