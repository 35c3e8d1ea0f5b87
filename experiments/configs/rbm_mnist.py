"""Bernoulli-Bernoulli RBM on binarised MNIST: Salakhutdinov & Murray (2008)'s CD25(500).

784 binary visible units (each training image binarised afresh every step, Bernoulli of its
pixel intensities), 500 hidden units, CD-25, mini-batches of 100, SGD with momentum 0.5 for 5
epochs then 0.9, learning rate 0.05 decaying linearly to 0 over the second half of the run,
weight decay 2e-4 on W, visible biases started at the log-odds of the training pixels
(Hinton's practical guide), 200 epochs (120,000 steps). Published anchor: CD25(500) reaches
-86.34 nats of test log-probability (AIS, Salakhutdinov & Murray 2008, table 1).

Variants (`--config=experiments/configs/rbm_mnist.py:VARIANT`):
  (none)   the anchor's CD25(500), 200 epochs: a CD-25 step took 69 ms on 2 idle CPU cores,
           so about 2.5 hours there (longer on a shared machine), then AIS.
  budget   what 2 CPU cores finish in about 20-30 minutes (30 on a heavily shared machine):
           the same CD25(500) for 15 epochs
           (9,000 steps; momentum 0.9 from epoch 5, the rate decaying over the second half).
  pcd      persistent CD-1 (Tieleman 2008) with 500 hidden units for 50 epochs, learning
           rate 0.02: 8 ms per step on 2 idle CPU cores, about 4 minutes.
  smoke    a few seconds, for tests.

Run (then evaluate the test log-likelihood with annealed importance sampling):
  python experiments/train.py --config=experiments/configs/rbm_mnist.py --workdir=runs/rbm_mnist
  python experiments/rbm_ais.py --workdir=runs/rbm_mnist
Budget run on a 2-core CPU (about 25 minutes of training, then AIS):
  python experiments/train.py --config=experiments/configs/rbm_mnist.py:budget \
      --workdir=runs/rbm_budget --config.data.idx_dir=../shared/data/mnist
  python experiments/rbm_ais.py --workdir=runs/rbm_budget --num_runs=100 --num_repeats=2
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/rbm_mnist.py:smoke --workdir=/tmp/rbm

Expected: the full config near the anchor's -86.3 nats (not run here). The budget run reached
-94.9 nats of test log-likelihood (AIS, 14,500 temperatures, 2 x 100 runs: log Z 409.7, the two
estimates 408.2 and 410.3) and -94.7 with 50,000 temperatures (2 x 50 runs: log Z 409.5);
5,000 temperatures underestimate log Z by about 5.5 nats (404.1, so -89.3 is too optimistic).
The pcd variant (17 minutes on a heavily shared 2-core machine) reached -100.7 nats (14,500
temperatures, 2 x 100 runs: log Z 207.2, the two estimates 204.4 and 207.8).
"""

import ml_collections

from genjax.families import rbm


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return rbm.experiment_config(
      arg, model=rbm.model_config(num_hidden=500, method="cd", cd_k=25),
      optim=rbm.optim_config(learning_rate=0.05, momentum_switch_step=5 * 600),  # 5 epochs
      num_epochs=200, batch_size=100)
