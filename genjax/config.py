"""Loading experiment configs (`path.py` or `path.py:arg`) outside the command-line tools."""

import importlib.util
import os

import ml_collections


def load(spec: str) -> ml_collections.ConfigDict:
  """The config of `path/to/config.py[:arg]`, as `--config=` would give it (locked)."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no config file {path}")
  module_spec = importlib.util.spec_from_file_location("genjax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  config.lock()
  return config
