"""The common MLP VAE (784-400-20, ReLU; the PyTorch examples' VAE) on MNIST.

Encoder 784 -> 400 (ReLU) -> mean, log std (20 each); decoder 20 -> 400 (ReLU) -> 784
Bernoulli logits; loss: binary cross-entropy summed over pixels (targets the [0, 1] pixel
intensities) plus the analytic KL; Adam lr 1e-3, batch 128, 10 epochs. The `vae_mnist`
benchmark entry times its train step.

Run:
  python experiments/train.py --config=experiments/configs/vae_mnist.py --workdir=runs/vae_mnist
  python experiments/evaluate.py --workdir=runs/vae_mnist
  python experiments/benchmark.py --model=vae_mnist --json
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_mnist.py:smoke --workdir=/tmp/vae

Expected: test loss (negative ELBO on [0, 1] targets) about 104-106 nats after 10 epochs,
as the PyTorch example reports.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu", eval_k=50),
      optim=vae.optim_config(1e-3, 1e-8), preprocess="unit", num_epochs=10)
