"""Tests of genjax.writers: image grids, PNGs, metrics.jsonl, TensorBoard events, JSON files."""

import glob
import io
import json
import os
import time

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genjax import writers


def test_image_grid_layout_padding_and_values():
  # Three 2x2 images (black, grey, white), two per row, one pixel of padding.
  x = np.stack([np.full((2, 2, 1), v, np.float32) for v in (0.0, 0.5, 1.0)])
  grid = writers.image_grid(x, ncol=2, pad=1)
  assert grid.dtype == np.uint8
  assert grid.shape == (2 * (2 + 1) + 1, 2 * (2 + 1) + 1, 1)  # (7, 7, 1)
  W, B, G = 255, 0, 128  # white padding; 0.5 rounds to 128
  expected = np.array([
      [W, W, W, W, W, W, W],
      [W, B, B, W, G, G, W],
      [W, B, B, W, G, G, W],
      [W, W, W, W, W, W, W],
      [W, W, W, W, W, W, W],  # the third image is white, like the empty fourth cell
      [W, W, W, W, W, W, W],
      [W, W, W, W, W, W, W],
  ], np.uint8)[..., None]
  np.testing.assert_array_equal(grid, expected)


def test_image_grid_places_images_row_major_and_clips():
  x = np.zeros((5, 3, 4, 1), np.float32)
  for i in range(5):
    x[i] = (i + 1) / 10.0
  x[4, 0, 0, 0] = 7.0  # out of range: clipped to white
  x[3, 0, 0, 0] = -1.0  # clipped to black
  grid = writers.image_grid(x, pad=2)  # ncol = ceil(sqrt(5)) = 3, nrow = 2
  assert grid.shape == (2 * (3 + 2) + 2, 3 * (4 + 2) + 2, 1)
  for i in range(5):
    r, c = divmod(i, 3)
    top, left = 2 + r * 5, 2 + c * 6
    cell = grid[top:top + 3, left:left + 4, 0].astype(int)
    want = np.full((3, 4), int((i + 1) / 10.0 * 255.0 + 0.5))
    want[0, 0] = {3: 0, 4: 255}.get(i, want[0, 0])
    np.testing.assert_array_equal(cell, want)


def test_image_grid_accepts_images_without_channel_axis_and_rgb():
  grey = writers.image_grid(np.ones((4, 5, 5), np.float32), pad=0)
  assert grey.shape == (10, 10, 1) and np.all(grey == 255)
  rgb = np.zeros((2, 3, 3, 3), np.float32)
  rgb[..., 0] = 1.0  # red
  grid = writers.image_grid(rgb, ncol=2, pad=1)
  assert grid.shape == (5, 9, 3)
  np.testing.assert_array_equal(grid[1, 1], [255, 0, 0])
  np.testing.assert_array_equal(grid[0, 0], [255, 255, 255])


@pytest.mark.parametrize("channels", [1, 3])
def test_save_png_round_trip(tmp_path, channels):
  img = np.random.default_rng(0).integers(0, 256, (7, 9, channels), dtype=np.uint8)
  path = os.path.join(tmp_path, "sub", "dir", "x.png")  # parent directories are created
  writers.save_png(path, img)
  with Image.open(path) as f:
    assert f.format == "PNG"
    assert f.mode == ("L" if channels == 1 else "RGB")
    back = np.asarray(f)
  np.testing.assert_array_equal(back, img[..., 0] if channels == 1 else img)


