"""A two-dimensional latent space on dynamically binarised MNIST: scatter and manifold.

784-512-256-2 MLP encoder (ReLU), mirrored decoder, ELBO; Adam lr 1e-3, batch 128, 20 epochs.
`evaluate.py` draws the test set's posterior means coloured by class and the decoded
manifold over a grid of prior quantiles (Kingma & Welling's Figure 4).

Run:
  python experiments/train.py --config=experiments/configs/vae_z2_mnist.py --workdir=runs/vae_z2_mnist
  python experiments/evaluate.py --workdir=runs/vae_z2_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_z2_mnist.py:smoke --workdir=/tmp/z2

Expected: classes in separate regions of the scatter, a manifold that morphs between digits.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(2,), hidden=((512, 256),), activation="relu"),
      optim=vae.optim_config(1e-3), num_epochs=20)
