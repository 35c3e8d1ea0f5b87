"""data.classes: a dataset's examples of some classes only, relabelled in the order listed."""

import os

import numpy as np
import pytest

from genjax import config as gconfig
from genjax.data import splits

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def test_select_classes_keeps_order_and_relabels_by_position():
  split = splits.ArraySplit("train", {"x": np.arange(8.0)[:, None],
                                      "label": np.array([0, 1, 2, 3, 2, 0, 3, 1], np.int32)},
                            num_classes=4, class_names=("a", "b", "c", "d"))
  out = splits.select_classes(split, [3, 0])
  np.testing.assert_array_equal(out.arrays["x"][:, 0], [0.0, 3.0, 5.0, 6.0])
  np.testing.assert_array_equal(out.arrays["label"], [1, 0, 1, 0])
  assert out.arrays["label"].dtype == np.int32
  assert (out.num_classes, out.class_names, len(out)) == (2, ("d", "a"), 4)
  for bad in ([], [1, 1], [4], [-1]):
    with pytest.raises(ValueError, match="data.classes must list distinct labels of 0..3"):
      splits.select_classes(split, bad)


def test_a_tabular_set_loads_its_classes_in_every_split():
  d = gconfig.dataset("iris")
  whole = {s: splits.load(d, s) for s in ("train", "test")}
  d.classes = (2, 0)
  for s, full in whole.items():
    part = splits.load(d, s)
    keep = np.isin(full.arrays["label"], [2, 0])
    np.testing.assert_array_equal(part.arrays["x"], full.arrays["x"][keep])
    np.testing.assert_array_equal(part.arrays["label"], (full.arrays["label"][keep] == 0) * 1)
    assert (part.num_classes, part.class_names) == (2, ("virginica", "setosa"))


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST not present")
def test_an_image_pair_from_raw_idx_files():
  d = gconfig.dataset("mnist")
  d.idx_dir = MNIST_DIR
  full = splits.load(d, "test")
  d.classes = (3, 5)
  pair = splits.load(d, "test")
  keep = np.isin(full.arrays["label"], [3, 5])
  assert len(pair) == int(keep.sum()) == 1902  # MNIST's test set: 1,010 threes, 892 fives
  np.testing.assert_array_equal(pair.arrays["image"], full.arrays["image"][keep])
  np.testing.assert_array_equal(pair.arrays["label"], full.arrays["label"][keep] == 5)
  assert (pair.num_classes, pair.class_names) == (2, ("3", "5"))


def test_sequences_and_streamed_input_refuse_classes():
  d = gconfig.dataset("conll2000")
  d.classes = (0, 1)
  with pytest.raises(ValueError, match="holds tagged sequences"):
    splits.load(d, "train")
  from genjax.data import pipeline
  from genjax.parallel import DataParallel
  c = gconfig.fit_config("classical", gconfig.dataset("mnist"))
  c.data.in_memory, c.data.classes = False, (3, 5)
  with pytest.raises(ValueError, match="data.classes needs the training split in memory"):
    pipeline.make_input(c, DataParallel("none"), None)
