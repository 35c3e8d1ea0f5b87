"""Test accuracy, log-loss and expected calibration error of a trained classifier workdir.

  python experiments/evaluate_classifier.py --workdir=runs/cnn_mnist [--step=N] [--num_bins=15]

Restores the latest (or `--step`) checkpoint of a `classifier`-family run (configs
mlp_mnist.py, lenet5_mnist.py, cnn_mnist.py, domain_cnn.py), predicts the whole test split in
inference mode and scores the log-softmax with genjax.metrics.classification.summary. The
figures are printed and written to <workdir>/classification.json (results.json, which the
training loop writes, is left as it is).
"""

import json
import os

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "A classifier training workdir (config.json, checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.DEFINE_integer("num_bins", 15, "Equal-width confidence bins of the calibration error.")
flags.DEFINE_integer("batch_size", 1000, "Test images per forward pass.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def test_log_probs(state, config, batch_size: int = 1000):
  """(log-probabilities (N, K), labels (N,)) of the test split, the network in inference mode."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from genjax import train
  from genjax.data import images as image_data

  test = train.load_split(config, "test")
  m = state.model

  @jax.jit
  def log_probs(x_u8):
    x = image_data.preprocess(x_u8, config.data.preprocess, jax.random.key(0))
    return jax.nn.log_softmax(m.module.apply(m.variables, x, train=False))

  chunks = [log_probs(jnp.asarray(test.images[i:i + batch_size]))
            for i in range(0, len(test), batch_size)]
  return jnp.concatenate(chunks), jnp.asarray(np.asarray(test.labels), jnp.int32)


def evaluate(workdir: str, step: int | None = None, num_bins: int = 15,
             batch_size: int = 1000) -> dict:
  """{"step", "dataset", "arch", "test": {"accuracy", "error", "log_loss", "ece"}} of a workdir."""
  from genjax import train
  from genjax.metrics import classification

  family, config, state = train.restore_for_eval(workdir, step)
  if family.__name__ != "genjax.families.neural_classifier":
    raise ValueError(f"{workdir} holds a {family.__name__} run, not a classifier")
  log_probs, labels = test_log_probs(state, config, batch_size)
  test = classification.summary(log_probs, labels, num_bins)
  return {"step": int(state.step), "dataset": config.data.name, "arch": config.model.arch,
          "num_bins": num_bins, "test": {**test, "error": 1.0 - test["accuracy"]}}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  from genjax import writers
  results = evaluate(FLAGS.workdir, FLAGS.step, FLAGS.num_bins, FLAGS.batch_size)
  writers.write_json(os.path.join(FLAGS.workdir, "classification.json"), results)
  print(json.dumps(results))


if __name__ == "__main__":
  app.run(main)
