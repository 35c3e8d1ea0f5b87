"""CPU budget of Burda et al.'s one-stochastic-layer IWAE, k = 50 (784-200-200-50, tanh).

vae_burda1_cpu's shortened schedule and batch (learning rate 1e-3 * 10^(-i/7) in 8 stages,
batch 100) trained on the 50-sample importance-weighted bound; each step decodes 50 latents
per image, so the stages are shorter again: round(0.01 * 3^i), at least 1 epoch:
1+1+1+1+1+2+7+22 = 36 epochs. About 30 minutes on 2 idle CPU cores.

Run:
  python experiments/train.py --config=experiments/configs/iwae_burda1_cpu.py --workdir=runs/iwae_burda1_cpu
  python experiments/evaluate.py --workdir=runs/iwae_burda1_cpu --nll_k=5000
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/iwae_burda1_cpu.py:smoke --workdir=/tmp/iw

Expected: a k = 5000 test NLL above the full schedule's 84.78 (Burda et al., Table 1); the
VAE table of docs/results.md has the figure this config reached.
"""

import ml_collections

from genjax.families import vae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return vae.experiment_config(arg, **vae.burda_settings(layers=1, objective="iwae", k=50,
                                                         stage_scale=0.01, batch_size=100))
