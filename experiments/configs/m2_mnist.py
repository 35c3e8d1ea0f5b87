"""Kingma et al.'s (2014) M2 semi-supervised VAE on MNIST with few labels (100 by default).

q(y | x) 784-500-10, q(z | x, y) (784 + 10)-500-(50, 50) Gaussian, p(x | y, z) (50 + 10)-500-784
Bernoulli, softplus hidden units (genjax.nn.ssvae), p(y) uniform, p(z) = N(0, I); dynamically
binarised images. Each step: an unlabelled batch of 100 from all 60,000 training images and a
labelled batch of 100 from the balanced labelled subset (data.num_labels; with 100 labels,
all of them, reshuffled); loss = -mean L(x, y) - mean U(x) + alpha * mean -log q(y | x), alpha =
0.1 N / N_l = 60 for 100 labels (genjax.families.ssvae explains the scaling). Adam lr 3e-4
(b1 0.9, b2 0.999, the paper's moment decays 0.1 and 0.001), 300 epochs of the unlabelled data
(180,000 steps); weights initialised from N(0, 0.001^2), biases 0 (model.init_std). The test
error is that of q(y | x) on the test images, binarised once. The smoke variant: 40 steps of
batches of 32 (unlabelled and labelled).

Arguments: `[DATASET,][NUM_LABELS,][smoke]`, e.g. `100`, `mnist,100`, `mnist,600`, `smoke`,
`100,smoke` (alpha follows data.num_labels, --config.data.num_labels=N included, unless
--config.model.alpha sets it).

Run:
  python experiments/train.py --config=experiments/configs/m2_mnist.py:100 --workdir=runs/m2_mnist
  python experiments/evaluate.py --workdir=runs/m2_mnist
Smoke test (under a minute on a CPU):
  python experiments/train.py --config=experiments/configs/m2_mnist.py:100,smoke --workdir=/tmp/m2

Expected (the paper, Table 1, 100 labels): 11.97 +- 1.71 % test error.
Measured (2-core CPU, shorter than this schedule): 1,000 steps, 5 seeds
(experiments/label_efficiency.py --models=m2 --labels=100 --steps=1000): 28.19 +- 1.40 % test
error. The full schedule has not been run.
"""

import ml_collections

from genjax.families import ssvae

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "M2 (semi-supervised VAE), all labels", "side": "generative",
              "datasets": ("mnist", "fashion_mnist"), "arg": "{dataset},all"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return ssvae.experiment_config(arg, kind="m2", num_epochs=300)
