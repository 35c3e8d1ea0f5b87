"""Few labels (genjax.data.labelled): the balanced subset and the inputs that train on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data import labelled, pipeline
from genjax.data.splits import ArraySplit
from genjax.parallel import DataParallel


def _split(n: int = 300, num_classes: int = 10) -> ArraySplit:
  rs = np.random.RandomState(0)
  labels = np.arange(n, dtype=np.int32) % num_classes
  rs.shuffle(labels)
  # The image of example i is constant i / n: rows are identifiable after preprocessing.
  images = (np.arange(n, dtype=np.float32)[:, None, None, None] / n) * np.ones((1, 2, 2, 1),
                                                                                np.float32)
  return ArraySplit("train", {"image": images, "label": labels}, num_classes=num_classes)


def _row(images) -> np.ndarray:
  return np.rint(np.asarray(images)[:, 0, 0, 0] * 300).astype(int)


def test_balanced_subset_is_balanced_seeded_and_sorted():
  labels = _split().arrays["label"]
  a = labelled.balanced_subset(labels, 25, seed=3)
  assert len(a) == len(set(a.tolist())) == 25 and np.all(np.diff(a) > 0)
  # 25 over 10 classes: 3 of the first five classes, 2 of the others.
  assert np.bincount(labels[a], minlength=10).tolist() == [3] * 5 + [2] * 5
  assert np.array_equal(a, labelled.balanced_subset(labels, 25, seed=3))
  assert not np.array_equal(a, labelled.balanced_subset(labels, 25, seed=4))
  with pytest.raises(ValueError, match="class"):
    labelled.balanced_subset(labels, 310, seed=0)


def _input(semi_supervised: bool, subset, batch=20, labelled_batch=10):
  return labelled.LabelledInput(_split(), subset, batch, labelled_batch, semi_supervised,
                                jax.random.key(7), DataParallel("none"))


def test_semi_supervised_batches_draw_labels_only_from_the_subset():
  subset = labelled.balanced_subset(_split().arrays["label"], 30, seed=0)
  inp = _input(True, subset)
  assert inp.steps_per_epoch == 300 // 20
  assert set(inp.element_spec) == {"image", "labelled_image", "labelled_label"}
  draw = jax.jit(inp.draw)
  seen_unlabelled, seen_labelled = [], []
  for step in range(3):  # labelled epochs of 30 // 10 = 3 steps: each subset row once
    b = draw(jnp.int32(step), jax.random.key(7), *inp.args(step))
    rows = _row(b["labelled_image"])
    assert np.array_equal(np.asarray(b["labelled_label"]), _split().arrays["label"][rows])
    seen_labelled += rows.tolist()
    seen_unlabelled += _row(b["image"]).tolist()
  assert sorted(seen_labelled) == subset.tolist()
  assert len(set(seen_unlabelled)) == 60  # the first 60 rows of the epoch's order: all distinct
  # Batches are a function of (key, step): drawing step 1 again after step 2 gives step 1's.
  again = draw(jnp.int32(1), jax.random.key(7), *inp.args(1))
  first = draw(jnp.int32(1), jax.random.key(7), *_input(True, subset).args(1))
  assert np.array_equal(np.asarray(again["labelled_image"]), np.asarray(first["labelled_image"]))


def test_supervised_batches_come_from_the_subset_alone():
  subset = labelled.balanced_subset(_split().arrays["label"], 40, seed=1)
  inp = _input(False, subset, batch=20)
  assert inp.steps_per_epoch == 2 and set(inp.element_spec) == {"image", "label"}
  rows = [_row(jax.jit(inp.draw)(jnp.int32(s), jax.random.key(7), *inp.args(s))["image"])
          for s in range(2)]
  assert sorted(np.concatenate(rows).tolist()) == subset.tolist()


def test_labelled_batch_larger_than_the_subset_is_refused():
  subset = labelled.balanced_subset(_split().arrays["label"], 10, seed=0)
  with pytest.raises(ValueError, match="exceeds the 10 labelled"):
    _input(True, subset, labelled_batch=20)


def test_make_input_reads_the_config():
  import ml_collections

  from genjax import config as gconfig
  c = ml_collections.ConfigDict({"seed": 5, "data": gconfig.few_labels(
      gconfig.image_data("mnist", "unit", 20), 30, semi_supervised=True,
      labelled_batch_size=10)})
  inp = pipeline.make_input(c, DataParallel("none"), jax.random.key(0), _split())
  assert isinstance(inp, labelled.LabelledInput) and inp.labelled_batch == 10
  # label_seed unset: the run's seed draws the subset.
  expected = labelled.balanced_subset(_split().arrays["label"], 30, seed=5)
  assert np.array_equal(np.asarray(inp.args(0)[2]), expected)


def test_fit_family_fits_on_the_labelled_subset_only(tmp_path, tfds_data_dir):
  from conftest import REPO_ROOT

  from genjax import config as gconfig
  from genjax import train
  del tfds_data_dir
  c = gconfig.load(f"{REPO_ROOT}/experiments/configs/gaussian_nb.py:digits")
  c.unlock()
  c.data.num_labels, c.data.label_seed, c.train.progress = 50, 3, False
  results = train.train_and_evaluate(c, str(tmp_path))
  assert results["num_train"] == 50 and results["test"]["num_examples"] > 50
  record = (tmp_path / "metrics.jsonl").read_text()
  assert '"num_train": 50.0' in record
