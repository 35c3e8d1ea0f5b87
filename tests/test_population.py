"""Populations (genjax.population): S seeds trained as one program, each member its own run."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from genjax import population

REPO_ROOT = Path(__file__).resolve().parents[1]


def _config(name: str, arg: str, size: int, steps: int | None = None):
  from genjax import config as gconfig
  c = gconfig.load(f"{REPO_ROOT}/experiments/configs/{name}.py:{arg}")
  c.unlock()
  c.train.progress = False
  c.train.tensorboard = False
  c.population = size
  c.evals = {"metrics": {}}  # the loop's own numbers: the costly evaluators are not at issue
  if steps is not None:
    c.train.num_steps = steps
  return c


# The default runs use softmax regression on iris (seconds); -m slow repeats them on the MLP VAE
# (dynamic binarisation, Adam) on MNIST.
RUNS = [("softmax_sgd", "iris,smoke"),
        pytest.param(("vae_mnist", "smoke"), marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=RUNS, ids=lambda r: r[0])
def runs(request, tmp_path_factory, tfds_data_dir):
  """A smoke config as a population of 3 (seeds 0, 1, 2) and member 2's seed on its own."""
  from genjax import train
  del tfds_data_dir
  name, arg = request.param
  root = tmp_path_factory.mktemp("population")
  c = _config(name, arg, 3)
  pop = train.train_and_evaluate(c, str(root / "pop"))
  single = train.train_and_evaluate(population.member_config(c, 2), str(root / "single"))
  return root, (name, arg, c), pop, single


def _leaves(state) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_member_equals_its_own_run(runs):
  """Member 2 is the run of seed 2: the same initial state, batches and keys (exact), and the
  same numbers to float32 rounding. Not bit for bit: XLA sums some reductions of the batched
  program in another order (the KL of one logged step differs by 9e-8 relative), and Adam
  (eps 1e-4, lr 1e-3) turns the rounding of near-zero gradients into parameter differences of
  up to ~4e-6 after 40 steps. Seeds differ by ~1e-1, so 1e-4 still tells a member from
  another seed's run."""
  from genjax import train
  root, _, _, single = runs
  logs = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
          for d in (root / "pop" / "members" / "2", root / "single")]
  assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]]
  for a, b in zip(*logs):
    assert a == pytest.approx(b, rel=1e-6)
  _, _, stacked = train.restore_for_eval(str(root / "pop"))
  _, _, alone = train.restore_for_eval(str(root / "single"))
  for a, b in zip(_leaves(population.member(stacked, 2)), _leaves(alone), strict=True):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
  member = json.loads((root / "pop" / "members" / "2" / "results.json").read_text())
  assert member["seed"] == 2
  assert member["test"] == pytest.approx(single["test"], rel=1e-5)


def test_members_start_from_their_seeds_states(tfds_data_dir):
  """The stacked initial state is each seed's initial state, bit for bit."""
  from genjax import train
  from genjax.families import softmax_sgd
  del tfds_data_dir
  c = _config("softmax_sgd", "iris,smoke", 3)
  members = train._Members.of(c, "unused")
  stacked = members.stack([softmax_sgd.create_state(k.init, m)
                           for m, k in zip(members.configs, members.keys)])
  alone = softmax_sgd.create_state(train.RunKeys.from_seed(2).init,
                                   population.member_config(c, 2))
  for a, b in zip(_leaves(population.member(stacked, 2)), _leaves(alone), strict=True):
    assert np.array_equal(a, b)


