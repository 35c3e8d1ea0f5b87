"""Tree-augmented naive Bayes (genjax.families.tan) on a UCI set or binarised MNIST.

The argument names the dataset (`breast_cancer`, the default; `wine`, `iris`, `digits`,
`mnist`), optionally followed by `,nb` (naive Bayes: the same discretisation and smoothing,
no tree) and `,smoke` (the same fit: UCI sets take seconds). UCI features come unscaled
(`data.preprocess = none`) into `num_bins` equal-frequency bins of the training rows; MNIST
pixels in [0, 1] binarised at 0.5 (discretize = binary).

Run (figures of docs/structured.md: binarised MNIST test accuracy, log-loss):
  python experiments/train.py --config=experiments/configs/tan.py:mnist --workdir=runs/tan_mnist
    # TAN 89.83 %, 0.962
  python experiments/train.py --config=experiments/configs/tan.py:mnist,nb --workdir=runs/nb_mnist
    # naive Bayes 84.27 %, 3.182
experiments/tan.py runs every set for both models over repeated seeded splits (its table in
docs/structured.md).
"""

from genjax.families import tan

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "TAN (tree-augmented naive Bayes)", "side": "generative",
              "datasets": ("breast_cancer", "wine", "iris", "digits", "mnist")}


def get_config(arg: str | None = None):
  return tan.experiment_config(arg, num_bins=5, threshold=0.5, alpha=1.0)
