"""Quadratic discriminant analysis (Gaussian classes, a shrunk covariance each):
genjax.classical.qda as a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features standardised. Hyper-parameters: on the image sets
shrinkage=0.3, the value the figure of docs/results.md picked on held-out training images
(experiments/generative_samples.py --shrinkage_grid) before refitting on all 60,000; on the
UCI sets the default 1e-2.

Run:
  python experiments/train.py --config=experiments/configs/qda.py:mnist --workdir=runs/qda_mnist
  python experiments/evaluate.py --workdir=runs/qda_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.9328; Fashion-MNIST 0.7269.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "QDA", "side": "generative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="qda", image_hp={"shrinkage": 0.3})
