"""The first GAN of the DeepLearning.AI GAN Specialization (course 1, week 1) on MNIST.

Generator z=64 -> 128 -> 256 -> 512 -> 1024 (Dense, BatchNorm, ReLU) -> 784, sigmoid;
discriminator 784 -> 512 -> 256 -> 128 (Dense, LeakyReLU 0.2) -> 1 logit; BCE on
logits; Adam lr 1e-5; batch 128; 200 epochs; a 5x5 grid every 500 steps.

Run:
  python experiments/train.py --config=experiments/configs/gan_mnist.py --workdir=runs/gan_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/gan_mnist.py:smoke --workdir=/tmp/gan
Saturating minimax generator loss of the lectures:
  ... --config.model.generator_loss=minimax

Expected: after 200 epochs (93,600 steps) the samples are clearly digits; see
docs/results.md for the losses and grid this config reached.
"""

import ml_collections

from genjax import config as gconfig
from genjax.families import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  # The course's ToTensor(): pixels in [0, 1]; it trains on all 60,000 training images.
  return gan.experiment_config(arg, model=gan.model_config(arch="mlp", z_dim=64, hidden_dim=128),
                               optim=gconfig.adam(1e-5), num_epochs=200, preprocess="unit")
