"""Softmax regression by SGD on a UCI set (the step family of the README's "Adding a model").

The argument names the dataset (`iris`, the default; `wine`, `breast_cancer`, `digits`),
optionally followed by `,smoke` (40 steps).

Run:
  python experiments/train.py --config=experiments/configs/softmax_sgd.py:iris --workdir=runs/softmax_sgd_iris
"""

import ml_collections

from genjax import config as gconfig

FEATURES = {"iris": (4, 3), "wine": (13, 3), "breast_cancer": (30, 2), "digits": (64, 10)}


def get_config(arg: str | None = None):
  dataset, smoke = gconfig.parse_dataset_arg(arg, default="iris", choices=tuple(FEATURES))
  c = ml_collections.ConfigDict()
  c.family = "softmax_sgd"
  c.seed = 0
  c.parallel = "auto"
  c.population = 1  # > 1: members with seeds seed, seed+1, ... as one program
  c.data = gconfig.dataset(dataset, batch_size=16)
  num_features, num_classes = FEATURES[dataset]
  c.model = ml_collections.ConfigDict({"num_features": num_features, "num_classes": num_classes})
  c.optim = ml_collections.ConfigDict({"learning_rate": 0.1})
  c.train = gconfig.train_schedule(50, log_every=7, checkpoint_every=70, sample_every=10**9)
  c.train.eval_every = 0
  return gconfig.apply_variant(c, "smoke" if smoke else None)
