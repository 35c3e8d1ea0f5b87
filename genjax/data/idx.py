"""Image datasets from raw IDX files (MNIST's format), read without TensorFlow.

A directory holding `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
`t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]` (MNIST, Fashion-MNIST,
KMNIST, ...) is a dataset: set `data.idx_dir` to it. The splits are genjax's usual
deterministic ones (train less its last `validation_size` examples, validation, test),
in file order, and each process reads a contiguous shard of equal size. `order="tfds"` reads
the examples in the order of TFDS's prepared copy of the same files instead (`tfds_order`).
"""

import gzip
import hashlib
import os
import zlib

import numpy as np

_FILES = {"train": "train", "test": "t10k"}
# IDX type codes (the third magic byte) this reader accepts.
_DTYPES = {0x08: np.uint8}


def read_idx(path: str) -> np.ndarray:
  """One IDX file (optionally gzipped) as a NumPy array of its declared shape."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a truncated or corrupt download
    raise ValueError(f"{path} is truncated or corrupt ({e}): download it again") from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise ValueError(f"{path} is not an unsigned-byte IDX file")
  ndim = data[3]
  dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(np.int64)
  offset = 4 + 4 * ndim
  if len(data) - offset != int(np.prod(dims)):
    raise ValueError(f"{path}: header declares shape {tuple(dims)} but holds "
                     f"{len(data) - offset} values")
  return np.frombuffer(data, _DTYPES[data[2]], offset=offset).reshape(dims)


def _find(directory: str, stem: str) -> str:
  for name in (stem, stem + ".gz"):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def read_split_files(directory: str, part: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images (N, H, W, 1) and int32 labels (N,) of the 'train' or 'test' files."""
  prefix = _FILES[part]
  images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
  labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
  if len(images) != len(labels):
    raise ValueError(f"{directory}: {len(images)} {part} images but {len(labels)} labels")
  return images[..., None], labels.astype(np.int32)


def tfds_order(num_examples: int, part: str) -> np.ndarray:
  """The file indices (int64, (N,)) of the 'train' or 'test' examples in the order TFDS's
  builders of these files (mnist, fashion_mnist, ...) write them: example i is keyed by i and
  sorted by the md5 of the split name followed by the key (tensorflow_datasets.core.hashing)."""
  salt = hashlib.md5(part.encode())

  def key(i: int) -> bytes:
    h = salt.copy()
    h.update(str(i).encode())
    return h.digest()

  return np.array(sorted(range(num_examples), key=key), np.int64)


ORDERS = ("file", "tfds")


def split_arrays(directory: str, split: str, validation_size: int, process_index: int,
                 process_count: int, order: str = "file") -> tuple[np.ndarray, np.ndarray]:
  """This process's shard of a genjax split: uint8 images (n, H, W, 1), int32 labels (n,), the
  examples in file order or TFDS's (`order`: one of ORDERS)."""
  if split not in ("train", "validation", "test"):
    raise ValueError(f"unknown split {split!r}; expected train, validation or test")
  if order not in ORDERS:
    raise ValueError(f"unknown IDX order {order!r}; expected one of {ORDERS}")
  part = "test" if split == "test" else "train"
  images, labels = read_split_files(directory, part)
  if order == "tfds":
    perm = tfds_order(len(labels), part)
    images, labels = images[perm], labels[perm]
  n = len(labels)
  if split != "test" and not 0 <= validation_size < n:
    raise ValueError(f"validation_size={validation_size} must be in [0, {n})")
  if split == "train":
    start, stop = 0, n - validation_size
  elif split == "validation":
    if validation_size == 0:
      raise ValueError("the validation split is empty: set data.validation_size > 0")
    start, stop = n - validation_size, n
  else:
    start, stop = 0, n
  # Contiguous shards in process order, the remainder spread over the first ones (as TFDS's
  # even_splits): together they are the split itself.
  size, extra = divmod(stop - start, process_count)
  first = start + process_index * size + min(process_index, extra)
  last = first + size + (process_index < extra)
  return images[first:last], labels[first:last]
