"""Conditional VAE on dynamically binarised MNIST: q(z | x, y) and p(x | z, y).

The 784-400-20 MLP with the one-hot class appended to the encoder's and the decoder's input;
Adam lr 1e-3, batch 128, 20 epochs. Prior samples are drawn one class per grid row; the
test likelihood is log p(x | y).

Run:
  python experiments/train.py --config=experiments/configs/vae_cond_mnist.py --workdir=runs/vae_cond_mnist
  python experiments/evaluate.py --workdir=runs/vae_cond_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_cond_mnist.py:smoke --workdir=/tmp/cvae

Expected: every sample row shows its class; test NLL log p(x | y) a few nats below an
unconditional VAE's log p(x) (the class carries up to log 10 = 2.3 nats).
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu",
                                  num_classes=10),
      optim=vae.optim_config(1e-3), num_epochs=20, sample_grid=10)
