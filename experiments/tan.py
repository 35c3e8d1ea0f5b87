"""Tree-augmented naive Bayes vs naive Bayes on the UCI sets and binarised MNIST.

  python experiments/tan.py --workdir=runs/tan [--repeats=10] [--data_dir=../shared/data/mnist]

UCI sets (scikit-learn's copies: breast_cancer, wine, iris, digits): `repeats` seeded stratified
splits, 2/3 train and 1/3 test, features in `num_bins` equal-frequency bins fitted on the
training part; test accuracy and log-loss, mean and standard deviation over the splits. The two
classifiers share every split, discretisation and the Lidstone pseudo-count, and differ only in
the tree. Binarised MNIST: pixels > 0.5 (binarize_fixed), the 60,000 training images against
the 10,000 test images. Every fit is one run of the `tan` fit family (genjax.families.tan,
config experiments/configs/tan.py) through the generic loop, in <workdir>/<data>/<model>[_seed<k>].
Writes <workdir>/tan.json and <workdir>/tan.md (a Markdown table). --outdir and --mnist_idx_dir
are the old names of --workdir and --data_dir.
"""

import json
import os
import time

from absl import app, flags, logging

flags.DEFINE_string("workdir", "runs/tan", "Where tan.json, tan.md and each fit's workdir go.")
flags.DEFINE_alias("outdir", "workdir")
flags.DEFINE_integer("repeats", 10, "Random 2/3-1/3 splits per UCI set.")
flags.DEFINE_integer("num_bins", 5, "Equal-frequency bins per real feature.")
flags.DEFINE_float("alpha", 1.0, "Lidstone pseudo-count.")
flags.DEFINE_list("datasets", ["breast_cancer", "wine", "iris", "digits"], "UCI sets.")
flags.DEFINE_string("data_dir", "../shared/data/mnist",
                    "Raw MNIST IDX files ('' reads TFDS; 'skip' leaves MNIST out).")
flags.DEFINE_alias("mnist_idx_dir", "data_dir")
FLAGS = flags.FLAGS

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tan.py")
MODELS = (("nb", False), ("tan", True))


def fit(dataset: str, tree: bool, workdir: str, **data) -> dict:
  """One fit of the tan family through the loop; its results.json."""
  from genjax import config as gconfig
  from genjax import train

  config = gconfig.load(f"{CONFIG}:{dataset}")
  config.model.tree = tree
  config.model.num_bins = FLAGS.num_bins
  config.model.alpha = FLAGS.alpha
  config.train.progress = False
  for k, v in data.items():
    config.data[k] = v
  return train.train_and_evaluate(config, workdir)


def uci(name: str) -> dict:
  """Mean and sd of test accuracy and log-loss of NB and TAN over seeded splits of `name`."""
  import numpy as np

  from genjax.data import tabular
  data = tabular.load(name)
  n = len(data)
  # The loop's split keeps round(test_fraction * n) rows for testing: exactly n - 2n // 3.
  test_fraction = (n - (2 * n) // 3) / n
  runs = {model: [] for model, _ in MODELS}
  for seed in range(FLAGS.repeats):
    for model, tree in MODELS:
      r = fit(name, tree, os.path.join(FLAGS.workdir, name, f"{model}_seed{seed}"),
              test_fraction=test_fraction, split_seed=seed)
      runs[model].append(r["test"])
  out = {"n": n, "d": int(data.x.shape[1]), "classes": data.num_classes,
         "protocol": f"{FLAGS.repeats} stratified 2/3-1/3 splits, {FLAGS.num_bins} "
                     "equal-frequency bins"}
  for model, rs in runs.items():
    for metric in ("accuracy", "log_loss"):
      v = np.array([r[metric] for r in rs])
      out[f"{model}_{metric}"] = float(v.mean())
      out[f"{model}_{metric}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
  return out


def mnist() -> dict:
  """NB and TAN on MNIST binarised at 0.5: test accuracy, log-loss and fit seconds."""
  out = {"n": 70_000, "d": 784, "classes": 10,
         "protocol": "60,000 train / 10,000 test, pixels > 0.5"}
  for model, tree in MODELS:
    r = fit("mnist", tree, os.path.join(FLAGS.workdir, "binarized_mnist", model),
            idx_dir=FLAGS.data_dir or None)
    out[f"{model}_fit_seconds"] = r["fit_seconds"]
    for metric in ("accuracy", "log_loss"):
      out[f"{model}_{metric}"] = r["test"][metric]
      out[f"{model}_{metric}_sd"] = 0.0
  return out


def markdown(results: dict) -> str:
  lines = ["| data | N | D | NB accuracy | TAN accuracy | NB log-loss | TAN log-loss |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

  def cell(r, key, pct):
    v, sd = r[key], r[key + "_sd"]
    if pct:
      return f"{100 * v:.1f} ± {100 * sd:.1f} %" if sd else f"{100 * v:.2f} %"
    return f"{v:.3f} ± {sd:.3f}" if sd else f"{v:.3f}"

  for name, r in results.items():
    lines.append(f"| {name} | {r['n']} | {r['d']} | {cell(r, 'nb_accuracy', True)} | "
                 f"{cell(r, 'tan_accuracy', True)} | {cell(r, 'nb_log_loss', False)} | "
                 f"{cell(r, 'tan_log_loss', False)} |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO
  os.makedirs(FLAGS.workdir, exist_ok=True)
  results = {}
  for name in FLAGS.datasets:
    t = time.perf_counter()
    results[name] = uci(name)
    print(name, {k: round(v, 4) for k, v in results[name].items() if isinstance(v, float)},
          f"{time.perf_counter() - t:.0f} s", flush=True)
  if FLAGS.data_dir != "skip":
    results["binarized_mnist"] = mnist()
    print("binarized_mnist", results["binarized_mnist"], flush=True)
  with open(os.path.join(FLAGS.workdir, "tan.json"), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown(results)
  with open(os.path.join(FLAGS.workdir, "tan.md"), "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  app.run(main)
