"""Linear SVM, Crammer-Singer squared hinge (l2=1e-4, L-BFGS, 300 iterations):
genjax.classical.svm with kernel="linear" as a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features standardised. Hyper-parameters: on the image sets
those of the MNIST figure of docs/results.md (multi_class=crammer_singer, l2=1e-4,
max_iter=300); on the UCI sets the defaults (one-vs-rest, l2=1e-4, max_iter=1000), as the UCI
table of docs/classifiers.md used.
One-vs-rest on MNIST: --config.model.hp.multi_class=ovr (docs/classifiers.md: 0.9182).

Run:
  python experiments/train.py --config=experiments/configs/linear_svm.py:mnist --workdir=runs/linear_svm_mnist
  python experiments/evaluate.py --workdir=runs/linear_svm_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.9259 (log-loss 0.285, ECE 0.007);
Fashion-MNIST 0.8422; UCI (one-vs-rest) accuracy / log-loss: breast_cancer 0.930 / 2.80,
wine 1.000 / 0.00, iris 1.000 / 0.04, digits 0.951 / 0.35.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "linear SVM", "side": "discriminative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(
      arg, name="linear_svm", image_hp={"multi_class": "crammer_singer", "l2": 1e-4, "max_iter": 300})
