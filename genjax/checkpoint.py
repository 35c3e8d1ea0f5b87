"""Orbax checkpoints of a train state: save every N steps, keep the last k, restore the latest.

Orbax writes each checkpoint to a temporary directory and renames it when it is
complete, so a process killed mid-write leaves the previous checkpoints intact
and the unfinished one is ignored (and cleaned up) by the next run.
"""

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Checkpoints of one run under `directory`."""

  def __init__(self, directory: str, keep: int = 3, cleanup: bool = False):
    """`cleanup` deletes unfinished checkpoints left by a killed run: only the run that writes
    here may do that (a reader could delete the one a live run is writing)."""
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=cleanup)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state) -> None:
    """Save `state` (one copy, not replicated) as checkpoint `step` and wait for it."""
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self.manager.wait_until_finished()

  def restore(self, target, step: int | None = None):
    """Restore checkpoint `step` (default: the latest) into the structure of `target`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self.manager.close()
