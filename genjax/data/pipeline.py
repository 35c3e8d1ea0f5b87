"""Training inputs for the generic loop: device-resident (fits in memory) or streamed (tf.data).

An input hands the loop, for each step, the arguments of its compiled step
(`args(step)`, on the host) and turns them into that device's batch inside the
step (`draw(step, data_key, *args, axis_name)`, traced). Both orders are pure
functions of (data key or seed, step), so a resumed run sees the batches an
uninterrupted run would.
"""

import jax
import jax.numpy as jnp
import ml_collections

from genjax.data import images as image_data
from genjax.data import labelled
from genjax.data.splits import ArraySplit, check_name
from genjax.parallel import DataParallel

STREAMED = "streamed input (data.in_memory = False)"


def process_batch_size(global_batch: int, dp: DataParallel) -> int:
  """This process's share of the global batch; a clear error unless it splits evenly over the
  devices (of every process)."""
  dp.check_batch_size(global_batch)
  return global_batch // jax.process_count()


class DeviceInput:
  """The whole split on every device; each step gathers its shuffled batch there and
  preprocesses it (genjax.data.splits.ArraySplit.preprocess) inside the step."""

  kinds = "rr"
  # Which step arguments differ between the members of a population (genjax.population): the
  # arrays are shared, each member has its own epoch order.
  member_axes = (None, 0)

  def __init__(self, split: ArraySplit, batch_size: int, data_key: jax.Array, dp: DataParallel,
               arrays: dict | None = None):
    """`arrays`: the split's arrays already on the devices (another input's `arrays`)."""
    self.split = split
    self.sampler = image_data.DeviceSampler(len(split), batch_size)
    self._dp = dp
    self._data_key = data_key
    self.arrays = dp.replicate(dict(split.arrays)) if arrays is None else arrays
    self._permutation = jax.jit(self.sampler.permutation)
    self._epoch, self._perm = None, None

  @property
  def steps_per_epoch(self) -> int:
    return self.sampler.steps_per_epoch

  @property
  def element_spec(self) -> dict:
    return self.split.element_spec

  @property
  def postprocess(self):
    return self.split.postprocess

  def args(self, step: int) -> tuple:
    epoch = step // self.steps_per_epoch
    if epoch != self._epoch:
      self._epoch = epoch
      self._perm = self._dp.replicate(self._permutation(self._data_key, epoch))
    return (self.arrays, self._perm)

  def draw(self, step: jax.Array, data_key: jax.Array, arrays: dict, perm: jax.Array,
           axis_name: str | None = None) -> dict:
    rows = {k: v[self.sampler.indices(perm, step, axis_name)] for k, v in arrays.items()}
    return self.split.preprocess(rows, image_data.noise_key(data_key, step), axis_name)


def check_streamed(data: ml_collections.ConfigDict) -> None:
  """Raise, before anything is written, where the data section `data` cannot be streamed: an
  unknown name (splits.UnknownDatasetError), no TensorFlow (images.TensorFlowMissingError,
  naming the `tf` extra), a dataset TFDS cannot provide (images.DatasetNotFoundError)."""
  check_name(data.name)
  image_data.require_tensorflow(STREAMED)
  image_data.builder(data.name, data.get("data_dir"), data.get("download"))


class StreamingInput:
  """Batches streamed from TFDS through tf.data, split over the devices each step (needs
  TensorFlow, the `tf` extra)."""

  kinds = "s"

  def __init__(self, data: ml_collections.ConfigDict, batch_size: int, seed: int,
               data_key: jax.Array, dp: DataParallel):
    del data_key  # the order comes from `seed`; preprocessing noise from the loop's data key
    image_data.require_tensorflow(STREAMED)
    b = image_data.builder(data.name, data.get("data_dir"), data.get("download"))
    n = b.info.splits["train"].num_examples - data.validation_size
    self._data, self._batch, self._seed, self._dp = data, batch_size, seed, dp
    self._steps_per_epoch = (n // jax.process_count()) // batch_size
    if self._steps_per_epoch == 0:
      raise ValueError(f"batch size {batch_size} exceeds this process's {n} training examples")
    self._iterator, self._next_step = None, None

  @property
  def steps_per_epoch(self) -> int:
    return self._steps_per_epoch

  @property
  def element_spec(self) -> dict:
    return {"image": jax.ShapeDtypeStruct(tuple(self._data.image_shape), jnp.float32),
            "label": jax.ShapeDtypeStruct((), jnp.int32)}

  @property
  def postprocess(self):
    return lambda x: image_data.postprocess(x, self._data.preprocess)

  def _open(self, step: int):
    epoch, position = divmod(step, self._steps_per_epoch)
    d = self._data
    ds = image_data.tf_dataset(d.name, "train", batch_size=self._batch, seed=self._seed,
                               epoch=epoch, validation_size=d.validation_size,
                               image_shape=tuple(d.image_shape), data_dir=d.get("data_dir"),
                               download=d.get("download"))
    return iter(ds.skip(position).as_numpy_iterator())

  def args(self, step: int) -> tuple:
    if step != self._next_step or step % self._steps_per_epoch == 0:
      self._iterator = self._open(step)
    batch = next(self._iterator)
    self._next_step = step + 1
    return (self._dp.shard({"image": batch["image"],
                            "label": batch["label"].astype(jnp.int32)}),)

  def draw(self, step: jax.Array, data_key: jax.Array, batch: dict,
           axis_name: str | None = None) -> dict:
    x = image_data.preprocess(batch["image"], self._data.preprocess,
                              image_data.noise_key(data_key, step), axis_name)
    return {"image": x, "label": batch["label"]}


def make_input(config: ml_collections.ConfigDict, dp: DataParallel, data_key: jax.Array,
               train: ArraySplit | None = None, arrays: dict | None = None):
  """The training input a config asks for: with `data.num_labels > 0`, few labels
  (genjax.data.labelled); with `data.in_memory` (default True), the device-resident training
  split `train`; otherwise image batches streamed from TFDS (needs TensorFlow)."""
  batch = process_batch_size(config.data.batch_size, dp)
  if labelled.num_labels(config.data) > 0 or config.data.get("semi_supervised", False):
    if not isinstance(train, ArraySplit):
      raise ValueError("data.num_labels needs the training split in memory (data.in_memory)")
    return labelled.make_input(config, dp, data_key, train, arrays)
  if config.data.get("in_memory", True):
    if not isinstance(train, ArraySplit):
      raise ValueError("data.in_memory needs the training split's arrays")
    # Every process holds the whole split (genjax.data.splits) and every device gathers its
    # slice of the global batch, so the batches are the same for any number of processes.
    return DeviceInput(train, config.data.batch_size, data_key, dp, arrays)
  if config.data.get("classes") is not None:
    raise ValueError(f"data.classes needs the training split in memory, not {STREAMED}")
  return StreamingInput(config.data, batch, config.seed, data_key, dp)
