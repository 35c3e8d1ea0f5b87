"""WGAN-GP of the DeepLearning.AI GAN Specialization (course 1, week 3) on MNIST.

The DCGAN generator (width 64) against a critic of width 64: Conv(64, k4, s2) ->
Conv(128, k4, s2) (each BatchNorm, LeakyReLU 0.2) -> Conv(1, k4, s2); Wasserstein loss
with the gradient penalty lambda = 10 on random interpolates; 5 critic updates per
generator update, all inside one compiled step; data in [-1, 1]; Adam lr 2e-4, betas
(0.5, 0.999); batch 128; 100 epochs (46,800 generator steps).

The course keeps batch norm in the critic; the WGAN-GP paper advises against it,
because the penalty is defined per example:
  --config.model.d_norm=layer   (or none)

Run:
  python experiments/train.py --config=experiments/configs/wgan_gp_mnist.py \
      --workdir=runs/wgan_gp_mnist
Smoke test: --config=experiments/configs/wgan_gp_mnist.py:smoke
"""

import ml_collections

from genjax import config as gconfig
from genjax.families import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan.experiment_config(
      arg, model=gan.model_config(arch="dcgan", z_dim=64, hidden_dim=64, d_hidden_dim=64,
                                  d_norm="batch", loss="wasserstein", gp_weight=10.0, n_critic=5),
      optim=gconfig.adam(2e-4, b1=0.5, b2=0.999), num_epochs=100, smoke_steps=20)
