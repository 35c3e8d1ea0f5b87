"""Categorical naive Bayes on four levels per feature (Lidstone alpha=1):
genjax.classical.categorical_nb as a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs (data.preprocess=quantize): pixels cut into 4 grey levels, pixel // 64; UCI features
into 4 levels at the training quartiles. Hyper-parameters: num_categories=4, else the defaults.

Run:
  python experiments/train.py --config=experiments/configs/categorical_nb.py:mnist --workdir=runs/categorical_nb_mnist
  python experiments/evaluate.py --workdir=runs/categorical_nb_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.8472; Fashion-MNIST 0.7023.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "categorical naive Bayes", "side": "generative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="categorical_nb", hp={"num_categories": 4})
