"""DCGAN of the DeepLearning.AI GAN Specialization (course 1, week 2) on MNIST.

Generator z=64 -> ConvT(256, k3, s2) -> ConvT(128, k4, s1) -> ConvT(64, k3, s2) (each
BatchNorm, ReLU) -> ConvT(1, k4, s2), tanh; discriminator Conv(16, k4, s2) -> Conv(32,
k4, s2) (each BatchNorm, LeakyReLU 0.2) -> Conv(1, k4, s2); weights N(0, 0.02); data in
[-1, 1]; BCE; Adam lr 2e-4, betas (0.5, 0.999); batch 128; 50 epochs (23,400 steps).

Run:
  python experiments/train.py --config=experiments/configs/dcgan_mnist.py --workdir=runs/dcgan_mnist
  python experiments/evaluate.py --workdir=runs/dcgan_mnist
Smoke test: --config=experiments/configs/dcgan_mnist.py:smoke
Modern switches, e.g.: --config.model.loss=hinge --config.model.spectral_norm=True
  --config.model.ema_decay=0.999 --config.model.r1_weight=1.0 --config.model.real_label=0.9
"""

import ml_collections

from genjax import config as gconfig
from genjax.families import gan


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return gan.experiment_config(
      arg, model=gan.model_config(arch="dcgan", z_dim=64, hidden_dim=64, d_hidden_dim=16),
      optim=gconfig.adam(2e-4, b1=0.5, b2=0.999), num_epochs=50)
