"""Few labels: a balanced labelled subset of a training split, and the inputs that train on it.

`data.num_labels = n > 0` keeps the labels of n training examples, n // C of each class (the
first n % C classes one more), drawn by `data.label_seed` (None: the run's `config.seed`).
Then either

- `data.semi_supervised = False`: the run trains on the labelled examples only (the
  discriminative baselines), batches {"image", "label"} of `data.batch_size`; or
- `data.semi_supervised = True`: each step has an unlabelled batch of `data.batch_size` from
  the whole training split (its labels dropped) and a labelled batch of
  `data.labelled_batch_size` from the subset: {"image", "labelled_image", "labelled_label"}.

Both orders are pure functions of (data key, step), like every training input, so resumed
runs see the batches of uninterrupted ones. The subset's indices are an argument of the
compiled step, so members of a population can hold different subsets.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax.data import images as image_data
from genjax.data.splits import ArraySplit
from genjax.parallel import DataParallel

# Streams folded from the run's data key (0 and 1 are the image sampler's order and noise).
_LABELLED_ORDER_STREAM, _LABELLED_NOISE_STREAM = 2, 3


def balanced_subset(labels: np.ndarray, num_labels: int, seed: int) -> np.ndarray:
  """Sorted indices of `num_labels` examples, balanced over the classes of `labels`.

  Class c contributes num_labels // C examples (plus one for the first num_labels % C
  classes), drawn without replacement by a NumPy generator seeded with `seed`.
  """
  labels = np.asarray(labels)
  classes = np.unique(labels)
  per_class = np.full(len(classes), num_labels // len(classes))
  per_class[:num_labels % len(classes)] += 1
  rng = np.random.default_rng(seed)
  chosen = []
  for c, n in zip(classes, per_class):
    members = np.flatnonzero(labels == c)
    if n > len(members):
      raise ValueError(f"class {c} has {len(members)} training examples; {num_labels} balanced "
                       f"labels need {n}")
    chosen.append(rng.choice(members, size=n, replace=False))
  return np.sort(np.concatenate(chosen)).astype(np.int32)


def num_labels(data: ml_collections.ConfigDict) -> int:
  """The number of labelled training examples a config keeps (<= 0: all of them)."""
  return data.get("num_labels", -1)


def label_seed(config: ml_collections.ConfigDict) -> int:
  seed = config.data.get("label_seed")
  return config.seed if seed is None else seed


def subset_for(config: ml_collections.ConfigDict, train: ArraySplit) -> np.ndarray:
  """The labelled subset of `train` that `config` asks for (indices into the split; every
  example when data.num_labels <= 0)."""
  if num_labels(config.data) <= 0:
    return np.arange(len(train), dtype=np.int32)
  return balanced_subset(train.arrays["label"], num_labels(config.data), label_seed(config))


def restrict(config: ml_collections.ConfigDict, train: ArraySplit) -> ArraySplit:
  """`train` reduced to the config's labelled subset (all of it unless data.num_labels > 0):
  what a fit family fits on."""
  if num_labels(config.data) <= 0:
    return train
  if config.data.get("semi_supervised", False):
    raise ValueError("data.semi_supervised needs a step family (a fit family sees labels only)")
  keep = subset_for(config, train)
  return dataclasses.replace(train, arrays={k: v[keep] for k, v in train.arrays.items()})


def _permutation(key: jax.Array, stream: int, epoch: jax.Array, n: int) -> jax.Array:
  return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, stream), epoch), n)


class LabelledInput:
  """A training input with few labels (see the module docstring); on the device like
  genjax.data.pipeline.DeviceInput.

  Compiled-step arguments: (arrays, unlabelled epoch order, labelled indices). The labelled
  order is drawn inside the step (the subset is small).
  """

  kinds = "rrr"
  member_axes = (None, 0, 0)  # a population's members share the arrays (genjax.population)

  def __init__(self, split: ArraySplit, labelled: np.ndarray, batch_size: int,
               labelled_batch_size: int, semi_supervised: bool, data_key: jax.Array,
               dp: DataParallel, arrays: dict | None = None):
    self.split = split
    self.semi_supervised = semi_supervised
    self.num_labelled = len(labelled)
    self.labelled_batch = labelled_batch_size if semi_supervised else batch_size
    if self.labelled_batch > self.num_labelled:
      raise ValueError(f"labelled batch size {self.labelled_batch} exceeds the "
                       f"{self.num_labelled} labelled examples (data.num_labels)")
    dp.check_batch_size(self.labelled_batch)
    self.sampler = image_data.DeviceSampler(len(split), batch_size)
    self.labelled_sampler = image_data.DeviceSampler(self.num_labelled, self.labelled_batch)
    self._dp = dp
    self._data_key = data_key
    self.arrays = dp.replicate(dict(split.arrays)) if arrays is None else arrays
    self._labelled = dp.replicate(jnp.asarray(labelled, jnp.int32))
    self._permutation = jax.jit(self.sampler.permutation)
    self._epoch, self._perm = None, None

  @property
  def steps_per_epoch(self) -> int:
    """Steps per epoch of the data the run learns from: the whole split when
    semi-supervised, else the labelled subset."""
    if self.semi_supervised:
      return self.sampler.steps_per_epoch
    return self.labelled_sampler.steps_per_epoch

  @property
  def element_spec(self) -> dict:
    spec = self.split.element_spec
    if not self.semi_supervised:
      return spec
    return {"image": spec["image"], "labelled_image": spec["image"],
            "labelled_label": spec["label"]}

  @property
  def postprocess(self):
    return self.split.postprocess

  def args(self, step: int) -> tuple:
    if self.semi_supervised:
      epoch = step // self.sampler.steps_per_epoch
      if epoch != self._epoch:
        self._epoch = epoch
        self._perm = self._dp.replicate(self._permutation(self._data_key, epoch))
    else:
      self._perm = self._labelled  # unused: a placeholder of the right kind
    return (self.arrays, self._perm, self._labelled)

  def labelled_rows(self, step: jax.Array, data_key: jax.Array, arrays: dict,
                    labelled: jax.Array, axis_name: str | None = None) -> dict:
    """This device's slice of labelled batch `step`, preprocessed: {"image", "label"}."""
    epoch = step // self.labelled_sampler.steps_per_epoch
    order = labelled[_permutation(data_key, _LABELLED_ORDER_STREAM, epoch, self.num_labelled)]
    idx = self.labelled_sampler.indices(order, step, axis_name)
    rows = {k: v[idx] for k, v in arrays.items()}
    key = image_data.noise_key(jax.random.fold_in(data_key, _LABELLED_NOISE_STREAM), step)
    return self.split.preprocess(rows, key, axis_name)

  def draw(self, step: jax.Array, data_key: jax.Array, arrays: dict, perm: jax.Array,
           labelled: jax.Array, axis_name: str | None = None) -> dict:
    lab = self.labelled_rows(step, data_key, arrays, labelled, axis_name)
    if not self.semi_supervised:
      return lab
    rows = {"image": arrays["image"][self.sampler.indices(perm, step, axis_name)]}
    if "label" in arrays:  # preprocess expects every field; the unlabelled labels are dropped
      rows["label"] = jnp.zeros(rows["image"].shape[:1], arrays["label"].dtype)
    unlabelled = self.split.preprocess(rows, image_data.noise_key(data_key, step), axis_name)
    return {"image": unlabelled["image"], "labelled_image": lab["image"],
            "labelled_label": lab["label"]}


def make_input(config: ml_collections.ConfigDict, dp: DataParallel, data_key: jax.Array,
               train: ArraySplit, arrays: dict | None = None) -> LabelledInput:
  d = config.data
  return LabelledInput(train, subset_for(config, train), d.batch_size,
                       d.get("labelled_batch_size", d.batch_size),
                       d.get("semi_supervised", False), data_key, dp, arrays)