def test_results_are_the_members_mean_and_sample_sd(runs):
  root, _, pop, _ = runs
  members = [json.loads((root / "pop" / "members" / str(i) / "results.json").read_text())
             for i in range(3)]
  assert json.loads((root / "pop" / "results.json").read_text()) == pop
  assert pop["population"]["size"] == 3 and pop["population"]["seeds"] == [0, 1, 2]
  for name, value in pop["test"].items():
    values = np.array([m["test"][name] for m in members])
    assert value == pytest.approx(values.mean(), rel=1e-12)
    assert pop["population"]["sd"]["test"][name] == pytest.approx(values.std(ddof=1), rel=1e-9)
  assert len({m["test"]["loss"] for m in members}) == 3  # different seeds, different runs
  # The workdir's own log is the members' mean.
  logs = [[json.loads(line) for line in (root / "pop" / "members" / str(i) /
                                          "metrics.jsonl").read_text().splitlines()]
          for i in range(3)]
  top = [json.loads(line) for line in (root / "pop" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in top] == [r["step"] for r in logs[0]]
  assert top[-1]["loss"] == pytest.approx(np.mean([log[-1]["loss"] for log in logs]), rel=1e-6)


def test_resumed_population_equals_uninterrupted(runs, tmp_path):
  from genjax import train
  root, (name, arg, c), _, _ = runs
  half = _config(name, arg, 3, steps=c.train.num_steps // 2)
  train.train_and_evaluate(half, str(tmp_path))
  train.train_and_evaluate(c, str(tmp_path))  # num_steps only extends the run
  for i in range(3):
    member = Path("members") / str(i) / "metrics.jsonl"
    assert (tmp_path / member).read_text() == (root / "pop" / member).read_text()


def test_evaluate_scores_each_member(runs, experiment_script):
  root, _, pop, _ = runs
  evaluate = experiment_script("evaluate").evaluate
  again = evaluate(str(root / "pop"), only=["metrics"], write=False)
  assert again["population"]["size"] == 3
  assert again["test"]["loss"] == pytest.approx(pop["test"]["loss"], rel=1e-6)


def test_aggregate_closed_form():
  results = [{"step": 5, "test": {"error": e, "ok": True}, "note": "x"} for e in (0.1, 0.2, 0.6)]
  out = population.aggregate(results, [0, 1, 2])
  assert out["test"]["error"] == pytest.approx(0.3)
  assert out["population"]["sd"]["test"]["error"] == pytest.approx(np.sqrt(0.07))  # ddof 1: (0.04 + 0.01 + 0.09) / 2
  assert out["population"]["min"]["test"]["error"] == 0.1
  assert out["step"] == 5 and out["test"]["ok"] is True and out["note"] == "x"


def test_population_of_a_fit_family_is_refused(tmp_path, tfds_data_dir):
  from genjax import train
  del tfds_data_dir
  c = _config("gaussian_nb", "smoke", 1)
  c.population = 2
  with pytest.raises(ValueError, match="population"):
    train.train_and_evaluate(c, str(tmp_path))


def test_members_draw_their_own_labelled_subsets_from_one_copy_of_the_split():
  import ml_collections

  from genjax import config as gconfig
  from genjax import train
  from genjax.data import labelled
  from genjax.data.splits import ArraySplit
  from genjax.parallel import DataParallel
  labels = np.arange(200, dtype=np.int32) % 10
  split = ArraySplit("train", {"image": np.zeros((200, 2, 2, 1), np.uint8), "label": labels},
                     num_classes=10)
  c = ml_collections.ConfigDict({"seed": 4, "population": 3, "data": gconfig.few_labels(
      gconfig.image_data("mnist", "unit", 20), 30, semi_supervised=True,
      labelled_batch_size=10)})
  members = train._Members.of(c, "unused")
  source = train._make_input(members, DataParallel("none"), split)
  arrays, orders, subsets = source.args(0)
  assert arrays is source.inputs[0].arrays and all(i.arrays is arrays for i in source.inputs)
  assert orders.shape == (3, 200) and subsets.shape == (3, 30)
  for i in range(3):
    assert np.array_equal(subsets[i], labelled.balanced_subset(labels, 30, seed=4 + i))
  assert len({tuple(np.asarray(o)) for o in orders}) == 3  # each member its own epoch order
  assert source.args(1)[1] is orders  # stacked once per epoch
