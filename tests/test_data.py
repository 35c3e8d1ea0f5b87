"""Tests of genjax.data.images: splits, shards, errors, preprocessing and the device sampler."""

import os
import socket
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data import idx
from genjax.data import images as image_data

# Prepared TFDS data lives next to the repository; CI sets TFDS_DATA_DIR=../shared/tfds.
REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TFDS_DATA_DIR", str((REPO_ROOT.parent / "shared" / "tfds").resolve()))

N_DEV = 4


def _hashes(images: np.ndarray) -> set[bytes]:
  return {x.tobytes() for x in images}


@pytest.fixture(scope="module")
def splits():
  """MNIST's three genjax splits, read once per module."""
  return {s: image_data.load_arrays("mnist", s, validation_size=5000, image_shape=(28, 28, 1))
          for s in image_data.SPLITS}


# ----------------------------------------------------------------------------- splits

def test_split_sizes_and_dtypes(splits):
  assert {s: len(a) for s, a in splits.items()} == {"train": 55000, "validation": 5000,
                                                     "test": 10000}
  for a in splits.values():
    assert a.images.dtype == np.uint8 and a.images.shape[1:] == (28, 28, 1)
    assert a.labels.dtype == np.int32 and a.labels.shape == (len(a),)
    assert set(np.unique(a.labels)) == set(range(10))
    assert a.images.max() == 255 and a.images.min() == 0


def test_splits_are_the_deterministic_ends_of_tfds_train(splits):
  # train = the first 55,000 of TFDS's train split, validation = its last 5,000, in file order.
  # Reading the whole 60,000 in twelve 5,000-example shards checks that cheaply.
  def full_train_shard(i):
    return image_data.load_arrays("mnist", "train", process_index=i, process_count=12)

  first, eleventh, last = full_train_shard(0), full_train_shard(10), full_train_shard(11)
  np.testing.assert_array_equal(splits["train"].images[:5000], first.images)
  np.testing.assert_array_equal(splits["train"].images[50000:], eleventh.images)
  np.testing.assert_array_equal(splits["train"].labels[50000:], eleventh.labels)
  np.testing.assert_array_equal(splits["validation"].images, last.images)
  np.testing.assert_array_equal(splits["validation"].labels, last.labels)


def test_splits_are_disjoint(splits):
  # All 70,000 MNIST images are distinct, so disjoint content means disjoint examples.
  h = {s: _hashes(a.images) for s, a in splits.items()}
  assert len(h["train"]) == 55000 and len(h["validation"]) == 5000 and len(h["test"]) == 10000
  assert not h["train"] & h["validation"]
  assert not h["train"] & h["test"]
  assert not h["validation"] & h["test"]


def test_loading_twice_gives_identical_arrays(splits):
  again = image_data.load_arrays("mnist", "validation", validation_size=5000)
  np.testing.assert_array_equal(again.images, splits["validation"].images)
  np.testing.assert_array_equal(again.labels, splits["validation"].labels)


@pytest.mark.parametrize("size,lengths", [(3000, [1000, 1000, 1000]), (3002, [1001, 1001, 1000])])
def test_process_shards_are_disjoint_and_cover_the_split(size, lengths):
  whole = image_data.load_arrays("mnist", "validation", validation_size=size)
  shards = [image_data.load_arrays("mnist", "validation", validation_size=size,
                                   process_index=i, process_count=3) for i in range(3)]
  assert [len(s) for s in shards] == lengths
  hashes = [_hashes(s.images) for s in shards]
  for i in range(3):
    for j in range(i + 1, 3):
      assert not hashes[i] & hashes[j]
  assert set().union(*hashes) == _hashes(whole.images)
  # even_splits cuts contiguous ranges: in process order the shards are the split itself.
  np.testing.assert_array_equal(np.concatenate([s.images for s in shards]), whole.images)
  np.testing.assert_array_equal(np.concatenate([s.labels for s in shards]), whole.labels)


def test_split_spec():
  assert image_data.split_spec(60000, "train", 5000) == "train[:55000]"
  assert image_data.split_spec(60000, "validation", 5000) == "train[55000:]"
  assert image_data.split_spec(60000, "test", 5000) == "test"
  assert image_data.split_spec(60000, "train", 0) == "train[:60000]"


@pytest.mark.parametrize("split,validation_size,match", [
    ("valid", 5000, "unknown split 'valid'"),
    ("training", 0, "unknown split"),
    ("validation", 0, "validation split is empty"),
    ("train", 60000, "validation_size=60000"),
    ("train", -1, "validation_size=-1"),
])
def test_bad_split_raises(split, validation_size, match):
  with pytest.raises(ValueError, match=match):
    image_data.split_spec(60000, split, validation_size)


