"""Writers for a run's workdir: metrics.jsonl, TensorBoard events and PNG sample grids."""

import json
import math
import os

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


class _TensorBoard:
  """TensorBoard event files through tf.summary (TensorFlow is already needed by TFDS)."""

  def __init__(self, logdir: str):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    self._tf = tf
    self._writer = tf.summary.create_file_writer(logdir)

  def scalar(self, tag: str, value: float, step: int) -> None:
    with self._writer.as_default():
      self._tf.summary.scalar(tag, value, step=step)

  def image(self, tag: str, image_HxWxC: np.ndarray, step: int) -> None:
    with self._writer.as_default():
      self._tf.summary.image(tag, image_HxWxC[None], step=step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


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
        except ImportError:  # an accelerator image without TensorFlow: metrics.jsonl only
          print("TensorFlow is not installed: no TensorBoard event files (metrics.jsonl only)")

  def truncate_after(self, step: int) -> None:
    """Drop records logged after `step` (they are recomputed when a run resumes there)."""
    if not self.enabled or not os.path.exists(self.path):
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
