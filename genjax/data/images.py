"""Image datasets through TensorFlow Datasets or raw IDX files: deterministic splits,
per-process shards, preprocessing on the device, and an in-memory sampler that draws shuffled
batches there.

Splits: `train` is TFDS's train split less its last `validation_size` examples,
`validation` is those last examples, `test` is TFDS's test split. Multi-host runs
give each process an even, disjoint shard of the split (`tfds.even_splits`).

Reading TFDS's prepared files and streaming through tf.data need TensorFlow (the `tf` extra).
Without it, a split is read from IDX files (genjax.data.idx): `data.idx_dir`, else the
project's raw copy `PROJECT_DATA_DIR/<name>`, the latter in the order of TFDS's prepared copy
so that a config gives the same arrays with or without TensorFlow.
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from genjax import rng
from genjax.data import idx
from genjax.parallel import device_index

SPLITS = ("train", "validation", "test")
PREPROCESS_MODES = ("unit", "symmetric", "binarize_dynamic", "binarize_fixed", "none",
                    "quantize")


class DatasetNotFoundError(FileNotFoundError):
  """A dataset that is neither prepared in the data directory nor downloadable."""


TF_EXTRA = "pip install -e '.[tf]'"


class TensorFlowMissingError(ImportError, ValueError):
  """A setting that needs TensorFlow (the `tf` extra) where it is not installed: an ImportError,
  and a ValueError so that the scripts report it in one line like any other bad setting."""


def _import_tfds():
  # TensorFlow is only needed for reading TFDS files: keep it quiet and off the accelerators.
  # It is imported first, so that without it nothing of TFDS's reading starts (TFDS would print
  # a banner about the missing TensorFlow before failing).
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")
  import tensorflow_datasets as tfds
  return tfds


def has_tensorflow() -> bool:
  """Whether TensorFlow imports (it is then imported, as TFDS's readers would)."""
  try:
    _import_tfds()
  except ImportError:
    return False
  return True


def require_tensorflow(what: str) -> None:
  """Raise TensorFlowMissingError, one line naming `what` needs it and the `tf` extra, unless
  TensorFlow imports."""
  if not has_tensorflow():
    raise TensorFlowMissingError(f"{what} needs TensorFlow, which is not installed: "
                                 f"{TF_EXTRA}")


# Where the project keeps prepared datasets beside a checkout (`../shared/tfds`): used when
# neither `data.data_dir` nor TFDS_DATA_DIR is set and TFDS's own folder lacks the dataset.
PROJECT_TFDS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), "shared", "tfds")
TFDS_DEFAULT_DIR = os.path.expanduser("~/tensorflow_datasets")
# Where the project keeps raw datasets beside a checkout (`../shared/data/<name>`): the IDX files
# read without TensorFlow when `data.idx_dir` is not set.
PROJECT_DATA_DIR = os.path.join(os.path.dirname(PROJECT_TFDS_DIR), "data")
# The host TFDS downloads MNIST-like datasets from; probed once before a download so that an
# offline machine fails at once instead of retrying for minutes.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def data_dir_and_download(data_dir: str | None, download: bool | None) -> tuple[str | None, bool]:
  """Resolve where TFDS data lives and whether a missing dataset may be downloaded.

  Setting TFDS_DATA_DIR (or passing `data_dir`) means "read prepared data from
  there": genjax then never tries the network unless `download=True` is explicit.
  """
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  if download is None:
    download = data_dir is None
  return data_dir, download


def _check_online(name: str) -> None:
  """Fail in one line, at once, when the download host (or the HTTPS proxy) cannot be
  reached."""
  import socket
  import urllib.parse
  proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
  host = DOWNLOAD_HOST
  if proxy:
    url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = (url.hostname, url.port or 80)
  try:
    socket.create_connection(host, timeout=5).close()
  except OSError as e:
    raise DatasetNotFoundError(
        f"dataset {name!r} is not prepared and cannot be downloaded ({host[0]} is unreachable: "
        f"{e.strerror or e}): set TFDS_DATA_DIR to a folder of prepared datasets, or "
        "data.idx_dir to the raw IDX files") from None


