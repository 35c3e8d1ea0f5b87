"""Convolutional VAE on MNIST, z = 32, like the GAN Specialization's VAE lab.

Encoder Conv(16, k4, s2) -> Conv(32, k4, s2) (LeakyReLU 0.2) -> Conv(2 * 32, k4, s2)
(28 -> 13 -> 5 -> 1) -> mean, log std; decoder the course's DCGAN generator
ConvT(256, k3, s2) -> ConvT(128, k4, s1) -> ConvT(64, k3, s2) (ReLU) -> ConvT(1, k4, s2)
Bernoulli logits (1 -> 3 -> 6 -> 13 -> 28), without the lab's batch norm (an image's
likelihood must not depend on its batch); BCE on [0, 1] pixels plus the analytic KL; Adam
lr 1e-3, batch 128, 10 epochs.

Run:
  python experiments/train.py --config=experiments/configs/vae_conv_mnist.py --workdir=runs/vae_conv_mnist
  python experiments/evaluate.py --workdir=runs/vae_conv_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_conv_mnist.py:smoke --workdir=/tmp/cvae

Expected: sharp reconstructions and digit-like prior samples; a test negative ELBO below
the 784-400-20 MLP's.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(arch="conv", z_dims=(32,), hidden=((),), eval_k=10),
      optim=vae.optim_config(1e-3, 1e-8), preprocess="unit", num_epochs=10)
