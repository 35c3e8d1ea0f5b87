"""Writers for a run's workdir: metrics.jsonl, TensorBoard events and PNG sample grids."""

import io
import itertools
import json
import math
import os
import re
import socket
import time

import numpy as np
from PIL import Image


def image_grid(images_NxHxWxC: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
  """Tile N images in [0, 1] into one uint8 grid image (rows of `ncol`), padded with white."""
  x = np.asarray(images_NxHxWxC, np.float32)
  if x.ndim == 3:
    x = x[..., None]
  n, h, w, c = x.shape
  ncol = ncol or math.ceil(math.sqrt(n))
  nrow = math.ceil(n / ncol)
  grid = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.float32)
  for i in range(n):
    r, col = divmod(i, ncol)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    grid[top:top + h, left:left + w] = x[i]
  return (np.clip(grid, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str, image_HxWxC: np.ndarray) -> None:
  """Write a uint8 image (grey if it has one channel) as PNG."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  img = image_HxWxC[..., 0] if image_HxWxC.shape[-1] == 1 else image_HxWxC
  Image.fromarray(img).save(path)


_EVENT_FILE = re.compile(r"events\.out\.tfevents\.(\d+)\.")
_writer_ids = itertools.count()


def _event_file_name(logdir: str) -> str:
  """A new event file's name, `events.out.tfevents.<seconds>.<host>.<pid>.<n>`, ordered after
  every event file already in `logdir`: TensorBoard reads a folder's files in name order, and a
  resumed run's purge must come after the events it discards (even within the same second)."""
  stamps = [int(m.group(1)) for m in map(_EVENT_FILE.match, os.listdir(logdir)) if m]
  stamp = max([int(time.time()), *(s + 1 for s in stamps)])
  host, pid = socket.gethostname(), os.getpid()
  return f"events.out.tfevents.{stamp:010d}.{host}.{pid}.{next(_writer_ids)}"


class _TensorBoard:
  """TensorBoard event files written without TensorFlow: the `tensorboard` package's Event and
  Summary protos in TFRecord framing (its RecordWriter), one file per writer."""

  def __init__(self, logdir: str):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    os.makedirs(logdir, exist_ok=True)
    self.path = os.path.join(logdir, _event_file_name(logdir))
    self._file = open(self.path, "wb")
    self._records = RecordWriter(self._file)
    # Version 2 makes TensorBoard purge by SessionLog.START (restart) rather than by step order.
    self._write(event_pb2.Event(file_version="brain.Event:2"))
    self.flush()

  def _write(self, event) -> None:
    event.wall_time = time.time()
    self._records.write(event.SerializeToString())

  def _summary(self, step: int, value) -> None:
    self._write(self._event_pb2.Event(step=int(step),
                                      summary=self._summary_pb2.Summary(value=[value])))

  def scalar(self, tag: str, value: float, step: int) -> None:
    self._summary(step, self._summary_pb2.Summary.Value(tag=tag, simple_value=value))

  def image(self, tag: str, image_HxWxC: np.ndarray, step: int) -> None:
    """A uint8 image (1 or 3 channels), PNG-encoded."""
    h, w, c = image_HxWxC.shape
    png = io.BytesIO()
    Image.fromarray(image_HxWxC[..., 0] if c == 1 else image_HxWxC).save(png, format="PNG")
    image = self._summary_pb2.Summary.Image(height=h, width=w, colorspace=c,
                                            encoded_image_string=png.getvalue())
    self._summary(step, self._summary_pb2.Summary.Value(tag=tag, image=image))

  def restart(self, step: int) -> None:
    """Mark a restart at `step`: TensorBoard then discards the events of earlier files whose step
    is `step` or later (SessionLog.START, as TensorFlow's Supervisor wrote at each start).

    TensorBoard's fast loader (its Rust data server) ignores the marker but does the same per
    time series when a step comes again, which the resumed run's first log does."""
    log = self._event_pb2.SessionLog(status=self._event_pb2.SessionLog.START)
    self._write(self._event_pb2.Event(step=int(step), session_log=log))
    self.flush()

  def flush(self) -> None:
    self._records.flush()

  def close(self) -> None:
    self._records.close()


def read_metrics(path: str) -> list[dict]:
  """The records of a metrics.jsonl file (an empty list if it does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  """Appends scalars to `metrics.jsonl` and TensorBoard, images to `samples/` and TensorBoard.

  Only one process of a multi-host run writes (`enabled`).
  """

  def __init__(self, workdir: str, enabled: bool = True, tensorboard: bool = True):
    self.workdir = workdir
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      if tensorboard:
        try:
          self._tb = _TensorBoard(os.path.join(workdir, "tensorboard"))
        except ImportError:  # an image without the `tensorboard` package: metrics.jsonl only
          print("tensorboard is not installed: no TensorBoard event files (metrics.jsonl only)")

  def truncate_after(self, step: int) -> None:
    """Drop records logged after `step` (they are recomputed when a run resumes there): from
    metrics.jsonl, and from TensorBoard's view of the event files (a restart at `step + 1`, so
    that `step`'s own record, which is not logged again, stays)."""
    if not self.enabled:
      return
    if self._tb is not None:
      self._tb.restart(step + 1)
    if not os.path.exists(self.path):
      return
    kept = [r for r in read_metrics(self.path) if r["step"] <= step]
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, self.path)

  def write_scalars(self, step: int, scalars: dict, jsonl: bool = True) -> None:
    if not self.enabled:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    if jsonl:
      with open(self.path, "a") as f:
        f.write(json.dumps({"step": int(step), **scalars}) + "\n")
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.scalar(k, v, step)

  def write_grid(self, step: int, name: str, images: np.ndarray, ncol: int | None = None) -> str:
    """Save a grid of images in [0, 1] as samples/{name}_{step}.png and to TensorBoard."""
    if not self.enabled:
      return ""
    grid = image_grid(images, ncol)
    path = os.path.join(self.workdir, "samples", f"{name}_{step:08d}.png")
    save_png(path, grid)
    if self._tb is not None:
      self._tb.image(name, grid, step)
    return path

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def write_json(path: str, obj: dict) -> None:
  """Write `obj` as JSON atomically (write, then rename)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)
