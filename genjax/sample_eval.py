"""Evaluation of generative families from samples alone: metrics beside real-data floors, grids.

Sample quality is measured through the shipped domain classifier of the run's dataset
(genjax.metrics.domain), the offline stand-in for Inception: FID, KID, the Inception-score
analogue, precision/recall and density/coverage (genjax.metrics.sample_quality) of
generated images against the test split. Each value stands beside its floor, the same
metric between the real training images and the real test images: what a generator that
reproduced the data distribution exactly would score.
"""

from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import images as image_data
from genjax.metrics import domain as domain_lib
from genjax.metrics import sample_quality


def generate_images(family: ModuleType, state, key: jax.Array, num: int, preprocess: str,
                    chunk: int = 1000, ema: bool = False) -> np.ndarray:
  """`num` samples as float32 images in [0, 1], drawn `chunk` at a time (one compile).

  Chunk i uses key fold_in(key, i): the images are a pure function of (key, num, chunk).
  """
  kwargs = {"ema": True} if ema else {}
  sample = jax.jit(lambda s, k: family.sample(s, k, chunk, **kwargs))
  parts = []
  for i, start in enumerate(range(0, num, chunk)):
    x = image_data.postprocess(sample(state, jax.random.fold_in(key, i)), preprocess)
    parts.append(np.asarray(jax.device_get(x))[:num - start])
  return np.concatenate(parts)


def _features(classifier: domain_lib.DomainClassifier, images) -> tuple[jax.Array, jax.Array]:
  return classifier.features_and_probs(jnp.asarray(images))


def sample_metrics(classifier: domain_lib.DomainClassifier, real_images, fake_images,
                   key: jax.Array) -> dict[str, float]:
  """All sample-quality metrics of `fake_images` against `real_images` (uint8 or [0, 1])."""
  real_f, real_p = _features(classifier, real_images)
  fake_f, fake_p = _features(classifier, fake_images)
  return sample_quality.all_metrics(real_f, real_p, fake_f, fake_p, key)


def evaluate_samples(family: ModuleType, state, config, key: jax.Array, test_images: np.ndarray,
                     train_images: np.ndarray | None, num_samples: int = 10_000,
                     emas: tuple[bool, ...] = (False,)) -> dict:
  """Sample-quality metrics of the generator(s) and their real-data floor.

  Args:
    family, state, config: a trained generative run (`family.sample` is used).
    key: the evaluation key; the samples and KID's subsets derive from it.
    test_images: the real test images (uint8), the reference set.
    train_images: real training images for the floor (its first `num_samples`); None
      skips the floor.
    num_samples: generated images (and real images per set) to compare.
    emas: which generators to score: False the raw one, True its moving average.
  Returns:
    {"classifier": {...}, "num_samples": n, "floor": {...}, "generator": {...},
     "generator_ema": {...}} (the floor and EMA entries only where computed).
  """
  classifier = domain_lib.load(config.data.name)
  n = min(num_samples, len(test_images))
  test = test_images[:n]
  k_sample, k_metric = jax.random.split(key)
  results = {"classifier": {"dataset": classifier.dataset,
                            "test_accuracy": classifier.test_accuracy},
             "num_samples": n}
  if train_images is not None:
    results["floor"] = sample_metrics(classifier, test, train_images[:n], k_metric)
  for ema in emas:
    fake = generate_images(family, state, k_sample, n, config.data.preprocess, ema=ema)
    results["generator_ema" if ema else "generator"] = sample_metrics(classifier, test, fake,
                                                                      k_metric)
  return results
