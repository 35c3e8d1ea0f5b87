"""Small tabular datasets: the UCI sets bundled with scikit-learn, and MNIST-style pairs.

`load(name)` gives a `TabularData` with float32 features `x` [N, D] and int32 labels `y` [N]
in 0..num_classes-1. Names: `breast_cancer`, `wine`, `iris`, `digits` (scikit-learn's bundled
copies of the UCI sets; needs the `study` or `test` extra, scikit-learn). Image pairs such as
MNIST 3 vs 5 come from `image_pair`.
"""

import dataclasses

import numpy as np

UCI = ("breast_cancer", "wine", "iris", "digits")


@dataclasses.dataclass(frozen=True)
class TabularData:
  """Features x_NxD (float32), labels y_N (int32, 0..num_classes-1), and their names."""

  name: str
  x: np.ndarray
  y: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.y)


def load(name: str) -> TabularData:
  """One of the UCI sets that ship inside scikit-learn (no download)."""
  if name not in UCI:
    raise ValueError(f"unknown tabular dataset {name!r}; expected one of {UCI}")
  try:
    from sklearn import datasets
  except ImportError as e:
    raise ImportError("the UCI sets come from scikit-learn: pip install -e '.[study]'") from e
  bunch = getattr(datasets, f"load_{name}")()
  names = tuple(str(n) for n in getattr(bunch, "target_names", np.unique(bunch.target)))
  return TabularData(name, bunch.data.astype(np.float32), bunch.target.astype(np.int32),
                     len(names), names)


def image_pair(images: np.ndarray, labels: np.ndarray, a: int, b: int,
               name: str = "") -> TabularData:
  """The images of classes a and b as flat float32 rows in [0, 1]; label 0 for a, 1 for b."""
  keep = (labels == a) | (labels == b)
  x = images[keep].reshape(int(keep.sum()), -1).astype(np.float32)
  if images.dtype == np.uint8:
    x /= 255.0
  return TabularData(name or f"{a}_vs_{b}", x, (labels[keep] == b).astype(np.int32), 2,
                     (str(a), str(b)))


def train_test_split(data: TabularData, train_size: int, key_seed: int,
                     stratified: bool = True) -> tuple[TabularData, TabularData]:
  """A random split with `train_size` training rows (seeded); stratified keeps every class
  in the training part when train_size >= num_classes. The rest is the test part."""
  rng = np.random.default_rng(key_seed)
  n = len(data)
  if not 0 < train_size < n:
    raise ValueError(f"train_size must be in 1..{n - 1}, got {train_size}")
  order = rng.permutation(n)
  if stratified and train_size >= data.num_classes:
    # One example of each class first, then the rest in random order.
    firsts = [order[data.y[order] == c][0] for c in range(data.num_classes)
              if np.any(data.y == c)]
    order = np.concatenate([firsts, order[~np.isin(order, firsts)]])
  tr, te = order[:train_size], order[train_size:]

  def part(idx):
    return dataclasses.replace(data, x=data.x[idx], y=data.y[idx])

  return part(tr), part(te)
