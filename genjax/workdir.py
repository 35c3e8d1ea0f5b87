"""What keeps a workdir whole: its config's provenance, one writer at a time, stale artefacts.

A workdir belongs to one run. Its first invocation records the config (config.json); every
later one compares its config with the recorded one *before it writes anything*:

- a different family is refused outright (the checkpoints hold another model);
- a field that changes the computation (model, data, optimiser, seed, batch, parallel layout,
  ...) is refused with one line naming the fields, unless the run is told `override=True`
  (`--override` on the command line): then the change and the step it took effect at are
  appended to `config_changes.jsonl`;
- a field that only extends or reports (`EXTENDING`: num_steps / num_epochs, log, checkpoint
  and sample cadence, progress, evaluation settings, data location) may change; the change is
  recorded the same way. Except train.num_steps where the learning rate decays over it
  (`schedule_reads_num_steps`) or a weight average's horizon is a fraction of it
  (`average_reads_num_steps`): there it sets every step's learning rate or averaging weight, so
  it is refused as a change of the computation.

`Lock` makes one process the workdir's writer for the life of a run (an advisory `flock`: the
kernel releases it when the holder dies, so a `kill -9` never blocks the next run).
"""

import datetime
import fcntl
import json
import os
import re
import socket
import sys

import ml_collections

from genjax.family import ALIASES


class WorkdirError(ValueError):
  """The workdir cannot be used as asked (another run's, in use, or unreadable)."""


# Fields that may differ between invocations of one run: how long it runs, how often it logs,
# checkpoints and draws samples, how it is evaluated and where its data files are. A prefix
# ending in "." covers a whole section.
EXTENDING = (
    "train.num_steps", "train.num_epochs", "train.log_every", "train.checkpoint_every",
    "train.checkpoint_every_seconds", "train.keep_checkpoints", "train.sample_every",
    "train.sample_grid", "train.tensorboard", "train.progress", "train.steps_per_dispatch",
    "train.eval_every",
    "train.eval_from", "train.eval_split", "evals.", "data.data_dir", "data.idx_dir",
    "data.download",
)

CHANGES_FILE = "config_changes.jsonl"


def _flatten(tree, prefix: str = "") -> dict:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: tree}


def _normal(config) -> dict:
  """A config as plain JSON values (tuples as lists), the form config.json stores."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return json.loads(json.dumps(config, default=str))


def extends_only(field: str) -> bool:
  return any(field.startswith(p) if p.endswith(".") else field == p for p in EXTENDING)


# The learning-rate schedules whose length is train.num_steps unless optim.decay_steps > 0 fixes
# it: the neural classifiers' optim.schedule `cosine` and `step`, SSGAN's optim.decay_fraction
# > 0, and the RBMs' optim.decay_start < 1 (which have no decay_steps). The families read only
# the config, so these fields say it.
NUM_STEPS_SCHEDULES = ("cosine", "step")


def schedule_reads_num_steps(config) -> bool:
  """Whether `config`'s learning rate at a step depends on train.num_steps (see
  NUM_STEPS_SCHEDULES): then changing train.num_steps changes the computation of every step."""
  o = _normal(config).get("optim") or {}
  if (o.get("decay_steps") or -1) > 0:
    return False
  decay_start = o.get("decay_start")
  return (o.get("schedule") in NUM_STEPS_SCHEDULES or (o.get("decay_fraction") or 0.0) > 0.0
          or (decay_start is not None and decay_start < 1.0))


def average_reads_num_steps(config) -> bool:
  """Whether `config`'s weight average depends on train.num_steps: the semi-supervised GAN's
  model.ema_horizon > 0 places its decay in the schedule's length, train.num_steps unless
  optim.decay_steps > 0 fixes it."""
  c = _normal(config)
  if ((c.get("optim") or {}).get("decay_steps") or -1) > 0:
    return False
  return ((c.get("model") or {}).get("ema_horizon") or 0.0) > 0.0


# Fields added to the configs after workdirs were recorded without them, and the value their
# absence meant: a workdir of an earlier version continues when the new field holds it.
ADDED_LATER = {"population": 1, "data.num_labels": -1, "data.label_seed": None,
               "data.semi_supervised": False, "train.steps_per_dispatch": 1}
# The same for one family's fields (the objective's `model.joint_weight`, with the settings of
# the solver or sampler that trains it below 1), where the value meant depends on the family.
ADDED_LATER_BY_FAMILY = {
    "classical": {"model.joint_weight": 1.0, "model.max_iter": 200},
    "hmm_tagger": {"model.joint_weight": 1.0, "model.max_iterations": 100, "model.tol": 1e-6,
                   "model.em_restarts": 0},
    "bayes_vae": {"model.joint_weight": 1.0, "model.conditioning": "concat"},
    "ssgan": {"model.ema_horizon": 0.0},  # before it, model.ema_decay fixed the average
    "neural_classifier": {"model.joint_weight": 0.0, "model.sgld_steps": 20,
                          "model.sgld_step_size": 1.0, "model.sgld_noise": 0.01,
                          "model.buffer_size": 10000, "model.reinit_prob": 0.05},
}


def diff(old: dict, new: dict) -> dict:
  """{field: (old value, new value)} of every dotted field that differs (missing: None, or the
  ADDED_LATER value it meant)."""
  a, b = _flatten(_normal(old)), _flatten(_normal(new))
  family = b.get("family") or a.get("family")
  meant = {**ADDED_LATER, **ADDED_LATER_BY_FAMILY.get(ALIASES.get(family, family), {})}

  def get(d, k):
    return d[k] if k in d else meant.get(k)

  return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if get(a, k) != get(b, k)}


def recorded_config(workdir: str) -> dict | None:
  """The config a workdir's run recorded (None for a new workdir)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f"{path} is unreadable ({e}): this workdir's config is lost; use a new "
                       "--workdir") from None


