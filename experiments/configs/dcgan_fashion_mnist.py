"""The course's DCGAN (see dcgan_mnist.py) on Fashion-MNIST: same networks and schedule.

  python experiments/train.py --config=experiments/configs/dcgan_fashion_mnist.py \
      --workdir=runs/dcgan_fashion_mnist
"""

import os
import runpy

import ml_collections

_dcgan_mnist = runpy.run_path(os.path.join(os.path.dirname(__file__), "dcgan_mnist.py"))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return _dcgan_mnist["get_config"](arg, dataset="fashion_mnist")
