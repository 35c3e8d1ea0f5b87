"""Gaussian naive Bayes (var_smoothing 1e-9, scikit-learn's): genjax.classical.gaussian_nb as
a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features raw (the model is scale-free). Hyper-parameters:
the defaults.

Run:
  python experiments/train.py --config=experiments/configs/gaussian_nb.py:mnist --workdir=runs/gaussian_nb_mnist
  python experiments/evaluate.py --workdir=runs/gaussian_nb_mnist

Expected (README, test split): MNIST accuracy 0.5558 (scikit-learn's GaussianNB gives the
same); Fashion-MNIST 0.5856.
"""

from genjax.families.classical import classical_config

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "Gaussian naive Bayes", "side": "generative"}


def get_config(arg: str | None = None):
  return classical_config("gaussian_nb", arg)