def test_unknown_split_raises_from_load_arrays():
  with pytest.raises(ValueError, match="unknown split 'dev'"):
    image_data.load_arrays("mnist", "dev")


def test_wrong_image_shape_raises_naming_both_shapes():
  with pytest.raises(ValueError, match=r"\(28, 28, 1\)") as info:
    image_data.load_arrays("mnist", "test", image_shape=(32, 32, 3))
  assert "(32, 32, 3)" in str(info.value)
  assert "mnist" in str(info.value)


# ----------------------------------------------------------------------------- without TensorFlow

# The project's raw copies of MNIST and Fashion-MNIST (IDX files), which TFDS's were built from.
IDX_MNIST = os.path.join(image_data.PROJECT_DATA_DIR, "mnist")
IDX_FASHION = os.path.join(image_data.PROJECT_DATA_DIR, "fashion_mnist")


def test_tfds_order_is_tfds_hashing_of_the_example_indices():
  from tensorflow_datasets.core import hashing
  for part in ("train", "test"):
    want = sorted(range(1000), key=hashing.Hasher(part).hash_key)
    np.testing.assert_array_equal(idx.tfds_order(1000, part), want)
  assert sorted(idx.tfds_order(1000, "train")) == list(range(1000))


def test_idx_files_in_tfds_order_are_the_tfds_splits(splits):
  """The reader without TensorFlow gives TFDS's arrays: every split, every example in place."""
  for s in image_data.SPLITS:
    images, labels = idx.split_arrays(IDX_MNIST, s, 5000, 0, 1, order="tfds")
    np.testing.assert_array_equal(images, splits[s].images)
    np.testing.assert_array_equal(labels, splits[s].labels)


def test_idx_file_order_holds_the_same_examples_in_another_order(splits):
  """data.idx_dir reads the files in their own order: the same test examples, not TFDS's order."""
  tested = image_data.load_arrays("mnist", "test", idx_dir=IDX_MNIST)
  assert _hashes(tested.images) == _hashes(splits["test"].images)
  assert not np.array_equal(tested.labels, splits["test"].labels)
  order = idx.tfds_order(10000, "test")
  np.testing.assert_array_equal(tested.images[order], splits["test"].images)


def test_fashion_mnist_shards_agree_between_the_readers():
  for i in range(3):
    want = image_data.load_arrays("fashion_mnist", "test", process_index=i, process_count=3)
    images, labels = idx.split_arrays(IDX_FASHION, "test", 0, i, 3, order="tfds")
    np.testing.assert_array_equal(images, want.images)
    np.testing.assert_array_equal(labels, want.labels)


@pytest.fixture
def without_tensorflow(monkeypatch):
  """genjax.data.images as it runs where TensorFlow is not installed: TFDS's readers fail."""

  def no_tfds():
    raise ModuleNotFoundError("No module named 'tensorflow'")

  monkeypatch.setattr(image_data, "_import_tfds", no_tfds)


def test_without_tensorflow_the_project_idx_copy_serves(without_tensorflow, splits):
  assert not image_data.has_tensorflow()
  got = image_data.load_arrays("mnist", "validation", validation_size=5000,
                               image_shape=(28, 28, 1))
  np.testing.assert_array_equal(got.images, splits["validation"].images)
  np.testing.assert_array_equal(got.labels, splits["validation"].labels)
  with pytest.raises(ValueError, match=r"\(32, 32, 3\) \(data.image_shape\)"):
    image_data.load_arrays("mnist", "test", image_shape=(32, 32, 3))


def test_without_tensorflow_a_missing_dataset_is_one_line(without_tensorflow, monkeypatch,
                                                          tmp_path):
  monkeypatch.setattr(image_data, "PROJECT_DATA_DIR", str(tmp_path))
  with pytest.raises(image_data.DatasetNotFoundError) as info:
    image_data.load_arrays("mnist", "test")
  msg = str(info.value)
  assert "'mnist'" in msg and "data.idx_dir" in msg and "pip install -e '.[tf]'" in msg
  assert str(tmp_path / "mnist") in msg and "\n" not in msg


def test_without_tensorflow_streaming_names_the_tf_extra(without_tensorflow):
  with pytest.raises(image_data.TensorFlowMissingError, match=r"data.in_memory = False.*\[tf\]"):
    image_data.tf_dataset("mnist", "train", batch_size=8, seed=0, epoch=0)
  with pytest.raises(ImportError, match=r"'mnist'.*\[tf\]"):
    image_data.builder("mnist")


