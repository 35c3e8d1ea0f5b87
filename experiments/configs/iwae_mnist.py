"""IWAE (k = 50) with the 784-400-20 MLP VAE on dynamically binarised MNIST.

vae_mnist's networks trained on the 50-sample importance-weighted bound: the decoder runs
on 50 latents per image (the `iwae_mnist` benchmark entry times this step). Adam lr 1e-3
(epsilon 1e-4), batch 128, 10 epochs.

Run:
  python experiments/train.py --config=experiments/configs/iwae_mnist.py --workdir=runs/iwae_mnist
  python experiments/evaluate.py --workdir=runs/iwae_mnist --nll_k=5000
  python experiments/benchmark.py --model=iwae_mnist --json
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/iwae_mnist.py:smoke --workdir=/tmp/iwae

Expected: a test IWAE bound (k = 50) a few nats above vae_mnist's on binarised data.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu",
                                  objective="iwae", k=50, eval_k=50),
      optim=vae.optim_config(1e-3), num_epochs=10)