def test_metric_writer_appends_jsonl_with_step_and_floats(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  w.write_scalars(10, {"loss": jnp.float32(0.25), "acc": np.float64(0.5)})
  w.write_scalars(20, {"loss": 0.125, "acc": 1})
  w.close()
  with open(tmp_path / "metrics.jsonl") as f:
    lines = [json.loads(line) for line in f]
  assert lines == [{"step": 10, "loss": 0.25, "acc": 0.5}, {"step": 20, "loss": 0.125, "acc": 1.0}]
  for r in lines:
    assert isinstance(r["step"], int)
    assert all(isinstance(v, float) for k, v in r.items() if k != "step")
  assert writers.read_metrics(w.path) == lines
  assert not os.path.exists(tmp_path / "tensorboard")


def test_truncate_after_drops_later_records(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  for step in (100, 200, 300, 400):
    w.write_scalars(step, {"loss": step / 1000})
  w.truncate_after(250)
  assert [r["step"] for r in writers.read_metrics(w.path)] == [100, 200]
  assert writers.read_metrics(w.path)[1]["loss"] == 0.2
  w.truncate_after(200)  # the boundary step is kept
  assert [r["step"] for r in writers.read_metrics(w.path)] == [100, 200]
  w.write_scalars(300, {"loss": 0.5})  # a resumed run appends after the kept records
  assert [r["step"] for r in writers.read_metrics(w.path)] == [100, 200, 300]
  assert not os.path.exists(w.path + ".tmp")


def test_truncate_after_without_a_file_and_read_missing(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  w.truncate_after(5)
  assert not os.path.exists(w.path)
  assert writers.read_metrics(str(tmp_path / "nothing.jsonl")) == []


def test_disabled_writer_writes_nothing(tmp_path):
  workdir = tmp_path / "run"
  w = writers.MetricWriter(str(workdir), enabled=False)
  w.write_scalars(1, {"loss": 1.0})
  assert w.write_grid(1, "samples", np.zeros((4, 2, 2, 1))) == ""
  w.flush()
  w.close()
  assert not os.path.exists(workdir)


def test_write_grid_writes_the_grid_png(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  images = np.linspace(0.0, 1.0, 4 * 5 * 5).reshape(4, 5, 5, 1)
  path = w.write_grid(1500, "samples", images, ncol=2)
  assert path == os.path.join(str(tmp_path), "samples", "samples_00001500.png")
  with Image.open(path) as f:
    back = np.asarray(f)
  np.testing.assert_array_equal(back, writers.image_grid(images, ncol=2)[..., 0])


def test_write_json_atomic_round_trip(tmp_path):
  path = str(tmp_path / "out" / "results.json")
  obj = {"step": 3, "test": {"d_loss": 0.5, "g_loss": 1.25}, "name": "gan"}
  writers.write_json(path, obj)
  with open(path) as f:
    assert json.load(f) == obj
  writers.write_json(path, {"step": 4})  # overwrites the whole file
  with open(path) as f:
    assert json.load(f) == {"step": 4}
  assert os.listdir(tmp_path / "out") == ["results.json"]  # no temporary left behind


def _tensorboard_view(workdir) -> tuple[dict, dict]:
  """What TensorBoard's Python loader shows of a workdir's event files: {tag: [(step, value)]} of
  the scalars and {tag: [(step, decoded uint8 image)]} of the images, in the order shown (a step
  shown twice appears twice)."""
  from tensorboard.backend.event_processing import event_accumulator

  acc = event_accumulator.EventAccumulator(os.path.join(workdir, "tensorboard"),
                                           size_guidance={"scalars": 0, "images": 0})
  acc.Reload()
  tags = acc.Tags()
  scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
  images = {}
  for t in tags["images"]:
    images[t] = []
    for e in acc.Images(t):
      with Image.open(io.BytesIO(e.encoded_image_string)) as f:
        images[t].append((e.step, np.asarray(f)))
      assert (e.height, e.width) == images[t][-1][1].shape[:2]
  return scalars, images


def test_tensorboard_events_hold_scalars_and_images(tmp_path):
  w = writers.MetricWriter(str(tmp_path))
  w.write_scalars(7, {"d_loss": 0.75}, jsonl=False)
  w.write_scalars(8, {"d_loss": 0.1, "g_loss": -3})
  grey = np.linspace(0.0, 1.0, 4 * 3 * 3).reshape(4, 3, 3, 1)
  rgb = np.random.default_rng(0).uniform(size=(2, 5, 4, 3))
  w.write_grid(8, "samples", grey)
  w.write_grid(9, "colour", rgb, ncol=1)
  w.flush()
  files = glob.glob(os.path.join(tmp_path, "tensorboard", "events.out.tfevents.*"))
  assert len(files) == 1 and os.path.getsize(files[0]) > 0
  scalars, images = _tensorboard_view(tmp_path)
  # Event files hold float32 scalars: 0.1 comes back as float32(0.1), the others exactly.
  assert scalars == {"d_loss": [(7, 0.75), (8, float(np.float32(0.1)))], "g_loss": [(8, -3.0)]}
  assert set(images) == {"samples", "colour"}
  assert [s for s, _ in images["samples"]] == [8] and [s for s, _ in images["colour"]] == [9]
  np.testing.assert_array_equal(images["samples"][0][1], writers.image_grid(grey)[..., 0])
  np.testing.assert_array_equal(images["colour"][0][1], writers.image_grid(rgb, ncol=1))
  assert [r["step"] for r in writers.read_metrics(w.path)] == [8]  # jsonl=False skipped step 7
  w.close()


def test_a_resumed_run_replaces_the_later_tensorboard_events(tmp_path):
  """A run that logged steps 10..40 and resumes from its step-20 checkpoint logs 30 and 40 again:
  TensorBoard shows steps 10 and 20 of the first run and 30 and 40 of the second, once each."""
  first = writers.MetricWriter(str(tmp_path))
  first.truncate_after(0)  # a new run starts at step 0: drops nothing, hides nothing of its own
  for step in (10, 20, 30, 40):
    first.write_scalars(step, {"loss": step / 8})
    first.write_grid(step, "samples", np.zeros((1, 2, 2, 1)))
  first.close()  # the run dies after step 40, its last checkpoint at step 20
  second = writers.MetricWriter(str(tmp_path))
  second.truncate_after(20)
  for step in (30, 40):
    second.write_scalars(step, {"loss": -step / 8})
    second.write_grid(step, "samples", np.ones((1, 2, 2, 1)))
  second.close()
  assert len(os.listdir(tmp_path / "tensorboard")) == 2
  scalars, images = _tensorboard_view(tmp_path)
  assert scalars == {"loss": [(10, 1.25), (20, 2.5), (30, -3.75), (40, -5.0)]}
  assert [s for s, _ in images["samples"]] == [10, 20, 30, 40]
  # The padding is white; the cells are black (first run) or white (second run).
  assert [int(x.min()) for _, x in images["samples"]] == [0, 0, 255, 255]
  np.testing.assert_array_equal(images["samples"][3][1],
                                writers.image_grid(np.ones((1, 2, 2, 1)))[..., 0])
  assert writers.read_metrics(second.path) == [
      {"step": 10, "loss": 1.25}, {"step": 20, "loss": 2.5}, {"step": 30, "loss": -3.75},
      {"step": 40, "loss": -5.0}]


def test_a_new_event_file_sorts_after_the_existing_ones(tmp_path):
  # TensorBoard reads a folder's event files in name order: a file stamped in the future (a
  # clock set back, or a run in the same second) must still come before the new one.
  logdir = tmp_path / "tensorboard"
  logdir.mkdir()
  stamp = int(time.time()) + 1000
  future = f"events.out.tfevents.{stamp:010d}.otherhost.1.0"
  (logdir / future).write_bytes(b"")
  w = writers.MetricWriter(str(tmp_path))
  w.close()
  names = sorted(os.listdir(logdir))
  assert len(names) == 2 and names[0] == future
  assert names[1].startswith(f"events.out.tfevents.{stamp + 1:010d}.")


def test_disabled_tensorboard_leaves_no_event_files_on_resume(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  w.write_scalars(1, {"loss": 1.0})
  w.truncate_after(0)
  assert writers.read_metrics(w.path) == []
  assert not os.path.exists(tmp_path / "tensorboard")
