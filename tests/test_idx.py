"""Raw IDX reading: file format checks, genjax's splits and shards, and agreement with TFDS."""

import gzip
import hashlib
import os

import numpy as np
import pytest

from genjax.data import idx
from genjax.data import images as image_data

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
needs_mnist = pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST not present")


def _write_idx(path, array, compress):
  header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  with (gzip.open if compress else open)(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _fake_dataset(tmp_path, num_train=10, num_test=4, compress=True):
  rs = np.random.RandomState(0)
  parts = {}
  for prefix, n in (("train", num_train), ("t10k", num_test)):
    images = rs.randint(0, 256, (n, 3, 2))
    labels = np.arange(n) % 10
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    parts[prefix] = (images, labels)
  return parts


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
  parts = _fake_dataset(tmp_path, compress=compress)
  images, labels = idx.read_split_files(str(tmp_path), "train")
  np.testing.assert_array_equal(images[..., 0], parts["train"][0])
  np.testing.assert_array_equal(labels, parts["train"][1])
  assert images.dtype == np.uint8 and images.shape == (10, 3, 2, 1) and labels.dtype == np.int32


def test_splits_and_shards(tmp_path):
  parts = _fake_dataset(tmp_path, num_train=10)
  train_images = parts["train"][0]
  tr, _ = idx.split_arrays(str(tmp_path), "train", 3, 0, 1)
  va, _ = idx.split_arrays(str(tmp_path), "validation", 3, 0, 1)
  np.testing.assert_array_equal(tr[..., 0], train_images[:7])
  np.testing.assert_array_equal(va[..., 0], train_images[7:])
  # 7 training examples over 3 processes: shards of 3, 2 and 2 that are the split in order.
  shards = [idx.split_arrays(str(tmp_path), "train", 3, i, 3)[0] for i in range(3)]
  assert [len(x) for x in shards] == [3, 2, 2]
  np.testing.assert_array_equal(np.concatenate(shards)[..., 0], train_images[:7])
  te, _ = idx.split_arrays(str(tmp_path), "test", 3, 0, 1)
  np.testing.assert_array_equal(te[..., 0], parts["t10k"][0])


def test_bad_files_and_arguments(tmp_path):
  _fake_dataset(tmp_path)
  with pytest.raises(ValueError, match="validation split is empty"):
    idx.split_arrays(str(tmp_path), "validation", 0, 0, 1)
  with pytest.raises(ValueError, match="unknown split"):
    idx.split_arrays(str(tmp_path), "dev", 0, 0, 1)
  with pytest.raises(FileNotFoundError, match="t10k-images"):
    idx.read_split_files(str(tmp_path / "missing"), "test")
  bad = tmp_path / "bad"
  bad.write_bytes(bytes([0, 0, 0x08, 1]) + np.asarray([5], ">u4").tobytes() + b"abc")
  with pytest.raises(ValueError, match="declares shape"):
    idx.read_idx(str(bad))
  with pytest.raises(ValueError, match="image_shape"):
    image_data.load_arrays("ignored", "test", image_shape=(28, 28, 1), idx_dir=str(tmp_path))


def _fingerprints(arrays):
  return sorted(hashlib.sha1(x.tobytes() + bytes([int(y)])).hexdigest()
                for x, y in zip(arrays.images, arrays.labels, strict=True))


@needs_mnist
def test_raw_mnist_holds_the_same_examples_as_tfds():
  """Same images and labels as the TFDS test split (TFDS stores them in another order)."""
  raw = image_data.load_arrays("mnist", "test", image_shape=(28, 28, 1), idx_dir=MNIST_DIR)
  tfds_split = image_data.load_arrays("mnist", "test", image_shape=(28, 28, 1))
  assert len(raw) == len(tfds_split) == 10_000
  assert _fingerprints(raw) == _fingerprints(tfds_split)


def test_truncated_download_is_one_line_naming_the_file(tmp_path):
  """A gzip cut short (an interrupted download) is a ValueError naming the file, not gzip's
  EOFError traceback."""
  _fake_dataset(tmp_path)
  path = tmp_path / "train-images-idx3-ubyte.gz"
  path.write_bytes(path.read_bytes()[:-12])
  with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is truncated or corrupt"):
    idx.read_split_files(str(tmp_path), "train")
