"""LeNet-5-style CNN classifier (genjax.nn.classifiers.LeNet5) on MNIST or Fashion-MNIST.

Conv 6 5x5 (SAME) -> max pool -> Conv 16 5x5 (VALID) -> max pool -> Dense 120 -> Dense 84 ->
Dense 10, ReLU after each hidden layer: 61,706 parameters. Softmax cross-entropy, Adam lr 2e-3
with cosine decay to 0, batch 128, 4,680 steps (10 epochs of the 60,000 training images; no
validation split: nothing is selected on it), seed 0. Pixels in [0, 1], no augmentation.

The argument names the dataset, `mnist` (the default) or `fashion_mnist`, optionally followed
by `,smoke` (a few seconds, for tests); `smoke` alone is MNIST's smoke run.

Run:
  python experiments/train.py --config=experiments/configs/lenet5_mnist.py:mnist --workdir=runs/lenet5_mnist
  python experiments/train.py --config=experiments/configs/lenet5_mnist.py:fashion_mnist --workdir=runs/lenet5_fashion_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/lenet5_mnist.py:smoke --workdir=/tmp/lenet5

Expected (2 CPU cores, about 2 minutes each on an idle machine): test error about 1 % on MNIST
(results.json `test.error`; LeCun et al. 1998 report 0.95 % for LeNet-5 without distortions),
about 10 % on Fashion-MNIST. Measured so far on a shared CPU, 2 epochs only
(--config.train.num_steps=936): 1.51 % on MNIST, 13.55 % on Fashion-MNIST.
"""

from genjax.families import neural_classifier

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "LeNet-5", "side": "discriminative",
              "datasets": ("mnist", "fashion_mnist")}


def get_config(arg: str | None = None):
  # 10 epochs of 468 batches; the cosine schedule decays over the run.
  return neural_classifier.experiment_config(
      arg, model={"arch": "lenet5", "activation": "relu"},  # relu | tanh (the paper's)
      learning_rate=2e-3, num_steps=4680, log_every=117, checkpoint_every=936)
