"""Kingma et al.'s (2014) M1+M2 semi-supervised VAE on MNIST with few labels (100 by default).

M1, a VAE 784-600-600-(50, 50) Gaussian q(z1 | x), 50-600-600-784 Bernoulli p(x | z1), softplus
units, is trained first on the 60,000 dynamically binarised training images without labels
(model.m1_steps = 120,000 Adam steps, lr 3e-4, batches of 100: 200 epochs), inside the run's
initialisation (genjax.families.ssvae.init_from_data), and frozen; its parameters are part of
every checkpoint, so a resumed run continues with the same M1. M2 (q(y | z1) 50-500-10,
q(z2 | z1, y) Gaussian, p(z1 | y, z2) Gaussian, 500 softplus units each, z2 of 50) is then
trained on M1's codes: a fresh sample z1 ~ q(z1 | x) each step (as the paper did), classification
from the posterior mean. Batches, alpha (0.1 N / N_l = 60 for 100 labels), M2's initialisation
and the optimiser as m2_mnist.py: 300 epochs of the unlabelled data (180,000 steps). M1 starts
from flax's LeCun normal weights (model.m1_init_std = 0): from the paper's N(0, 0.001^2) it
learnt far slower here (test ELBO -196 against -125 nats after 1,500 steps).

Arguments: `[DATASET,][NUM_LABELS,][smoke]`, e.g. `100`, `mnist,100`, `smoke`, `100,smoke`
(the smoke run trains M1 for 20 steps of 32 images, then M2 for 40 steps of batches of 32).

Run:
  python experiments/train.py --config=experiments/configs/m1m2_mnist.py:100 --workdir=runs/m1m2_mnist
  python experiments/evaluate.py --workdir=runs/m1m2_mnist
Smoke test (under a minute on a CPU):
  python experiments/train.py --config=experiments/configs/m1m2_mnist.py:100,smoke --workdir=/tmp/m1m2

Expected (the paper, Table 1, 100 labels): 3.33 +- 0.14 % test error.
Measured: not yet (M1's 120,000 steps alone are hours on a 2-core CPU).
"""

import ml_collections

from genjax.families import ssvae


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return ssvae.experiment_config(arg, kind="m1m2", num_epochs=300)