def _remove_incomplete(b) -> None:
  """Delete what an unfinished download left (TFDS's `incomplete.*` folders)."""
  import glob
  import shutil
  root = os.path.dirname(str(b.data_dir))
  for path in glob.glob(os.path.join(root, "incomplete.*")) + glob.glob(
      os.path.join(os.path.dirname(root), "incomplete.*")):
    shutil.rmtree(path, ignore_errors=True)


def builder(name: str, data_dir: str | None = None, download: bool | None = None):
  """A prepared TFDS builder for `name`, downloading it only where allowed.

  With no data folder given (neither `data_dir` nor TFDS_DATA_DIR), TFDS's default folder is
  used, else the project's (PROJECT_TFDS_DIR) when it holds the dataset, else the dataset is
  downloaded, after checking that the download host is reachable.

  Raises:
    DatasetNotFoundError: the dataset is not prepared and cannot be downloaded,
      with one message naming the dataset and TFDS_DATA_DIR.
    TensorFlowMissingError: TensorFlow is not installed.
  """
  require_tensorflow(f"reading TFDS's copy of dataset {name!r}")
  tfds = _import_tfds()
  explicit = data_dir or os.environ.get("TFDS_DATA_DIR")
  if not explicit and not os.path.isdir(os.path.join(TFDS_DEFAULT_DIR, name)) and os.path.isdir(
      os.path.join(PROJECT_TFDS_DIR, name)):
    return builder(name, PROJECT_TFDS_DIR, False)  # (without TFDS warning about its own folder)
  data_dir, download = data_dir_and_download(data_dir, download)
  where = data_dir or "the default TFDS data directory (~/tensorflow_datasets)"
  hint = (f"Prepare it there on a connected machine (`tfds build {name}`) or point "
          f"TFDS_DATA_DIR at a directory that holds it.")
  try:
    b = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # unknown name, or a registry/import failure inside tfds
    raise DatasetNotFoundError(f"dataset {name!r} is not known to TFDS: {e}") from None
  if b.is_prepared():
    return b
  if not explicit and os.path.isdir(os.path.join(PROJECT_TFDS_DIR, name)):
    return builder(name, PROJECT_TFDS_DIR, False)
  if not download:
    raise DatasetNotFoundError(
        f"dataset {name!r} is not prepared in {where} (TFDS_DATA_DIR="
        f"{os.environ.get('TFDS_DATA_DIR')!r}) and downloading is off. {hint}")
  _check_online(name)
  try:
    b.download_and_prepare()
  except Exception as e:
    _remove_incomplete(b)
    raise DatasetNotFoundError(
        f"dataset {name!r} is not in {where} and could not be downloaded "
        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). {hint}") from None
  return b