@pytest.fixture
def no_network(monkeypatch):
  """Record (and refuse) every attempt to open a network connection."""
  attempts = []

  def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network access in a test")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  return attempts


@pytest.mark.tf
def test_missing_dataset_raises_one_clear_error(no_network):
  start = time.perf_counter()
  with pytest.raises(image_data.DatasetNotFoundError) as info:
    image_data.load_arrays("cifar10", "train", download=False)
  elapsed = time.perf_counter() - start
  msg = str(info.value)
  assert "'cifar10'" in msg and "TFDS_DATA_DIR" in msg
  assert "downloading is off" in msg
  assert isinstance(info.value, FileNotFoundError)
  assert elapsed < 10.0
  assert no_network == []


@pytest.mark.tf
def test_empty_data_dir_raises_without_trying_to_download(tmp_path, no_network):
  # An explicit data_dir means "read prepared data from there": no download by default.
  start = time.perf_counter()
  with pytest.raises(image_data.DatasetNotFoundError) as info:
    image_data.load_arrays("mnist", "test", data_dir=str(tmp_path))
  elapsed = time.perf_counter() - start
  msg = str(info.value)
  assert "'mnist'" in msg and str(tmp_path) in msg and "TFDS_DATA_DIR" in msg
  assert elapsed < 10.0
  assert no_network == []


@pytest.mark.tf
def test_offline_without_a_data_folder_fails_at_once_in_one_line(monkeypatch, tmp_path,
                                                                 no_network):
  """No TFDS_DATA_DIR, the dataset nowhere prepared, no network: one connection attempt, then one
  line saying what to set (TFDS would otherwise retry its download for minutes)."""
  monkeypatch.delenv("TFDS_DATA_DIR")
  for proxy in ("HTTPS_PROXY", "https_proxy"):
    monkeypatch.delenv(proxy, raising=False)
  monkeypatch.setattr(image_data, "PROJECT_TFDS_DIR", str(tmp_path / "nothing"))
  start = time.perf_counter()
  with pytest.raises(image_data.DatasetNotFoundError) as info:
    image_data.builder("kmnist")
  msg = str(info.value)
  assert "'kmnist'" in msg and "set TFDS_DATA_DIR" in msg and "data.idx_dir" in msg
  assert "\n" not in msg and len(no_network) == 1
  assert time.perf_counter() - start < 10.0


@pytest.mark.tf
def test_the_project_data_folder_serves_when_none_is_set(monkeypatch, tfds_data_dir):
  """The README's main job, typed as written (no TFDS_DATA_DIR), finds the prepared datasets
  beside the checkout."""
  from conftest import REPO_ROOT
  assert Path(image_data.PROJECT_TFDS_DIR) == REPO_ROOT.parent / "shared" / "tfds"
  monkeypatch.delenv("TFDS_DATA_DIR")
  monkeypatch.setattr(image_data, "PROJECT_TFDS_DIR", str(tfds_data_dir))
  assert image_data.builder("mnist").is_prepared()


@pytest.mark.tf
def test_unknown_dataset_name_raises():
  with pytest.raises(image_data.DatasetNotFoundError, match="no_such_dataset"):
    image_data.builder("no_such_dataset")


