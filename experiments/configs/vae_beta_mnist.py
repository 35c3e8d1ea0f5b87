"""beta-VAE (beta = 4) with the 784-400-20 MLP on dynamically binarised MNIST.

The ELBO's KL term weighted by beta (Higgins et al., 2017): a stronger pull to the prior, fewer
active latent units, blurrier reconstructions. Adam lr 1e-3, batch 128, 20 epochs.
`--config.model.beta=B` sets another weight.

Run:
  python experiments/train.py --config=experiments/configs/vae_beta_mnist.py --workdir=runs/vae_beta_mnist
  python experiments/evaluate.py --workdir=runs/vae_beta_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_beta_mnist.py:smoke --workdir=/tmp/bvae

Expected: fewer active units (results.json `active_units`) than with beta = 1, and a higher
test NLL.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(
      arg, model=vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu", beta=4.0),
      optim=vae.optim_config(1e-3), num_epochs=20)