def split_spec(num_train: int, split: str, validation_size: int) -> str:
  """The TFDS split string of one of genjax's deterministic splits."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  if not 0 <= validation_size < num_train:
    raise ValueError(f"validation_size={validation_size} must be in [0, {num_train})")
  if split == "train":
    return f"train[:{num_train - validation_size}]"
  if split == "validation":
    if validation_size == 0:
      raise ValueError("the validation split is empty: set data.validation_size > 0")
    return f"train[{num_train - validation_size}:]"
  return "test"


@dataclasses.dataclass(frozen=True)
class ImageArrays:
  """A whole split in host memory: uint8 images (N, H, W, C) and int32 labels (N,)."""

  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


def _process_split(tfds, spec: str, process_index: int | None, process_count: int | None):
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if process_count == 1:
    return spec
  # Contiguous ranges in process order, the remainder spread over the first ones: together the
  # shards are the split itself.
  return tfds.even_splits(spec, n=process_count, drop_remainder=False)[process_index]


def _check_shape(name: str, b, image_shape) -> None:
  shape = tuple(b.info.features["image"].shape)
  if image_shape is not None and tuple(image_shape) != shape:
    raise ValueError(f"dataset {name!r} has images of shape {shape}, but the config expects "
                     f"{tuple(image_shape)} (data.image_shape)")


def load_arrays(name: str, split: str, *, validation_size: int = 0,
                image_shape: tuple[int, ...] | None = None, data_dir: str | None = None,
                download: bool | None = None, process_index: int | None = None,
                process_count: int | None = None, idx_dir: str | None = None) -> ImageArrays:
  """Read one split of an image dataset into memory (this process's shard of it).

  The dataset is TFDS's `name`, or, when `idx_dir` is given, the raw IDX files in
  that directory (genjax.data.idx, in file order; no TensorFlow needed). Without TensorFlow,
  the IDX files in PROJECT_DATA_DIR/<name>, in the order of TFDS's copy (the same arrays).

  Raises:
    DatasetNotFoundError: as `builder`; without TensorFlow, where neither `idx_dir` nor
      PROJECT_DATA_DIR holds the dataset (one line naming the dataset, data.idx_dir and the
      `tf` extra).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  fallback = not idx_dir and not has_tensorflow()
  if fallback:
    idx_dir = os.path.join(PROJECT_DATA_DIR, name)
  if idx_dir:
    try:
      images, labels = idx.split_arrays(idx_dir, split, validation_size, process_index,
                                        process_count, "tfds" if fallback else "file")
    except FileNotFoundError as e:
      if not fallback:
        raise
      raise DatasetNotFoundError(
          f"dataset {name!r} cannot be read: TensorFlow is not installed for TFDS's copy "
          f"({TF_EXTRA}) and there is {e}; set data.idx_dir to a folder of its IDX "
          "files") from None
    if image_shape is not None and tuple(image_shape) != images.shape[1:]:
      raise ValueError(f"{idx_dir} has images of shape {images.shape[1:]}, but the config "
                       f"expects {tuple(image_shape)} (data.image_shape)")
    return ImageArrays(images=images, labels=labels)
  tfds = _import_tfds()
  b = builder(name, data_dir, download)
  _check_shape(name, b, image_shape)
  spec = split_spec(b.info.splits["train"].num_examples, split, validation_size)
  ds = b.as_dataset(split=_process_split(tfds, spec, process_index, process_count),
                    batch_size=-1, shuffle_files=False)
  arrays = tfds.as_numpy(ds)
  images = np.asarray(arrays["image"], np.uint8)
  # Datasets without a class label (celeb_a has attributes instead) get label -1.
  labels = arrays.get("label", np.full(len(images), -1))
  return ImageArrays(images=images, labels=np.asarray(labels, np.int32))


def tf_dataset(name: str, split: str, *, batch_size: int, seed: int, epoch: int,
               validation_size: int = 0, image_shape: tuple[int, ...] | None = None,
               data_dir: str | None = None, download: bool | None = None,
               process_index: int | None = None, process_count: int | None = None):
  """A streamed epoch of uint8 batches for datasets too large to hold in memory.

  The order is a pure function of (seed, epoch), so a resumed run can skip to
  where it stopped with `.skip(steps_done_in_epoch)`. Needs TensorFlow (the `tf` extra).
  """
  require_tensorflow("streamed input (data.in_memory = False)")
  tfds = _import_tfds()
  import tensorflow as tf
  b = builder(name, data_dir, download)
  _check_shape(name, b, image_shape)
  spec = split_spec(b.info.splits["train"].num_examples, split, validation_size)
  # One seed per (seed, epoch) pair: `seed + epoch` would give run seed s + 1 the epoch
  # orders of run seed s shifted by one epoch.
  epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
  read_config = tfds.ReadConfig(shuffle_seed=epoch_seed, interleave_cycle_length=1)
  ds = b.as_dataset(split=_process_split(tfds, spec, process_index, process_count),
                    shuffle_files=True, read_config=read_config)
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options).map(
      lambda ex: {"image": ex["image"], "label": ex.get("label", tf.constant(-1, tf.int64))})
  ds = ds.shuffle(16 * batch_size, seed=epoch_seed, reshuffle_each_iteration=False)
  return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def preprocess(images_u8: jax.Array, mode: str, key: jax.Array | None = None,
               axis_name: str | None = None) -> jax.Array:
  """uint8 images to float32 model inputs.

  Modes: `unit` scales to [0, 1]; `symmetric` to [-1, 1]; `binarize_dynamic` draws a
  fresh Bernoulli(pixel intensity) image from `key` (one key per example, see
  genjax.rng.example_keys); `binarize_fixed` thresholds at 0.5; `none` keeps the raw
  intensities 0..255 (multinomial naive Bayes' counts); `quantize` cuts them into four grey
  levels 0..3, pixel // 64 (categorical naive Bayes).
  """
  if mode == "none":
    return images_u8.astype(jnp.float32)
  if mode == "quantize":
    return (images_u8 // 64).astype(jnp.float32)
  x = images_u8.astype(jnp.float32) / 255.0
  if mode == "unit":
    return x
  if mode == "symmetric":
    return 2.0 * x - 1.0
  if mode == "binarize_fixed":
    return (x > 0.5).astype(jnp.float32)
  if mode == "binarize_dynamic":
    if key is None:
      raise ValueError("binarize_dynamic needs a key")
    return rng.bernoulli(key, x, axis_name).astype(jnp.float32)
  raise ValueError(f"unknown preprocess mode {mode!r}; expected one of {PREPROCESS_MODES}")


def postprocess(x: jax.Array, mode: str) -> jax.Array:
  """Model outputs back to [0, 1] images for display."""
  if mode == "symmetric":
    x = 0.5 * (x + 1.0)
  elif mode == "none":
    x = x / 255.0
  elif mode == "quantize":
    x = x / 3.0
  return jnp.clip(x, 0.0, 1.0)


# The data key feeds two streams, the epoch orders and the per-step binarisation noise;
# folding a stream id first keeps epoch e's order key apart from step e's noise key.
_ORDER_STREAM, _NOISE_STREAM = 0, 1


def noise_key(data_key: jax.Array, step: jax.Array) -> jax.Array:
  """The key of step `step`'s preprocessing noise (dynamic binarisation)."""
  return rng.step_key(jax.random.fold_in(data_key, _NOISE_STREAM), step)


@dataclasses.dataclass(frozen=True)
class DeviceSampler:
  """Shuffled epochs drawn on the device from a dataset held in device memory.

  Epoch e visits the examples in the order `permutation(key, e)`, in batches of
  `global_batch` (the remainder is dropped). Under data parallelism device i
  takes the i-th slice of each global batch, so the global batch is the same on
  any number of devices. Everything is a pure function of (key, step).
  """

  num_examples: int
  global_batch: int
  preprocess_mode: str = "unit"

  def __post_init__(self):
    if self.global_batch > self.num_examples:
      raise ValueError(f"batch size {self.global_batch} exceeds the {self.num_examples} "
                       "examples of the training split")
    if self.preprocess_mode not in PREPROCESS_MODES:
      raise ValueError(f"unknown preprocess mode {self.preprocess_mode!r}; "
                       f"expected one of {PREPROCESS_MODES}")

  @property
  def steps_per_epoch(self) -> int:
    return self.num_examples // self.global_batch

  def permutation(self, key: jax.Array, epoch: int | jax.Array) -> jax.Array:
    """The example order of `epoch` (int32, shape (N,))."""
    order_key = jax.random.fold_in(key, _ORDER_STREAM)
    return jax.random.permutation(jax.random.fold_in(order_key, epoch), self.num_examples)

  def indices(self, perm: jax.Array, step: jax.Array, axis_name: str | None = None) -> jax.Array:
    """This device's example indices of global batch `step` (perm: the epoch's order)."""
    n_dev = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    local = self.global_batch // n_dev
    start = (step % self.steps_per_epoch) * self.global_batch + device_index(axis_name) * local
    return jax.lax.dynamic_slice_in_dim(perm, start, local)

  def batch(self, images: jax.Array, labels: jax.Array, perm: jax.Array, step: jax.Array,
            key: jax.Array, axis_name: str | None = None) -> dict:
    """This device's slice of global batch `step`, preprocessed.

    Args:
      images, labels: the whole split on this device.
      perm: `permutation(key, step // steps_per_epoch)`.
      step: the global step.
      key: the run's data key (binarisation noise is folded from it and `step`).
      axis_name: the device axis under data parallelism.
    """
    idx = self.indices(perm, step, axis_name)
    x = preprocess(images[idx], self.preprocess_mode, noise_key(key, step), axis_name)
    return {"image": x, "label": labels[idx]}
