"""CPU budget of Burda et al.'s one-stochastic-layer VAE (784-200-200-50, tanh, ELBO).

The paper's model, data (dynamically binarised MNIST) and optimiser (Adam, epsilon 1e-4,
learning rate 1e-3 * 10^(-i/7) in 8 stages), with the stages shortened from 3^i epochs to
round(0.05 * 3^i) (at least 1): 1+1+1+1+4+12+36+109 = 165 epochs, and batch 100 instead of 20
(fewer, larger steps: what a CPU does well). About 30 minutes on 2 idle CPU cores.

Run:
  python experiments/train.py --config=experiments/configs/vae_burda1_cpu.py --workdir=runs/vae_burda1_cpu
  python experiments/evaluate.py --workdir=runs/vae_burda1_cpu --nll_k=5000
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/vae_burda1_cpu.py:smoke --workdir=/tmp/v

Expected: a k = 5000 test NLL some nats above the full schedule's 86.76 (Burda et al.,
Table 1); the VAE table of docs/results.md has the figure this config reached.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(arg, **vae.burda_settings(layers=1, objective="elbo", k=1,
                                                         stage_scale=0.05, batch_size=100))
