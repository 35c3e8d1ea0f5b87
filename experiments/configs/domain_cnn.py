"""DomainCNN, the small CNN whose features and class probabilities score GAN samples offline.

Conv 32 -> Conv 64 -> Conv 64 (3x3, SAME, each with batch norm, ReLU and a 2x2 max pool:
28 -> 14 -> 7 -> 3) -> flatten -> Dense 128 + ReLU (the features) -> Dense 10; 131,050
parameters. Softmax cross-entropy, Adam lr 2e-3 with cosine decay to 0, batch 128, 1,404
steps (3 epochs of the 60,000 training images; no validation split: nothing is selected on
it), seed 0.

The argument names the dataset, `mnist` (the default) or `fashion_mnist`, optionally followed
by `,smoke` (a few seconds, for tests); `smoke` alone is MNIST's smoke run.

Run:
  python experiments/train.py --config=experiments/configs/domain_cnn.py:mnist --workdir=runs/domain_cnn_mnist
  python experiments/train.py --config=experiments/configs/domain_cnn.py:fashion_mnist --workdir=runs/domain_cnn_fashion_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/domain_cnn.py:mnist,smoke --workdir=/tmp/cnn
Ship the trained network (genjax/assets/domain_cnn_<dataset>.msgpack and .json):
  python experiments/export_domain_classifier.py --workdir=runs/domain_cnn_mnist

Expected (2 CPU cores, about 3 minutes each): test accuracy >= 99.0 % on MNIST and >= 90 % on
Fashion-MNIST; the shipped assets' JSON records the figures reached.
"""

from genjax.families import neural_classifier


def get_config(arg: str | None = None):
  # 3 epochs of 468 batches; the cosine schedule decays over the run.
  return neural_classifier.experiment_config(
      arg, model={"arch": "domain_cnn", "widths": (32, 64, 64),
                  "feature_dim": 128,  # the features FID, KID and precision/recall compare
                  "dropout_rate": 0.0,
                  # inference uses the running statistics: one image, one vector
                  "batch_norm": True},
      learning_rate=2e-3, num_steps=1404, log_every=54, checkpoint_every=702)
