"""The first GAN of the DeepLearning.AI GAN Specialization (course 1, week 1) on MNIST.

Generator z=64 -> 128 -> 256 -> 512 -> 1024 (Dense, BatchNorm, ReLU) -> 784, sigmoid;
discriminator 784 -> 512 -> 256 -> 128 (Dense, LeakyReLU 0.2) -> 1 logit; BCE on
logits; Adam lr 1e-5; batch 128; 200 epochs; a 5x5 grid every 500 steps.

Run:
  python experiments/train.py --config=experiments/configs/gan_mnist.py --workdir=runs/gan_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/gan_mnist.py:smoke --workdir=/tmp/gan
Saturating minimax generator loss of the lectures:
  ... --config.model.generator_loss=minimax

Expected: after 200 epochs (93,600 steps) the samples are clearly digits; see the
README's results section for the losses and grid this config reached.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.family = "gan"
  c.seed = 0
  c.parallel = "auto"  # auto | none | pmap | shard_map

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist"
  c.data.image_shape = (28, 28, 1)
  c.data.preprocess = "unit"  # the course's ToTensor(): pixels in [0, 1]
  c.data.batch_size = 128
  c.data.validation_size = 0  # the course trains on all 60,000 training images
  c.data.in_memory = True  # hold the split on the device; False streams it through tf.data
  c.data.data_dir = ml_collections.config_dict.placeholder(str)
  c.data.download = ml_collections.config_dict.placeholder(bool)
  c.data.idx_dir = ml_collections.config_dict.placeholder(str)  # raw IDX files instead of TFDS

  c.model = ml_collections.ConfigDict()
  c.model.arch = "mlp"
  c.model.z_dim = 64
  c.model.hidden_dim = 128
  c.model.generator_loss = "non_saturating"  # or "minimax"
  c.model.real_label = 1.0  # < 1 for one-sided label smoothing

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-5
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999

  c.train = ml_collections.ConfigDict()
  c.train.num_epochs = 200
  c.train.num_steps = -1  # > 0 overrides num_epochs
  c.train.log_every = 100
  c.train.checkpoint_every = 5000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 500
  c.train.sample_grid = 5
  c.train.tensorboard = True
  c.train.progress = True

  if arg == "smoke":
    c.train.num_epochs = -1
    c.train.num_steps = 40
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.train.sample_every = 20
  elif arg:
    raise ValueError(f"unknown config variant {arg!r}; expected 'smoke' or nothing")
  return c