def _show(value) -> str:
  text = json.dumps(value)
  return text if len(text) <= 40 else text[:37] + "..."


def check(config, workdir: str, override: bool = False) -> dict:
  """Compare `config` with the config `workdir` recorded; raise WorkdirError where the run may
  not continue. Returns the differences ({field: (old, new)}; empty for a new workdir or the
  same config). Reads only."""
  old = recorded_config(workdir)
  if old is None:
    return {}
  new = _normal(config)
  if old.get("family") != new.get("family"):
    raise WorkdirError(
        f"{workdir} holds a {old.get('family')!r} run, not {new.get('family')!r}: "
        "use a new --workdir")
  changes = diff(old, new)
  decays = schedule_reads_num_steps(old) or schedule_reads_num_steps(new)
  averages = average_reads_num_steps(old) or average_reads_num_steps(new)
  computational = [k for k in changes
                   if not extends_only(k) or (k == "train.num_steps" and (decays or averages))]
  if computational and not override:
    why = ({"train.num_steps": " (the learning rate decays over it)"} if decays else
           {"train.num_steps": " (the weight average's horizon is a fraction of it)"} if averages
           else {})
    shown = ", ".join(f"{k} {_show(changes[k][0])} -> {_show(changes[k][1])}{why.get(k, '')}"
                      for k in computational[:6])
    more = f" and {len(computational) - 6} more" if len(computational) > 6 else ""
    raise WorkdirError(
        f"{workdir} was run with a different config ({shown}{more}): use a new --workdir, or "
        "pass --override to continue it with the new settings (recorded in "
        f"{CHANGES_FILE})")
  return changes


def record(config, workdir: str, changes: dict, step: int) -> None:
  """Write config.json (the config the run continues with) and, when it changed, a line of
  config_changes.jsonl: the step the change took effect at and each field's old and new
  value."""
  from genjax import writers
  if changes:
    entry = {"step": int(step), "time": _now(), "argv": sys.argv,
             "changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}}
    with open(os.path.join(workdir, CHANGES_FILE), "a") as f:
      f.write(json.dumps(entry) + "\n")
  writers.write_json(os.path.join(workdir, "config.json"), _normal(config))


def _now() -> str:
  return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Lock:
  """The one-writer lock of a workdir (`workdir/.lock`), held from `acquire` to `release`.

  The file holds who took it (host, pid, start time, command line) so that a second process
  can say who holds it. The lock itself is `flock` on the open file: released by the kernel
  when the holder exits in any way, so a lock file left by a killed run is never in the way.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, ".lock")
    self._fd = None

  def acquire(self) -> "Lock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
      os.close(fd)
      raise WorkdirError(
          f"{os.path.dirname(self.path)} is in use by {holder}: one run writes to a workdir at a "
          "time; wait for it, stop it, or use another --workdir") from None
    os.ftruncate(fd, 0)
    os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()} since {_now()} "
                  f"({' '.join(sys.argv)[:200]})\n").encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      os.close(self._fd)  # closing the file releases the flock
      self._fd = None

  def __enter__(self) -> "Lock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


_SAMPLE = re.compile(r"_(\d{8})\.png$")


def remove_artefacts_after(workdir: str, step: int) -> list[str]:
  """Delete the sample grids a run drew after `step` (it resumes there and draws them again).
  Returns the removed paths."""
  folder = os.path.join(workdir, "samples")
  removed = []
  if os.path.isdir(folder):
    for name in sorted(os.listdir(folder)):
      m = _SAMPLE.search(name)
      if m and int(m.group(1)) > step:
        os.remove(os.path.join(folder, name))
        removed.append(name)
  return removed
