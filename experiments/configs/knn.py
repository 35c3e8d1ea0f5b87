"""Exact k-nearest neighbours (L2, uniform votes): genjax.classical.knn as a config of the
classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features standardised. Hyper-parameters: k=3 on the image sets
(the MNIST figure of docs/results.md), the default k=5 on the UCI sets (the UCI table of
docs/classifiers.md); --config.model.hp.k=5 on MNIST gives 0.9688 (docs/classifiers.md).

Run:
  python experiments/train.py --config=experiments/configs/knn.py:mnist --workdir=runs/knn_mnist
  python experiments/evaluate.py --workdir=runs/knn_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.9705 (log-loss 0.132, ECE 0.004);
Fashion-MNIST 0.8541; UCI (k=5) accuracy / log-loss: breast_cancer 0.972 / 0.20, wine
0.886 / 0.44, iris 0.921 / 0.14, digits 0.971 / 0.10.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "k-nearest neighbours", "side": "discriminative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="knn", image_hp={"k": 3})
