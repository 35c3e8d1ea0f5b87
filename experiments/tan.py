"""Tree-augmented naive Bayes vs naive Bayes on the UCI sets and binarised MNIST.

  python experiments/tan.py --outdir=runs/tan [--repeats=10] [--mnist_idx_dir=../shared/data/mnist]

UCI sets (scikit-learn's copies: breast_cancer, wine, iris, digits): `repeats` seeded stratified
splits, 2/3 train and 1/3 test, features in `num_bins` equal-frequency bins fitted on the
training part; test accuracy and log-loss, mean and standard deviation over the splits. The two
classifiers share every split, discretisation and the Lidstone pseudo-count, and differ only in
the tree. Binarised MNIST: pixels > 0.5 (binarize_fixed), the 60,000 training images against
the 10,000 test images. Writes <outdir>/tan.json and <outdir>/tan.md (a Markdown table).
"""

import json
import os
import time

from absl import app, flags

flags.DEFINE_string("outdir", "runs/tan", "Where tan.json and tan.md go.")
flags.DEFINE_integer("repeats", 10, "Random 2/3-1/3 splits per UCI set.")
flags.DEFINE_integer("num_bins", 5, "Equal-frequency bins per real feature.")
flags.DEFINE_float("alpha", 1.0, "Lidstone pseudo-count.")
flags.DEFINE_list("datasets", ["breast_cancer", "wine", "iris", "digits"], "UCI sets.")
flags.DEFINE_string("mnist_idx_dir", "../shared/data/mnist",
                    "Raw MNIST IDX files ('' reads TFDS; 'skip' leaves MNIST out).")
FLAGS = flags.FLAGS


def _scores(bn, params, x, y) -> dict:
  import numpy as np
  log_p = np.asarray(bn.log_proba(params, x))
  return {"accuracy": float(np.mean(np.argmax(log_p, 1) == y)),
          "log_loss": float(-np.mean(log_p[np.arange(len(y)), y]))}


def uci(name: str) -> dict:
  """Mean and sd of test accuracy and log-loss of NB and TAN over seeded splits of `name`."""
  import numpy as np

  from genjax.data import tabular
  from genjax.structured import bayes_net as bn
  data = tabular.load(name)
  runs = {"nb": [], "tan": []}
  for seed in range(FLAGS.repeats):
    tr, te = tabular.train_test_split(data, (2 * len(data)) // 3, seed)
    for model, tree in (("nb", False), ("tan", True)):
      params = bn.fit(tr.x, tr.y, data.num_classes, tree=tree, num_bins=FLAGS.num_bins,
                      alpha=FLAGS.alpha)
      runs[model].append(_scores(bn, params, te.x, te.y))
  out = {"n": len(data), "d": int(data.x.shape[1]), "classes": data.num_classes,
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
  import numpy as np

  from genjax.data import images
  from genjax.structured import bayes_net as bn
  idx = FLAGS.mnist_idx_dir or None
  tr = images.load_arrays("mnist", "train", idx_dir=idx)
  te = images.load_arrays("mnist", "test", idx_dir=idx)
  x_tr = tr.images.reshape(len(tr), -1).astype(np.float32) / 255.0
  x_te = te.images.reshape(len(te), -1).astype(np.float32) / 255.0
  out = {"n": len(tr) + len(te), "d": x_tr.shape[1], "classes": 10,
         "protocol": "60,000 train / 10,000 test, pixels > 0.5"}
  for model, tree in (("nb", False), ("tan", True)):
    t = time.perf_counter()
    params = bn.fit(x_tr, tr.labels, 10, tree=tree, discretize="binary", threshold=0.5,
                    alpha=FLAGS.alpha)
    out[f"{model}_fit_seconds"] = time.perf_counter() - t
    for metric, v in _scores(bn, params, x_te, np.asarray(te.labels)).items():
      out[f"{model}_{metric}"] = v
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
  os.makedirs(FLAGS.outdir, exist_ok=True)
  results = {}
  for name in FLAGS.datasets:
    t = time.perf_counter()
    results[name] = uci(name)
    print(name, {k: round(v, 4) for k, v in results[name].items() if isinstance(v, float)},
          f"{time.perf_counter() - t:.0f} s", flush=True)
  if FLAGS.mnist_idx_dir != "skip":
    results["binarized_mnist"] = mnist()
    print("binarized_mnist", results["binarized_mnist"], flush=True)
  with open(os.path.join(FLAGS.outdir, "tan.json"), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown(results)
  with open(os.path.join(FLAGS.outdir, "tan.md"), "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  app.run(main)
