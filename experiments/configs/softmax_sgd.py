"""Softmax regression by SGD on a UCI set (the step family of docs/adding_a_model.md).

The argument names the dataset (`iris`, the default; `wine`, `breast_cancer`, `digits`),
optionally followed by `,smoke` (40 steps).

Run:
  python experiments/train.py --config=experiments/configs/softmax_sgd.py:iris --workdir=runs/softmax_sgd_iris
"""

from genjax.families import softmax_sgd


def get_config(arg: str | None = None):
  return softmax_sgd.experiment_config(arg, learning_rate=0.1, batch_size=16, num_epochs=50)
