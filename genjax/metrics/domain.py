"""The shipped domain classifiers (DomainCNN on MNIST, Fashion-MNIST): features and probabilities.

GAN metrics compare images through a network trained on their domain, as FID and the
Inception score do through Inception on ImageNet: `load("mnist")` returns the DomainCNN
trained by experiments/configs/domain_cnn.py and exported by
experiments/export_domain_classifier.py into genjax/assets/.
"""

import dataclasses
import functools
import importlib.resources
import json
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections

from genjax.nn import classifiers
from genjax.nn.cnn import DomainCNN
from genjax.state import count_params

DATASETS = ("mnist", "fashion_mnist")
DEFAULT_CHUNK = 500


def asset_name(dataset: str, suffix: str) -> str:
  """The file name of a shipped asset (`domain_cnn_mnist.msgpack`, `.json`)."""
  return f"domain_cnn_{dataset}.{suffix}"


def template_variables(module: DomainCNN, image_shape: tuple[int, ...]) -> dict:
  """Variables with the structure and shapes of `module`'s (the target of deserialisation)."""
  shapes = jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros((1, *image_shape)), train=False))
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


@functools.partial(jax.jit, static_argnames="module")
def _chunk_features_and_probs(module: DomainCNN, variables: dict,
                              x_CxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
  """One chunk through the network in inference mode (uint8 images scaled to [0, 1] first)."""
  if jnp.issubdtype(x_CxHxWxC.dtype, jnp.integer):
    x_CxHxWxC = x_CxHxWxC.astype(jnp.float32) / 255.0
  features, logits = module.apply(variables, x_CxHxWxC.astype(jnp.float32),
                                  method=DomainCNN.features_and_logits)
  return features, jax.nn.softmax(logits)


def _pad_rows(x: jax.Array, rows: int) -> jax.Array:
  # Zero images fill the last chunk: harmless, inference mode has no batch-dependent layers.
  return jnp.pad(x, ((0, rows - x.shape[0]),) + ((0, 0),) * (x.ndim - 1))


@dataclasses.dataclass(frozen=True)
class DomainClassifier:
  """A trained DomainCNN with its variables and metadata (dataset, accuracy, config)."""

  module: DomainCNN
  variables: Any
  metadata: dict
  chunk_size: int = DEFAULT_CHUNK

  @property
  def dataset(self) -> str:
    return self.metadata["dataset"]

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.metadata["image_shape"])

  @property
  def test_accuracy(self) -> float:
    """Accuracy on the dataset's whole test split, measured when the classifier was exported."""
    return self.metadata["test_accuracy"]

  @property
  def num_params(self) -> int:
    return count_params(self.variables["params"])

  @property
  def feature_dim(self) -> int:
    return self.module.feature_dim

  def features_and_probs(self, images_NxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Penultimate features (N, feature_dim) and class probabilities (N, num_classes).

    Images are floats in [0, 1] (uint8 images are scaled by 1/255 first). They go through
    the network `chunk_size` at a time, the last chunk zero-padded, so memory stays bounded
    by a chunk's activations. Called on arrays, the chunks run one by one through a single
    compiled program, whatever N; called inside jax.jit, they run under `jax.lax.map`.
    """
    x = images_NxHxWxC
    shape = tuple(x.shape[1:])
    if x.ndim != 4 or shape != self.image_shape:
      raise ValueError(f"the {self.dataset} domain classifier takes images of shape "
                       f"(N, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
    n, c = x.shape[0], self.chunk_size
    if n == 0:
      return (jnp.zeros((0, self.feature_dim), jnp.float32),
              jnp.zeros((0, self.module.num_classes), jnp.float32))
    run = functools.partial(_chunk_features_and_probs, self.module, self.variables)
    if isinstance(x, jax.core.Tracer):
      chunks = _pad_rows(x, -(-n // c) * c).reshape(-1, c, *shape)
      features, probs = jax.lax.map(run, chunks)
      return (features.reshape(-1, features.shape[-1])[:n],
              probs.reshape(-1, probs.shape[-1])[:n])
    outputs = [run(_pad_rows(jnp.asarray(x[i:i + c]), c)) for i in range(0, n, c)]
    features, probs = (jnp.concatenate(parts)[:n] for parts in zip(*outputs, strict=True))
    return features, probs


def from_variables(variables: dict, metadata: dict, chunk_size: int = DEFAULT_CHUNK
                   ) -> DomainClassifier:
  """A DomainClassifier from trained variables and metadata that holds the training `config`.

  Raises ValueError if the variables do not have the shapes of the network the config
  describes (msgpack deserialisation alone would accept any shapes).
  """
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive, got {chunk_size}")
  module = classifiers.build(ml_collections.ConfigDict(metadata["config"]).model)
  template = template_variables(module, tuple(metadata["image_shape"]))
  expected = jax.tree_util.tree_flatten_with_path(template)[0]
  got = jax.tree_util.tree_flatten_with_path(variables)[0]
  expected = {jax.tree_util.keystr(k): v.shape for k, v in expected}
  got = {jax.tree_util.keystr(k): jnp.shape(v) for k, v in got}
  if got != expected:
    raise ValueError(f"the variables of the {metadata.get('dataset')} domain classifier do not "
                     f"match its recorded architecture: expected {expected}, got {got}")
  return DomainClassifier(module=module, variables=variables, metadata=metadata,
                          chunk_size=chunk_size)


def load(dataset: str, chunk_size: int = DEFAULT_CHUNK) -> DomainClassifier:
  """The shipped domain classifier of `dataset` ('mnist' or 'fashion_mnist')."""
  if dataset not in DATASETS:
    raise ValueError(f"no shipped domain classifier for {dataset!r}; expected one of {DATASETS}")
  assets = importlib.resources.files("genjax").joinpath("assets")
  metadata = json.loads(assets.joinpath(asset_name(dataset, "json")).read_text())
  module = classifiers.build(ml_collections.ConfigDict(metadata["config"]).model)
  template = template_variables(module, tuple(metadata["image_shape"]))
  variables = flax.serialization.from_bytes(
      template, assets.joinpath(asset_name(dataset, "msgpack")).read_bytes())
  return from_variables(variables, metadata, chunk_size)
