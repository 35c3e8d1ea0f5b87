"""Multinomial naive Bayes (Lidstone alpha=1): genjax.classical.multinomial_nb as a config of
the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: the raw 0..255 pixel intensities as counts (data.preprocess=none, as the figure of
docs/results.md was measured; [0, 1] pixels give 0.8357 on MNIST); UCI features min-max scaled
to [0, 1].
Hyper-parameters: the defaults.

Run:
  python experiments/train.py --config=experiments/configs/multinomial_nb.py:mnist --workdir=runs/multinomial_nb_mnist
  python experiments/evaluate.py --workdir=runs/multinomial_nb_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.8365; Fashion-MNIST 0.6554.
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "multinomial naive Bayes", "side": "generative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="multinomial_nb")
