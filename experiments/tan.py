"""Tree-augmented naive Bayes vs naive Bayes on the UCI sets and binarised MNIST.

  python experiments/tan.py --workdir=runs/tan [--repeats=10] [--idx_dir=../shared/data/mnist]

UCI sets (scikit-learn's copies: breast_cancer, wine, iris, digits): `repeats` seeded stratified
splits, 2/3 train and 1/3 test, features in `num_bins` equal-frequency bins fitted on the
training part; test accuracy and log-loss, mean and standard deviation over the splits. The two
classifiers share every split, discretisation and the Lidstone pseudo-count, and differ only in
the tree. Binarised MNIST: pixels > 0.5 (binarize_fixed), the 60,000 training images against
the 10,000 test images. Every fit is one run of the `tan` fit family (genjax.families.tan,
config experiments/configs/tan.py) through the generic loop, in <workdir>/<data>/<model>[_seed<k>].
Writes <workdir>/tan.json and <workdir>/tan.md (a Markdown table). `--config.FIELD=VALUE`
overrides a field of every fit's config (`--config.model.num_bins=5`, `--config.model.alpha=1`);
`--idx_dir` is the MNIST fits' data.idx_dir (raw IDX files; unset: TFDS).
"""

import json
import os
import time

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402

flags.DEFINE_string("workdir", "runs/tan", "Where tan.json, tan.md and each fit's workdir go.")
flags.DEFINE_integer("repeats", 10, "Random 2/3-1/3 splits per UCI set.")
flags.DEFINE_list("datasets", ["breast_cancer", "wine", "iris", "digits"], "UCI sets.")
flags.DEFINE_bool("mnist", True, "Also binarised MNIST.")
flags.DEFINE_string("idx_dir", "../shared/data/mnist",
                    "The MNIST fits' data.idx_dir: raw MNIST IDX files ('': read TFDS).")
FLAGS = flags.FLAGS

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tan.py")
MODELS = (("nb", False), ("tan", True))
RENAMED = {"outdir": "--workdir", "data_dir": "--idx_dir", "mnist_idx_dir": "--idx_dir",
           "num_bins": "--config.model.num_bins", "alpha": "--config.model.alpha"}


def fit_config(dataset: str, tree: bool, overrides: dict, **data):
  """experiments/configs/tan.py on `dataset`, `overrides` ({dotted field: value text}) set, the
  tree on or off and the data fields `data` set; an unknown field is a ValueError naming it."""
  from genjax import studies
  config = studies.load_config(f"{CONFIG}:{dataset}", overrides)
  config.model.tree = tree
  for k, v in data.items():
    config.data[k] = v
  return config


def fit(dataset: str, tree: bool, workdir: str, overrides: dict, **data) -> dict:
  """One fit of the tan family through the loop; its results.json."""
  from genjax import train
  return train.train_and_evaluate(fit_config(dataset, tree, overrides, **data), workdir)


def uci(name: str, overrides: dict) -> dict:
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
      r = fit(name, tree, os.path.join(FLAGS.workdir, name, f"{model}_seed{seed}"), overrides,
              test_fraction=test_fraction, split_seed=seed)
      runs[model].append(r["test"])
  num_bins = fit_config(name, True, overrides).model.num_bins
  out = {"n": n, "d": int(data.x.shape[1]), "classes": data.num_classes,
         "protocol": f"{FLAGS.repeats} stratified 2/3-1/3 splits, {num_bins} "
                     "equal-frequency bins"}
  for model, rs in runs.items():
    for metric in ("accuracy", "log_loss"):
      v = np.array([r[metric] for r in rs])
      out[f"{model}_{metric}"] = float(v.mean())
      out[f"{model}_{metric}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
  return out


def mnist(overrides: dict) -> dict:
  """NB and TAN on MNIST binarised at 0.5: test accuracy, log-loss and fit seconds."""
  out = {"n": 70_000, "d": 784, "classes": 10,
         "protocol": "60,000 train / 10,000 test, pixels > 0.5"}
  for model, tree in MODELS:
    r = fit("mnist", tree, os.path.join(FLAGS.workdir, "binarized_mnist", model), overrides,
            idx_dir=FLAGS.idx_dir or None)
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


def main(argv, overrides):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.idx_dir == "skip":
    raise ValueError("--idx_dir=skip (no MNIST) is now --nomnist")
  for name in FLAGS.datasets:
    fit_config(name, True, overrides)  # a bad dataset or override fails before any fit
  os.makedirs(FLAGS.workdir, exist_ok=True)
  results = {}
  for name in FLAGS.datasets:
    t = time.perf_counter()
    results[name] = uci(name, overrides)
    print(name, {k: round(v, 4) for k, v in results[name].items() if isinstance(v, float)},
          f"{time.perf_counter() - t:.0f} s", flush=True)
  if FLAGS.mnist:
    results["binarized_mnist"] = mnist(overrides)
    print("binarized_mnist", results["binarized_mnist"], flush=True)
  with open(os.path.join(FLAGS.workdir, "tan.json"), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown(results)
  with open(os.path.join(FLAGS.workdir, "tan.md"), "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED, config_overrides=True)
