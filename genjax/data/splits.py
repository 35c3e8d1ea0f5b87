"""Splits of any dataset, as the generic loop and the evaluators see them.

`load(data_config, split)` reads one split of what `config.data.name` names:

- images (`mnist`, `fashion_mnist`, any TFDS image set, or raw IDX files with `data.idx_dir`;
  without TensorFlow, TFDS's sets come from the project's IDX copies, genjax.data.images):
  an `ArraySplit` with uint8 `image` [N, H, W, C] and int32 `label` [N], preprocessed on the
  device by `data.preprocess` (unit | symmetric | binarize_dynamic | binarize_fixed);
- the UCI sets bundled with scikit-learn (`iris`, `wine`, `breast_cancer`, `digits`): an
  `ArraySplit` with float32 `x` [N, D] and `label`, the test part a seeded stratified
  `data.test_fraction` of the rows (`data.split_seed`);
- `conll2000` (CoNLL-2000 chunking, raw files in `data.data_dir`): a `SentenceSplit`;
- `casino` (the occasionally dishonest casino's simulated rolls tagged by the die,
  genjax.data.casino): a `SentenceSplit`.

`validation` is the last `data.validation_size` examples of the training part (then removed
from `train`). An `ArraySplit` knows its element spec, draws evaluation batches, and turns raw
rows into model inputs inside a compiled program (`preprocess`), so the loop never looks
inside a batch.

`data.classes` (optional; a list of class labels) keeps the examples of those classes only,
relabelled 0, 1, ... in the order listed (`(3, 5)`: MNIST's threes and fives as a two-class
set, 3 -> 0 and 5 -> 1), in every split of an `ArraySplit` dataset (select_classes).
"""

import dataclasses
import difflib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

SPLITS = ("train", "validation", "test")
TABULAR = ("breast_cancer", "wine", "iris", "digits")
SEQUENCES = ("conll2000", "casino")
IMAGES = ("mnist", "fashion_mnist")  # prepared offline; any TFDS image set also works


class UnknownDatasetError(ValueError):
  """A dataset name that no reader knows."""


