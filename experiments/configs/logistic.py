"""Multinomial logistic regression (L2 1e-4, full-batch L-BFGS): genjax.classical.logistic
as a config of the classical fit family (genjax.families.classical).

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features standardised with the training rows' statistics.
Hyper-parameters: the defaults (l2=1e-4, solver=lbfgs, max_iter=1000, tol=1e-5) everywhere.

Run:
  python experiments/train.py --config=experiments/configs/logistic.py:mnist --workdir=runs/logistic_mnist
  python experiments/evaluate.py --workdir=runs/logistic_mnist

Expected (docs/results.md, test split; preconditioned L-BFGS, 2-core CPU): MNIST accuracy 0.9263
(log-loss 0.263, ECE 0.015); Fashion-MNIST 0.8461; UCI accuracy / log-loss: breast_cancer
0.958 / 0.15, wine 0.909 / 0.33, iris 1.000 / 0.05, digits 0.980 / 0.06.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "logistic regression", "side": "discriminative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="logistic")
