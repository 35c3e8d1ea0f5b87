"""Conditional GAN of the DeepLearning.AI GAN Specialization (course 1, week 4) on MNIST.

The DCGAN generator (width 64) takes z=64 joined with the one-hot class (74 inputs);
the discriminator (width 64) sees the image joined with 10 one-hot class planes (11
channels). Fakes take the real batch's classes, and the generator step scores the
same fakes the discriminator step made (the course reuses them); BCE; data in
[-1, 1]; Adam lr 2e-4 (PyTorch's default betas); batch 128; 200 epochs (93,600 steps).
Sample grids have one row per class.

Run:
  python experiments/train.py --config=experiments/configs/cgan_mnist.py --workdir=runs/cgan_mnist
Smoke test: --config=experiments/configs/cgan_mnist.py:smoke
"""

import ml_collections

from genjax import config as gconfig
from genjax.families import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan.experiment_config(
      arg, model=gan.model_config(arch="dcgan", z_dim=64, hidden_dim=64, d_hidden_dim=64,
                                  num_classes=10, fresh_generator_noise=False),
      optim=gconfig.adam(2e-4), num_epochs=200, sample_every=2000, sample_grid=10)
