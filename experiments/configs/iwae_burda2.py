"""IWAE (k = 50), two stochastic layers: Burda et al. (2016), Table 1, full schedule.

Two stochastic layers: 784-200-200-100 -> 100-100-50 (tanh, Gaussian encoder, Bernoulli
decoder), the IWAE bound with k = 50; dynamically binarised MNIST (60,000 training
images, a fresh binarisation every time an image is used); batch 20; Adam (epsilon 1e-4),
learning rate 1e-3 * 10^(-i/7) for 3^i epochs, i = 0..7 (3,280 epochs, 9.84M steps: days on a
GPU, far too long for a CPU).

Run (GPU/TPU host; add --config.data.idx_dir=DIR where TFDS is absent):
  python experiments/train.py --config=experiments/configs/iwae_burda2.py --workdir=runs/iwae_burda2
  python experiments/evaluate.py --workdir=runs/iwae_burda2 --nll_k=5000
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/iwae_burda2.py:smoke --workdir=/tmp/iwae_burda2

Expected: test NLL (k = 5000 importance samples) 82.90 nats, Burda et al.'s Table 1 (target:
within 0.5 nats).
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(arg, **vae.burda_settings(layers=2, objective="iwae", k=50))
