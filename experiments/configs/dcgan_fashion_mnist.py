"""The course's DCGAN (see dcgan_mnist.py) on Fashion-MNIST: same networks and schedule
(tests/test_config_idiom.py checks that the two configs differ only in data.name).

  python experiments/train.py --config=experiments/configs/dcgan_fashion_mnist.py \
      --workdir=runs/dcgan_fashion_mnist
"""

import ml_collections

from genjax import config as gconfig
from genjax.families import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan.experiment_config(
      arg, model=gan.model_config(arch="dcgan", z_dim=64, hidden_dim=64, d_hidden_dim=16),
      optim=gconfig.adam(2e-4, b1=0.5, b2=0.999), num_epochs=50, dataset="fashion_mnist")
