"""`train.steps_per_dispatch = K`: K loop steps in one compiled call, with exactly the logs,
checkpoints, results and resume of K = 1 (genjax.train.make_multi_step, dispatch_end)."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import (
  REPO_ROOT,
  apply_overrides,
  checkpoint_steps,
  load_config_module,
  stop_requested_on_read,
)

from genjax import preemption, train, writers

SOFTMAX = REPO_ROOT / "experiments" / "configs" / "softmax_sgd.py"
# Iris: 120 training rows in batches of 16 are 7 steps an epoch, so 30 steps cross four epoch
# boundaries (where the input's order changes) besides the log, checkpoint and eval steps.
RUN = {"train.num_steps": 30, "train.log_every": 5, "train.checkpoint_every": 10,
       "train.keep_checkpoints": 10, "train.eval_every": 15, "train.progress": False,
       "train.tensorboard": False, "parallel": "none"}


def softmax_config(k: int, overrides: dict | None = None):
  config = load_config_module(SOFTMAX).get_config("iris")
  apply_overrides(config, {**RUN, "train.steps_per_dispatch": k, **(overrides or {})})
  return config


def leaves(path: Path) -> list[np.ndarray]:
  *_, state = train.restore_for_eval(str(path))
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


def assert_same_run(got: Path, want: Path) -> None:
  """Bit for bit: metrics.jsonl (training and periodic evaluation), the final state and
  results.json's numbers."""
  assert writers.read_metrics(str(got / "metrics.jsonl")) == writers.read_metrics(
      str(want / "metrics.jsonl"))
  for a, b in zip(leaves(got), leaves(want), strict=True):
    assert a.dtype == b.dtype and np.array_equal(a, b)
  results = [_untimed(json.loads((p / "results.json").read_text())) for p in (got, want)]
  assert results[0] == results[1]


def _untimed(tree):
  """A results dict without its wall-clock fields."""
  if not isinstance(tree, dict):
    return tree
  return {k: _untimed(v) for k, v in tree.items() if "seconds" not in k}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
  """The 30-step run one step per dispatch."""
  path = tmp_path_factory.mktemp("k1")
  train.train_and_evaluate(softmax_config(1), str(path))
  return path


def test_dispatch_end_stops_where_the_host_acts():
  assert train.dispatch_end(0, 100, 8, [5]) == 5
  assert train.dispatch_end(5, 100, 8, [5, 7]) == 7
  assert train.dispatch_end(7, 100, 8, [5, 7]) == 10
  assert train.dispatch_end(10, 100, 3, [5, 7]) == 13
  assert train.dispatch_end(98, 100, 8, [50]) == 100  # the end of the run
  assert train.dispatch_end(4, 100, 1, [5]) == 5
  # Every dispatch of a run, from 0: the log steps 5, 10, 15 and the epoch ends 7, 14 all land.
  ends, step = [], 0
  while step < 16:
    step = train.dispatch_end(step, 16, 100, [5, 7])
    ends.append(step)
  assert ends == [5, 7, 10, 14, 15, 16]


@pytest.mark.parametrize("k", [4, 100])
def test_k_steps_per_dispatch_is_the_run_of_one(tmp_path, reference, k):
  train.train_and_evaluate(softmax_config(k), str(tmp_path))
  assert checkpoint_steps(tmp_path) == [10, 20, 30]
  assert_same_run(tmp_path, reference)


def test_stopped_between_log_steps_and_resumed_with_another_k(tmp_path, reference, monkeypatch):
  """A stop request lands at the end of a dispatch (here the third: steps 1-4, 5, 6-7 with
  K = 4), which checkpoints with the metrics accumulated since the log step; the run resumed
  with K = 3 equals the K = 1 run."""
  monkeypatch.setattr(preemption, "StopRequests", stop_requested_on_read(3))
  with pytest.raises(preemption.Interrupted, match="at step 7"):
    train.train_and_evaluate(softmax_config(4), str(tmp_path))
  assert checkpoint_steps(tmp_path) == [7]
  extra = json.loads((tmp_path / "checkpoints.extra" / "7.json").read_text())
  assert extra["accumulator"]["count"] == 2  # steps 6 and 7, since the log at step 5
  monkeypatch.undo()
  train.train_and_evaluate(softmax_config(3), str(tmp_path))
  assert checkpoint_steps(tmp_path) == [7, 10, 20, 30]
  assert_same_run(tmp_path, reference)


def test_a_population_k_steps_per_dispatch(tmp_path):
  """Two members as one vmapped step inside the multi-step loop: the run of K = 1."""
  one, many = tmp_path / "one", tmp_path / "many"
  train.train_and_evaluate(softmax_config(1, {"population": 2}), str(one))
  train.train_and_evaluate(softmax_config(6, {"population": 2}), str(many))
  assert_same_run(many, one)
  assert checkpoint_steps(many) == checkpoint_steps(one) == [10, 20, 30]
  for i in range(2):
    assert writers.read_metrics(str(many / "members" / str(i) / "metrics.jsonl")) == \
        writers.read_metrics(str(one / "members" / str(i) / "metrics.jsonl"))


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["gan_mnist", "vae_mnist"])
def test_k_steps_per_dispatch_of_neural_steps(tmp_path, tfds_data_dir, config_name):
  """The MLP GAN (batch norm, two optimisers) and the VAE (sampled latents): 20 steps with
  K = 4 equal 20 steps with K = 1, bit for bit (both programs compile the same step; on CPU
  XLA keeps its operations and their order inside the loop body)."""
  del tfds_data_dir
  module = load_config_module(REPO_ROOT / "experiments" / "configs" / f"{config_name}.py")
  paths = {}
  for k in (1, 4):
    config = module.get_config("smoke")
    apply_overrides(config, {"train.num_steps": 20, "train.log_every": 5,
                             "train.checkpoint_every": 10, "train.progress": False,
                             "train.tensorboard": False, "parallel": "none", "evals": {},
                             "train.steps_per_dispatch": k})
    paths[k] = tmp_path / str(k)
    train.train_and_evaluate(config, str(paths[k]))
  assert checkpoint_steps(paths[4]) == checkpoint_steps(paths[1]) == [10, 20]
  assert_same_run(paths[4], paths[1])


def test_bad_steps_per_dispatch_is_refused(tmp_path):
  with pytest.raises(ValueError, match="steps_per_dispatch must be positive"):
    train.train_and_evaluate(softmax_config(0), str(tmp_path))
  config = softmax_config(4)
  config.data.in_memory = False
  with pytest.raises(ValueError, match="needs the training split in memory"):
    train.validate_config(config)