def _identity(rows: dict, key: jax.Array | None, axis_name: str | None = None) -> dict:
  del key, axis_name
  return rows


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """A whole split in host memory as named arrays with a leading example axis.

  `preprocess(rows, key, axis_name)` maps raw rows to model inputs (traced: it runs inside the
  compiled step); `postprocess(x)` maps a generative model's outputs back to displayable
  [0, 1] images (None where the data are not images).
  """

  name: str
  arrays: dict[str, np.ndarray]
  preprocess: Callable[..., dict] = _identity
  postprocess: Callable[[jax.Array], jax.Array] | None = None
  num_classes: int | None = None
  class_names: tuple[str, ...] | None = None

  def __len__(self) -> int:
    return len(next(iter(self.arrays.values())))

  def head(self, num_examples: int) -> "ArraySplit":
    """The split's first `num_examples` examples (every example if it has no more, or if
    `num_examples` is 0)."""
    if num_examples <= 0 or num_examples >= len(self):
      return self
    return dataclasses.replace(self, arrays={k: v[:num_examples] for k, v in self.arrays.items()})

  @property
  def element_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
    """The model inputs of one example (shapes without the batch axis)."""
    rows = {k: jax.ShapeDtypeStruct((2, *v.shape[1:]), v.dtype) for k, v in self.arrays.items()}
    out = jax.eval_shape(lambda r: self.preprocess(r, jax.random.key(0)), rows)
    return {k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for k, v in out.items()}

  def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct((batch_size, *v.shape), v.dtype)
            for k, v in self.element_spec.items()}

  def eval_batches(self, batch_size: int, key: jax.Array) -> Iterator[tuple[dict, jax.Array]]:
    """(model-input batch, evaluation key) pairs over the whole split in order, the last batch
    smaller. Batch i is preprocessed with one half of `fold_in(key, i)` and comes with the other
    half, so results do not depend on how many batches came before."""
    preprocess = jax.jit(self.preprocess)
    for i, start in enumerate(range(0, len(self), batch_size)):
      k_data, k_eval = jax.random.split(jax.random.fold_in(key, i))
      rows = {k: jnp.asarray(v[start:start + batch_size]) for k, v in self.arrays.items()}
      yield preprocess(rows, k_data), k_eval

  def inputs(self, key: jax.Array | None = None, batch_size: int = 10_000) -> dict[str, np.ndarray]:
    """The whole split as model inputs on the host (batch by batch, as `eval_batches`)."""
    key = jax.random.key(0) if key is None else key
    parts = [jax.device_get(b) for b, _ in self.eval_batches(batch_size, key)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclasses.dataclass(frozen=True)
class SentenceSplit:
  """A split of a token-sequence corpus: `sentences` (genjax.data.sequences.Sentence)."""

  name: str
  sentences: list

  def __len__(self) -> int:
    return len(self.sentences)

  def head(self, num_examples: int) -> "SentenceSplit":
    """The split's first `num_examples` sentences (every one if it has no more, or if
    `num_examples` is 0)."""
    if num_examples <= 0 or num_examples >= len(self):
      return self
    return dataclasses.replace(self, sentences=self.sentences[:num_examples])


Split = ArraySplit | SentenceSplit


def select_classes(split: ArraySplit, classes) -> ArraySplit:
  """The examples of `split` whose label is one of `classes`, in their order, relabelled by
  position in `classes` (int32); num_classes and class_names follow. Raises ValueError for an
  empty, repeated or out-of-range list."""
  classes = [int(c) for c in classes]
  known = split.num_classes
  if not classes or len(set(classes)) != len(classes) or min(classes) < 0 or (
      known is not None and max(classes) >= known):
    raise ValueError(f"data.classes must list distinct labels of 0..{(known or 1) - 1}, got "
                     f"{classes}")
  labels = split.arrays["label"]
  keep = np.isin(labels, classes)
  relabel = np.zeros(max(classes) + 1, np.int32)
  relabel[classes] = np.arange(len(classes), dtype=np.int32)
  arrays = {k: v[keep] for k, v in split.arrays.items()}
  arrays["label"] = relabel[labels[keep]]
  names = (tuple(split.class_names[c] for c in classes) if split.class_names is not None
           else tuple(str(c) for c in classes))
  return dataclasses.replace(split, arrays=arrays, num_classes=len(classes), class_names=names)


def known_datasets() -> tuple[str, ...]:
  return (*IMAGES, *TABULAR, *SEQUENCES)


def check_name(name: str) -> None:
  """A clear error, with the close matches, for a name no reader knows. TFDS image sets other
  than the prepared ones are accepted when TFDS lists them."""
  if name in known_datasets():
    return
  try:
    import tensorflow_datasets as tfds
    registered = list(tfds.list_builders(with_community_datasets=False))
  except ImportError:
    registered = []
  if name in registered:
    return
  candidates = list(dict.fromkeys([*known_datasets(), *registered]))
  close = difflib.get_close_matches(name, candidates, n=3)
  hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
  raise UnknownDatasetError(f"unknown dataset {name!r} (data.name){hint}")


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def image_split(d: ml_collections.ConfigDict, split: str) -> ArraySplit:
  from genjax import distributed
  from genjax.data import images
  mode = d.preprocess
  if mode not in images.PREPROCESS_MODES:
    raise ValueError(f"unknown data.preprocess {mode!r}; expected one of "
                     f"{images.PREPROCESS_MODES}")
  shard = images.load_arrays(d.name, split, validation_size=d.get("validation_size", 0),
                             image_shape=tuple(d.image_shape), data_dir=d.get("data_dir"),
                             download=d.get("download"), idx_dir=d.get("idx_dir"))
  # Each process reads its own shard; in memory, every process then holds the whole split, so
  # that batches and evaluations do not depend on the number of processes.
  arrays = images.ImageArrays(**distributed.gather_shards(
      {"images": shard.images, "labels": shard.labels}))

  def preprocess(rows, key, axis_name=None):
    return {"image": images.preprocess(rows["image"], mode, key, axis_name),
            "label": rows["label"]}

  labels = arrays.labels
  return ArraySplit(split, {"image": arrays.images, "label": arrays.labels}, preprocess,
                    lambda x: images.postprocess(x, mode),
                    num_classes=int(labels.max()) + 1 if len(labels) and labels.max() >= 0
                    else None)


TABULAR_PREPROCESS = ("none", "unit", "standardize", "quantize")


def scale_features(x_tr: np.ndarray, x: np.ndarray, mode: str) -> np.ndarray:
  """Features `x` under a preprocessing mode whose statistics come from the training rows
  `x_tr`: `none` (raw); `unit` (min-max to [0, 1], test rows clipped below at 0);
  `standardize` (zero mean, unit variance; constant features left at 0); `quantize` (levels
  0..3 at the training quartiles)."""
  if mode == "none":
    return x
  if mode == "unit":
    lo, hi = x_tr.min(0), x_tr.max(0)
    return np.clip((x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, None)
  if mode == "standardize":
    mu, sd = x_tr.mean(0), x_tr.std(0)
    sd = np.where(sd > 1e-6 * max(float(np.abs(x_tr).max()), 1.0), sd, 1.0)
    return (x - mu) / sd
  if mode == "quantize":
    edges = np.quantile(x_tr, [0.25, 0.5, 0.75], axis=0)  # [3, D]
    return (x[:, None, :] > edges[None]).sum(1).astype(np.float32)
  raise ValueError(f"unknown data.preprocess {mode!r} for a tabular set; expected one of "
                   f"{TABULAR_PREPROCESS}")


def tabular_split(d: ml_collections.ConfigDict, split: str) -> ArraySplit:
  from genjax.data import tabular
  data = tabular.load(d.name)
  n_test = round(d.get("test_fraction", 0.25) * len(data))
  train, test = tabular.train_test_split(data, len(data) - n_test, d.get("split_seed", 0))
  fit_rows = _hold_out(train, d.get("validation_size", 0), "train")
  part = test if split == "test" else _hold_out(train, d.get("validation_size", 0), split)
  x = scale_features(fit_rows.x, part.x, d.get("preprocess", "none")).astype(np.float32)
  return ArraySplit(split, {"x": x, "label": part.y}, num_classes=data.num_classes,
                    class_names=data.class_names)


def _hold_out(train: Any, validation_size: int, split: str) -> Any:
  """The training part without its last `validation_size` rows, or those rows."""
  if split == "validation" and validation_size <= 0:
    raise ValueError("the validation split is empty: set data.validation_size > 0")
  n = len(train) - validation_size
  cut = slice(n, None) if split == "validation" else slice(0, n)
  return dataclasses.replace(train, x=train.x[cut], y=train.y[cut])


def _sentences(d: ml_collections.ConfigDict, part: str) -> list:
  """The training or test sentences of a sequence dataset (before any validation hold-out)."""
  from genjax.data import casino, sequences
  if d.name == "casino":
    return casino.load(d, part)
  return sequences.load_conll(part, d.get("data_dir"))


def sentence_split(d: ml_collections.ConfigDict, split: str) -> SentenceSplit:
  if split == "test":
    return SentenceSplit(split, _sentences(d, "test"))
  train = _sentences(d, "train")
  v = d.get("validation_size", 0)
  if split == "validation" and v <= 0:
    raise ValueError("the validation split is empty: set data.validation_size > 0")
  return SentenceSplit(split, train[len(train) - v:] if split == "validation"
                       else train[:len(train) - v])


def load(d: ml_collections.ConfigDict, split: str) -> Split:
  """One split of the dataset `d` (a config's `data` section) names."""
  _check_split(split)
  if d.name in SEQUENCES:
    if d.get("classes") is not None:
      raise ValueError(f"data.classes selects classes of labelled examples; {d.name!r} holds "
                       "tagged sequences")
    return sentence_split(d, split)
  if d.name in TABULAR:
    out = tabular_split(d, split)
  else:
    if d.get("idx_dir") is None:
      check_name(d.name)
    out = image_split(d, split)
  return out if d.get("classes") is None else select_classes(out, d.classes)
