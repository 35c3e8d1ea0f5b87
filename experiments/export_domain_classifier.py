"""Export a trained domain_cnn run as a shipped domain classifier (flax msgpack + JSON metadata).

  python experiments/export_domain_classifier.py --workdir=runs/domain_cnn_mnist

writes genjax/assets/domain_cnn_<dataset>.msgpack (the variables, `flax.serialization.to_bytes`)
and domain_cnn_<dataset>.json (dataset, architecture, parameter count, the training config and
the test accuracy measured here through genjax.metrics.domain, the path GAN metrics use).
"""

import hashlib
import json
import os

import numpy as np
from absl import app, flags, logging

from genjax import cli

flags.DEFINE_string("workdir", None, "A finished experiments/configs/domain_cnn.py run.")
flags.DEFINE_integer("step", None, "Checkpoint step to export (default: the latest).")
flags.DEFINE_string("output_dir",
                    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "genjax", "assets"),
                    "Where the .msgpack and .json go (default: the package's assets).")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS

# The test suite re-measures accuracy on this many test images against the recorded figure.
FIRST_TEST_IMAGES = 2000


def accuracy(probs_NxK: np.ndarray, labels_N: np.ndarray) -> float:
  return float(np.mean(np.argmax(probs_NxK, axis=-1) == labels_N))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  import flax
  import flax.serialization
  import jax

  from genjax import family as family_lib
  from genjax import train
  from genjax.metrics import domain
  from genjax.state import count_params

  family, config, state = train.restore_for_eval(FLAGS.workdir, FLAGS.step)
  family = family_lib.ALIASES.get(config.family, config.family)
  if family != "neural_classifier" or config.model.arch != "domain_cnn":
    raise app.UsageError(f"{FLAGS.workdir} trained family={config.family!r}, "
                         f"model.arch={config.model.get('arch')!r}; expected classifier/domain_cnn")
  if config.data.preprocess != "unit":
    # GAN metrics hand the classifier images in [0, 1].
    raise app.UsageError(f"the run used data.preprocess={config.data.preprocess!r}; a domain "
                         "classifier must be trained on 'unit' images")
  dataset = config.data.name
  variables = jax.device_get(state.model.variables)
  blob = flax.serialization.to_bytes(variables)

  metadata = {
      "dataset": dataset,
      "arch": config.model.arch,
      "image_shape": list(config.data.image_shape),
      "preprocess": config.data.preprocess,
      "num_classes": config.model.num_classes,
      "feature_dim": config.model.feature_dim,
      "num_params": count_params(variables["params"]),
      "step": int(state.step),
  }
  metadata["config"] = config.to_dict()
  classifier = domain.from_variables(variables, metadata)
  test = train.load_split(config, "test")
  _, probs = classifier.features_and_probs(test.arrays["image"])
  probs = np.asarray(probs)
  metadata["test_accuracy"] = accuracy(probs, test.labels)
  metadata["test_examples"] = len(test)
  metadata[f"test_accuracy_first_{FIRST_TEST_IMAGES}"] = accuracy(
      probs[:FIRST_TEST_IMAGES], test.labels[:FIRST_TEST_IMAGES])
  results_path = os.path.join(FLAGS.workdir, "results.json")
  if os.path.exists(results_path):
    with open(results_path) as f:
      metadata["training_results"] = json.load(f)  # the loop's own evaluation, for comparison
  metadata["msgpack_sha256"] = hashlib.sha256(blob).hexdigest()
  metadata["versions"] = {"jax": jax.__version__, "flax": flax.__version__}

  os.makedirs(FLAGS.output_dir, exist_ok=True)
  msgpack_path = os.path.join(FLAGS.output_dir, domain.asset_name(dataset, "msgpack"))
  json_path = os.path.join(FLAGS.output_dir, domain.asset_name(dataset, "json"))
  with open(msgpack_path, "wb") as f:
    f.write(blob)
  with open(json_path, "w") as f:
    json.dump(metadata, f, indent=2, sort_keys=True)
    f.write("\n")
  print(f"{dataset}: test accuracy {metadata['test_accuracy']:.4f} "
        f"({metadata['num_params']:,} parameters, step {metadata['step']})")
  print(f"wrote {msgpack_path} ({len(blob):,} bytes) and {json_path}")


if __name__ == "__main__":
  cli.run(main)