def test_data_dir_and_download_resolution(monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", "/some/dir")
  assert image_data.data_dir_and_download(None, None) == ("/some/dir", False)
  assert image_data.data_dir_and_download("/other", None) == ("/other", False)
  assert image_data.data_dir_and_download(None, True) == ("/some/dir", True)
  monkeypatch.delenv("TFDS_DATA_DIR")
  assert image_data.data_dir_and_download(None, None) == (None, True)


# ----------------------------------------------------------------------------- preprocessing

ALL_VALUES = jnp.arange(256, dtype=jnp.uint8).reshape(1, 16, 16, 1)


def test_preprocess_unit_and_symmetric_exact_values():
  unit = np.asarray(image_data.preprocess(ALL_VALUES, "unit"))
  sym = np.asarray(image_data.preprocess(ALL_VALUES, "symmetric"))
  assert unit.dtype == np.float32 and sym.dtype == np.float32
  assert unit.shape == (1, 16, 16, 1)
  assert unit.flat[0] == 0.0 and unit.flat[255] == 1.0
  assert sym.flat[0] == -1.0 and sym.flat[255] == 1.0
  assert 0.0 <= unit.min() and unit.max() <= 1.0
  assert -1.0 <= sym.min() and sym.max() <= 1.0
  np.testing.assert_allclose(unit.ravel(), np.arange(256) / 255.0, rtol=1e-6)
  np.testing.assert_allclose(sym.ravel(), 2.0 * np.arange(256) / 255.0 - 1.0, atol=1e-6)


def test_preprocess_binarize_fixed_thresholds_at_half():
  b = np.asarray(image_data.preprocess(ALL_VALUES, "binarize_fixed")).ravel()
  assert set(np.unique(b)) == {0.0, 1.0}
  np.testing.assert_array_equal(b, (np.arange(256) >= 128).astype(np.float32))  # 127/255 < 0.5


def test_preprocess_binarize_dynamic_is_bernoulli_of_the_intensity(splits):
  imgs = jnp.asarray(splits["test"].images[:16])
  x = np.asarray(imgs, np.float64) / 255.0
  n_draws = 100
  keys = jax.random.split(jax.random.key(0), n_draws)
  draws = np.asarray(jax.jit(jax.vmap(
      lambda k: image_data.preprocess(imgs, "binarize_dynamic", k)))(keys))
  assert draws.shape == (n_draws, 16, 28, 28, 1)
  assert set(np.unique(draws)) == {0.0, 1.0}
  freq = draws.mean(0)
  # Per pixel: sd <= 0.5 / sqrt(100) = 0.05. Overall: sd <= 0.5 / sqrt(100 * 12544) ~ 4.5e-4.
  assert np.abs(freq - x).max() < 0.27
  assert abs(freq.mean() - x.mean()) < 3e-3
  # Black pixels are always 0, white ones always 1.
  assert np.all(draws[:, x == 0.0] == 0.0)
  assert np.all(draws[:, x == 1.0] == 1.0)
  # Different keys, different images; the same key, the same image.
  assert not np.array_equal(draws[0], draws[1])
  np.testing.assert_array_equal(
      draws[3], image_data.preprocess(imgs, "binarize_dynamic", keys[3]))


def test_preprocess_errors():
  with pytest.raises(ValueError, match="needs a key"):
    image_data.preprocess(ALL_VALUES, "binarize_dynamic")
  with pytest.raises(ValueError, match="unknown preprocess mode 'gray'"):
    image_data.preprocess(ALL_VALUES, "gray")


def test_postprocess_inverts_symmetric_and_clips():
  unit = image_data.preprocess(ALL_VALUES, "unit")
  back = image_data.postprocess(image_data.preprocess(ALL_VALUES, "symmetric"), "symmetric")
  np.testing.assert_allclose(back, unit, atol=1e-6)
  np.testing.assert_array_equal(image_data.postprocess(unit, "unit"), unit)
  np.testing.assert_array_equal(
      image_data.postprocess(jnp.array([-0.5, 0.25, 1.5]), "unit"), [0.0, 0.25, 1.0])
  np.testing.assert_array_equal(
      image_data.postprocess(jnp.array([-3.0, 0.0, 3.0]), "symmetric"), [0.0, 0.5, 1.0])


# ----------------------------------------------------------------------------- DeviceSampler

N_FAKE = 103  # not a multiple of the batch: the remainder is dropped


def _fake_data():
  """Example i is an image filled with 2i, labelled i, so a batch says which examples it holds."""
  labels = jnp.arange(N_FAKE, dtype=jnp.int32)
  images = jnp.broadcast_to((2 * labels).astype(jnp.uint8)[:, None, None, None],
                            (N_FAKE, 3, 3, 1))
  return images, labels


def _epoch_labels(sampler, images, labels, key, epoch):
  batch = jax.jit(sampler.batch)
  perm = sampler.permutation(key, epoch)
  first = epoch * sampler.steps_per_epoch
  return [np.asarray(batch(images, labels, perm, jnp.int32(s), key)["label"])
          for s in range(first, first + sampler.steps_per_epoch)]


def test_sampler_epoch_is_a_permutation():
  images, labels = _fake_data()
  sampler = image_data.DeviceSampler(N_FAKE, 12)
  assert sampler.steps_per_epoch == 8  # 103 // 12, remainder of 7 dropped
  key = jax.random.key(0)
  batches = _epoch_labels(sampler, images, labels, key, 0)
  assert all(b.shape == (12,) for b in batches)
  seen = np.concatenate(batches)
  assert len(np.unique(seen)) == 96  # every visited example exactly once
  assert set(seen) <= set(range(N_FAKE))
  np.testing.assert_array_equal(seen, np.asarray(sampler.permutation(key, 0))[:96])
  np.testing.assert_array_equal(np.sort(np.asarray(sampler.permutation(key, 0))),
                                np.arange(N_FAKE))


def test_sampler_batch_holds_the_images_of_its_labels():
  images, labels = _fake_data()
  sampler = image_data.DeviceSampler(N_FAKE, 12, "unit")
  key = jax.random.key(1)
  b = sampler.batch(images, labels, sampler.permutation(key, 0), jnp.int32(3), key)
  assert b["image"].shape == (12, 3, 3, 1) and b["image"].dtype == jnp.float32
  expected = np.asarray(2 * b["label"], np.float32) / 255.0
  np.testing.assert_allclose(b["image"][:, 1, 1, 0], expected, rtol=1e-6)


def test_sampler_is_a_pure_function_of_key_and_step_and_reshuffles_each_epoch():
  images, labels = _fake_data()
  sampler = image_data.DeviceSampler(N_FAKE, 12)
  key = jax.random.key(2)
  e0 = _epoch_labels(sampler, images, labels, key, 0)
  np.testing.assert_array_equal(np.concatenate(e0),
                                np.concatenate(_epoch_labels(sampler, images, labels, key, 0)))
  e1 = _epoch_labels(sampler, images, labels, key, 1)
  assert not np.array_equal(np.concatenate(e0), np.concatenate(e1))
  assert len(np.unique(np.concatenate(e1))) == 96
  other = _epoch_labels(sampler, images, labels, jax.random.key(3), 0)
  assert not np.array_equal(np.concatenate(e0), np.concatenate(other))


@pytest.mark.parametrize("mode", ["unit", "binarize_dynamic"])
def test_sampler_on_simulated_devices_equals_one_device(mode):
  images, labels = _fake_data()
  sampler = image_data.DeviceSampler(N_FAKE, 12, mode)
  key = jax.random.key(4)
  step = jnp.int32(13)  # epoch 1, step 5 of it
  perm = sampler.permutation(key, 13 // sampler.steps_per_epoch)
  one = sampler.batch(images, labels, perm, step, key)
  per_dev = jax.jit(jax.vmap(lambda _: sampler.batch(images, labels, perm, step, key, "i"),
                             axis_name="i"))(jnp.arange(N_DEV))
  assert per_dev["image"].shape == (N_DEV, 12 // N_DEV, 3, 3, 1)
  for k in ("image", "label"):
    np.testing.assert_array_equal(per_dev[k].reshape(one[k].shape), one[k])
  if mode == "binarize_dynamic":
    assert set(np.unique(one["image"])) == {0.0, 1.0}


def test_sampler_rejects_bad_arguments():
  with pytest.raises(ValueError, match="batch size 200 exceeds the 103 examples"):
    image_data.DeviceSampler(N_FAKE, 200)
  with pytest.raises(ValueError, match="unknown preprocess mode"):
    image_data.DeviceSampler(N_FAKE, 10, "gray")


# ----------------------------------------------------------------------------- tf_dataset

def _two_batches(seed: int, epoch: int):
  import tensorflow_datasets as tfds
  ds = image_data.tf_dataset("mnist", "validation", batch_size=8, seed=seed, epoch=epoch,
                             validation_size=1000, image_shape=(28, 28, 1))
  return list(tfds.as_numpy(ds.take(2)))


@pytest.mark.tf
def test_tf_dataset_is_deterministic_for_seed_and_epoch():
  first = _two_batches(0, 0)
  assert len(first) == 2
  for b in first:
    assert b["image"].shape == (8, 28, 28, 1) and b["image"].dtype == np.uint8
    assert b["label"].shape == (8,)
  again = _two_batches(0, 0)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
  next_epoch = _two_batches(0, 1)
  assert not np.array_equal(first[0]["image"], next_epoch[0]["image"])
  # The batches come from the split, with their own labels.
  split = image_data.load_arrays("mnist", "validation", validation_size=1000)
  label_of = {x.tobytes(): y for x, y in zip(split.images, split.labels, strict=True)}
  for b in first + next_epoch:
    assert [label_of[x.tobytes()] for x in b["image"]] == list(b["label"])
  # Batches within an epoch hold distinct examples.
  assert len(_hashes(np.concatenate([b["image"] for b in first]))) == 16


@pytest.mark.tf
def test_tf_dataset_orders_of_different_seeds_are_not_shifted_epochs():
  # Run seed 1's first epoch must not be run seed 0's second epoch.
  a, b = _two_batches(0, 1), _two_batches(1, 0)
  assert not np.array_equal(a[0]["image"], b[0]["image"])
