"""VAE with a Gaussian decoder on Fashion-MNIST in [0, 1] (continuous data).

784-400-20 MLP (ReLU); p(x | z) = N(mean(z), diag(sigma^2)) with the mean in (0, 1) and a
learned per-pixel sigma of at least 0.01; Adam lr 1e-3, batch 128, 20 epochs. Likelihoods
are densities on [0, 1]^784, so NLLs can be negative.

Run:
  python experiments/train.py --config=experiments/configs/vae_gauss_fashion_mnist.py --workdir=runs/vae_gauss_fashion_mnist
  python experiments/evaluate.py --workdir=runs/vae_gauss_fashion_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_gauss_fashion_mnist.py:smoke --workdir=/tmp/gvae

Expected: recognisable garments in the reconstructions and prior-mean samples.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu",
                                  likelihood="gaussian"),
      optim=vae.optim_config(1e-3), dataset="fashion_mnist", preprocess="unit", num_epochs=20)
