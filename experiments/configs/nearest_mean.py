"""Nearest class mean on a UCI set (the fit family of docs/adding_a_model.md).

The argument names the dataset (`iris`, the default; `wine`, `breast_cancer`, `digits`,
`mnist`, `fashion_mnist`), optionally followed by `,smoke` (the same fit: it takes seconds).

Run:
  python experiments/train.py --config=experiments/configs/nearest_mean.py:iris --workdir=runs/nearest_mean_iris
  python experiments/evaluate.py --workdir=runs/nearest_mean_iris
"""

from genjax.families import nearest_mean


def get_config(arg: str | None = None):
  return nearest_mean.experiment_config(arg)
