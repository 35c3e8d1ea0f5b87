"""Bernoulli naive Bayes (features > 0 count as 1, Lidstone alpha=1):
genjax.classical.bernoulli_nb as a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1], thresholded at binarize=0 (pixels > 0); UCI features
standardised (so the threshold is the training mean). Hyper-parameters: the defaults.

Run:
  python experiments/train.py --config=experiments/configs/bernoulli_nb.py:mnist --workdir=runs/bernoulli_nb_mnist
  python experiments/evaluate.py --workdir=runs/bernoulli_nb_mnist

Expected (README, test split): MNIST accuracy 0.8413 (scikit-learn's BernoulliNB gives the
same); Fashion-MNIST 0.7059.
"""

from genjax.families.classical import classical_config

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "Bernoulli naive Bayes", "side": "generative"}


def get_config(arg: str | None = None):
  return classical_config("bernoulli_nb", arg)
