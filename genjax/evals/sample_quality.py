"""Sample quality of generative families through a shipped domain classifier, beside its floor.

The shipped domain classifier of the run's dataset (genjax.metrics.domain) is the offline
stand-in for Inception: FID, KID, the Inception-score analogue (`inception_score`),
precision/recall and density/coverage (genjax.metrics.sample_quality) of generated images
against the evaluation split. Each value stands beside its floor (`<metric>_floor`), the same
metric between real training images and the real evaluation images: what a generator that
reproduced the data distribution exactly would score. Every generator the family names
(`sample_variants(state)`, e.g. a GAN's EMA copy as `_ema`) is scored with the same draws.
"""

from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import images as image_data
from genjax.evals.base import Context
from genjax.evals.samples import sample_variants
from genjax.metrics import domain as domain_lib
from genjax.metrics import sample_quality as sq

STREAM = 2  # folded into the evaluation key
# sample_quality.all_metrics' short names -> the names every family reports.
RENAME = {"is": "inception_score", "is_std": "inception_score_std"}


def generate_images(family: ModuleType, state, key: jax.Array, num: int, preprocess: str,
                    chunk: int = 1000, **sample_kwargs) -> np.ndarray:
  """`num` samples as float32 images in [0, 1], drawn `chunk` at a time (one compile).

  Chunk i uses key fold_in(key, i): the images are a pure function of (key, num, chunk).
  """
  sample = jax.jit(lambda s, k: family.sample(s, k, chunk, **sample_kwargs))
  parts = []
  for i, start in enumerate(range(0, num, chunk)):
    x = image_data.postprocess(sample(state, jax.random.fold_in(key, i)), preprocess)
    parts.append(np.asarray(jax.device_get(x))[:num - start])
  return np.concatenate(parts)


def sample_metrics(classifier: domain_lib.DomainClassifier, real_images, fake_images,
                   key: jax.Array) -> dict[str, float]:
  """All sample-quality metrics of `fake_images` against `real_images` (uint8 or [0, 1])."""
  real_f, real_p = classifier.features_and_probs(jnp.asarray(real_images))
  fake_f, fake_p = classifier.features_and_probs(jnp.asarray(fake_images))
  out = sq.all_metrics(real_f, real_p, fake_f, fake_p, key)
  return {RENAME.get(k, k): v for k, v in out.items()}


def evaluate_samples(family: ModuleType, state, dataset: str, preprocess: str, key: jax.Array,
                     test_images: np.ndarray, train_images: np.ndarray | None,
                     num_samples: int = 10_000, variants: dict[str, dict] | None = None) -> dict:
  """Sample-quality metrics of the generator(s) and their real-data floor.

  Args:
    family, state: a trained generative run (`family.sample` is used).
    dataset, preprocess: the run's `data.name` (its domain classifier) and `data.preprocess`.
    key: the samples and KID's subsets derive from it.
    test_images: the real reference images (uint8).
    train_images: real training images for the floor (its first `num_samples`); None
      skips the floor.
    num_samples: generated images (and real images per set) to compare.
    variants: name suffix -> `family.sample` arguments (default: the one generator).
  Returns:
    {"classifier": {...}, "num_samples": n, "floor": {...}, "generator": {...},
     "generator<suffix>": {...}} (the floor only where computed).
  """
  classifier = domain_lib.load(dataset)
  n = min(num_samples, len(test_images))
  test = test_images[:n]
  k_sample, k_metric = jax.random.split(key)
  results = {"classifier": {"dataset": classifier.dataset,
                            "test_accuracy": classifier.test_accuracy},
             "num_samples": n}
  if train_images is not None:
    results["floor"] = sample_metrics(classifier, test, train_images[:n], k_metric)
  for suffix, kwargs in (variants or {"": {}}).items():
    fake = generate_images(family, state, k_sample, n, preprocess, **kwargs)
    results["generator" + suffix] = sample_metrics(classifier, test, fake, k_metric)
  return results


def sample_quality(ctx: Context, split: str, num_samples: int = 10_000,
                   floor_split: str | None = "train") -> dict:
  """fid, kid, inception_score, precision, recall, density, coverage (and their `_std`s) of
  the samples against `split`, each generator variant's with its suffix, the floor's as
  `<metric>_floor`; the nested tables under `details`. Datasets without a shipped domain
  classifier get nothing (a note in `details`)."""
  ctx.require("sample")
  dataset = ctx.config.data.name
  if dataset not in domain_lib.DATASETS:
    return {"details": {"skipped": f"no shipped domain classifier for {dataset!r}"}}
  test = ctx.split(split).arrays["image"]
  train = ctx.split(floor_split).arrays["image"] if floor_split else None
  variants = sample_variants(ctx.family, ctx.state)
  out = evaluate_samples(ctx.family, ctx.state, dataset, ctx.config.data.preprocess,
                         jax.random.fold_in(ctx.key, STREAM), test, train, num_samples, variants)
  flat = {"num_samples": out["num_samples"]}
  for suffix in variants:
    flat.update({k + suffix: v for k, v in out["generator" + suffix].items()})
  flat.update({k + "_floor": v for k, v in out.get("floor", {}).items()})
  return {**flat, "details": out}
