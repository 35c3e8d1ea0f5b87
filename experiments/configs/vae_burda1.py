"""VAE, one stochastic layer: Burda et al. (2016), Table 1, full schedule.

One stochastic layer: 784-200-200-50 (tanh, Gaussian encoder, Bernoulli
decoder), the ELBO (analytic KL); dynamically binarised MNIST (60,000 training
images, a fresh binarisation every time an image is used); batch 20; Adam (epsilon 1e-4),
learning rate 1e-3 * 10^(-i/7) for 3^i epochs, i = 0..7 (3,280 epochs, 9.84M steps: days on a
GPU, far too long for a CPU).

Run (GPU/TPU host; add --config.data.idx_dir=DIR where TFDS is absent):
  python experiments/train.py --config=experiments/configs/vae_burda1.py --workdir=runs/vae_burda1
  python experiments/evaluate.py --workdir=runs/vae_burda1 --nll_k=5000
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_burda1.py:smoke --workdir=/tmp/vae_burda1

Expected: test NLL (k = 5000 importance samples) 86.76 nats, Burda et al.'s Table 1 (target:
within 0.5 nats).
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(arg, **vae.burda_settings(layers=1, objective="elbo", k=1))
