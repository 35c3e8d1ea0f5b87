"""RBM and AIS against brute-force enumeration on RBMs small enough to enumerate."""

import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import evals
from genjax.data import splits
from genjax.evals import ais as ais_eval
from genjax.evals import likelihood as likelihood_eval
from genjax.families import rbm
from genjax.structured import ais

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "experiments" / "configs" / "rbm_mnist.py"
IDX_DIR = (REPO_ROOT.parent / "shared" / "data" / "mnist").resolve()


def _params(d: int, h: int, seed: int = 0, scale: float = 1.0) -> rbm.RBMParams:
  r = np.random.default_rng(seed)
  return rbm.RBMParams(w=jnp.asarray(scale * r.normal(size=(d, h)), jnp.float32),
                       b=jnp.asarray(r.normal(size=d), jnp.float32),
                       c=jnp.asarray(r.normal(size=h), jnp.float32))


def _states(n: int) -> np.ndarray:
  return np.asarray(list(itertools.product([0.0, 1.0], repeat=n)), np.float64)


def _brute(params: rbm.RBMParams):
  """log p*(v, h) over every joint state, as float64 numpy: (V, H) table, visible and hidden
  state lists."""
  w, b, c = (np.asarray(x, np.float64) for x in (params.w, params.b, params.c))
  vs, hs = _states(w.shape[0]), _states(w.shape[1])
  return vs @ b[:, None] + (hs @ c)[None, :] + vs @ w @ hs.T, vs, hs


def _logsumexp(a, axis=None):
  m = np.max(a, axis=axis, keepdims=True)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def test_free_energy_is_minus_log_sum_over_hidden_states():
  params = _params(5, 4)
  table, vs, _ = _brute(params)
  fe = np.asarray(rbm.free_energy(params, jnp.asarray(vs, jnp.float32)))
  np.testing.assert_allclose(fe, -_logsumexp(table, axis=1), rtol=1e-5, atol=1e-4)
  # and the energy of each joint state
  hs = _states(4)
  v = jnp.asarray(np.repeat(vs, len(hs), 0), jnp.float32)
  h = jnp.asarray(np.tile(hs, (len(vs), 1)), jnp.float32)
  np.testing.assert_allclose(np.asarray(rbm.energy(params, v, h)), -table.reshape(-1),
                             rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("d,h", [(10, 6), (4, 9)])
def test_exact_log_partition_matches_the_sum_over_all_joint_states(d, h):
  params = _params(d, h, seed=d + h)
  table, _, _ = _brute(params)
  np.testing.assert_allclose(float(rbm.exact_log_partition(params)), _logsumexp(table),
                             rtol=1e-5)


def test_gibbs_conditionals_match_the_joint():
  params = _params(4, 3, seed=1)
  table, vs, hs = _brute(params)
  joint = np.exp(table - _logsumexp(table))
  p_h_given_v = joint / joint.sum(1, keepdims=True)  # (V, H)
  p_v_given_h = joint / joint.sum(0, keepdims=True)
  # p(h_j = 1 | v) and p(v_i = 1 | h) as marginals of the enumerated conditionals
  np.testing.assert_allclose(np.asarray(rbm.hidden_probs(params, jnp.asarray(vs, jnp.float32))),
                             p_h_given_v @ hs, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      np.asarray(rbm.visible_probs(params, jnp.asarray(hs, jnp.float32))),
      p_v_given_h.T @ vs, rtol=1e-5, atol=1e-6)


def test_gibbs_chains_reach_the_model_distribution():
  params = _params(4, 3, seed=2)
  table, vs, _ = _brute(params)
  p_v = np.exp(_logsumexp(table, 1) - _logsumexp(table))
  v0 = jnp.zeros((20_000, 4), jnp.float32)
  v, _ = jax.jit(rbm.gibbs_chain, static_argnums=3)(params, v0, jax.random.key(0), 30)
  codes = np.asarray(v, np.int64) @ (2 ** np.arange(3, -1, -1))
  freq = np.bincount(codes, minlength=16) / len(codes)
  # 20,000 draws: standard error <= 0.0036 per state
  np.testing.assert_allclose(freq, p_v, atol=0.015)


def test_cd_gradient_is_the_difference_of_free_energy_gradients():
  params = _params(6, 5, seed=3)
  r = np.random.default_rng(0)
  v0 = jnp.asarray(r.integers(0, 2, (7, 6)), jnp.float32)
  vk = jnp.asarray(r.integers(0, 2, (9, 6)), jnp.float32)
  grad = rbm.cd_gradient(params, v0, vk)
  ref = jax.grad(lambda p: jnp.mean(rbm.free_energy(p, vk)) - jnp.mean(rbm.free_energy(p, v0)))(
      params)
  for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(ref), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_negative_phase_from_exact_model_samples_gives_the_likelihood_gradient():
  params = _params(6, 4, seed=4, scale=0.5)
  data = jnp.asarray(np.random.default_rng(1).integers(0, 2, (30, 6)), jnp.float32)
  _, vs, _ = _brute(params)
  log_p = -np.asarray(rbm.free_energy(params, jnp.asarray(vs, jnp.float32)), np.float64)
  idx = jax.random.categorical(jax.random.key(0), jnp.asarray(log_p), shape=(100_000,))
  model_samples = jnp.asarray(vs, jnp.float32)[idx]
  grad = rbm.cd_gradient(params, data, model_samples)
  exact = jax.grad(lambda p: jnp.mean(-rbm.free_energy(p, data)) - rbm.exact_log_partition(p))(
      params)
  for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(exact), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=0.01)


def test_ais_matches_exact_log_partition_on_an_enumerable_rbm():
  params = _params(10, 6, seed=5, scale=0.7)
  exact = float(rbm.exact_log_partition(params))
  data = np.random.default_rng(2).integers(0, 2, (200, 10))
  est = ais.estimate_log_partition(params, ais.base_rate_bias(data), jax.random.key(0),
                                   num_runs=100, num_betas=1000)
  assert abs(est.log_z - exact) < 0.05, (est.log_z, exact)
  assert est.log_z_minus_3sd <= exact + 0.02 and exact - 0.02 <= est.log_z_plus_3sd
  # With no annealing steps to speak of the estimate is much worse: AIS is doing the work.
  crude = ais.estimate_log_partition(params, ais.base_rate_bias(data), jax.random.key(0),
                                     num_runs=100, num_betas=10)
  assert abs(crude.log_z - exact) > abs(est.log_z - exact)


def test_ais_pieces():
  betas = ais.beta_schedule(14_500)
  assert betas[0] == 0.0 and betas[-1] == 1.0 and len(betas) == 14_501
  assert np.all(np.diff(betas) > 0)
  assert np.sum(betas < 0.5) == 500 and np.sum((betas >= 0.5) & (betas < 0.9)) == 4000
  params = _params(5, 3, seed=6)
  b_a = jnp.asarray(np.random.default_rng(0).normal(size=5), jnp.float32)
  vs = jnp.asarray(_states(5), jnp.float32)
  # beta = 1 is the RBM's -F(v); beta = 0 is the base model, whose log Z_0 is exact
  np.testing.assert_allclose(np.asarray(ais.log_unnormalized(params, b_a, vs, 1.0)),
                             -np.asarray(rbm.free_energy(params, vs)), rtol=1e-5)
  log_z0 = _logsumexp(np.asarray(ais.log_unnormalized(params, b_a, vs, 0.0), np.float64))
  np.testing.assert_allclose(float(ais.base_log_partition(b_a, 3)), log_z0, rtol=1e-5)
  x = np.array([[1, 0], [1, 1], [0, 0]])
  np.testing.assert_allclose(ais.base_rate_bias(x, 1.0), np.log([3 / 2, 2 / 3]),
                             rtol=1e-6, atol=1e-7)


def test_ais_transition_leaves_the_intermediate_distribution_invariant():
  params = _params(4, 3, seed=8)
  b_a = jnp.asarray([0.5, -1.0, 0.2, 1.5], jnp.float32)
  vs = jnp.asarray(_states(4), jnp.float32)
  log_p = np.asarray(ais.log_unnormalized(params, b_a, vs, 0.6), np.float64)
  p = np.exp(log_p - _logsumexp(log_p))
  idx = jax.random.categorical(jax.random.key(0), jnp.asarray(log_p), shape=(40_000,))
  v = jax.jit(ais.transition)(params, b_a, vs[idx], 0.6, jax.random.key(1))
  codes = np.asarray(v, np.int64) @ (2 ** np.arange(3, -1, -1))
  np.testing.assert_allclose(np.bincount(codes, minlength=16) / len(codes), p, atol=0.012)


def test_mean_log_likelihood_uses_the_partition_function():
  params = _params(6, 4, seed=7)
  vs = jnp.asarray(_states(6), jnp.float32)
  log_z = float(rbm.exact_log_partition(params))
  probs = np.exp(-np.asarray(rbm.free_energy(params, vs), np.float64) - log_z)
  np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
  ll = ais.mean_log_likelihood(params, vs[:5], log_z, batch_size=2)
  np.testing.assert_allclose(ll, np.mean(np.log(probs[:5])), rtol=1e-5)



def test_ais_evaluator_scores_the_binarised_test_set_against_the_exact_log_partition():
  """genjax.evals.ais on an enumerable RBM: log Z near the exact one, and the test figure the
  exact mean log p(v) of the seeded binarisation of the test images, up to that error."""
  params = _params(10, 6, seed=5, scale=0.7)
  exact = float(rbm.exact_log_partition(params))
  r = np.random.default_rng(2)

  def split(name, n):
    images = r.integers(0, 256, (n, 2, 5, 1)).astype(np.uint8)
    return splits.ArraySplit(name, {"image": images, "label": np.zeros(n, np.int32)})

  config = ml_collections.ConfigDict({"family": "rbm", "ais": {"num_betas": 1000},
                                      "train": {"sample_grid": 2}})
  ctx = evals.Context(family=rbm, state=rbm.RBMState(
      step=jnp.zeros((), jnp.int32), params=params, velocity=params, chains=None,
      hparams=None), config=config, step=0, key=jax.random.key(0), workdir="")
  train, test = split("train", 200), split("test", 50)
  ctx.add_split(train)
  ctx.add_split(test)
  out = ais_eval.ais(ctx, "test", num_runs=50, num_repeats=2, num_train_eval=20)
  assert abs(out["log_z"] - exact) < 0.05, (out["log_z"], exact)
  v = likelihood_eval.binarized(test.arrays["image"]).reshape(50, -1)
  want = float(np.mean(-np.asarray(rbm.free_energy(params, jnp.asarray(v)), np.float64))) - exact
  assert out["log_likelihood"] == pytest.approx(want + exact - out["log_z"], abs=1e-4)
  assert out["nll"] == -out["log_likelihood"] and abs(out["log_likelihood"] - want) < 0.05
  details = out["details"]
  assert len(details["log_z_repeats"]) == 2 and details["num_runs"] == 50
  assert details["num_betas"] == 1000  # from the config's `ais` section

def _tiny_config(method: str, cd_k: int = 1) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict({"image_shape": (2, 3, 1), "batch_size": 16})
  c.model = rbm.model_config(num_hidden=4, method=method, cd_k=cd_k, visible_bias_init="zero",
                             init_scale=0.1)
  # A large step with momentum 0.9 makes 16 persistent chains oscillate on a 6-pixel model.
  c.optim = rbm.optim_config(learning_rate=0.05, momentum_switch_step=5, final_momentum=0.5,
                             decay_start=1.0)
  c.train = ml_collections.ConfigDict({"num_steps": 200})
  return c


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_training_raises_the_exact_log_likelihood(method):
  # Two prototypes with noise: the exact log-likelihood of the data must rise under training.
  r = np.random.default_rng(0)
  protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], np.float32)
  data = protos[r.integers(0, 2, 512)]
  data = np.abs(data - (r.random(data.shape) < 0.05)).astype(np.float32)
  state = rbm.create_state(jax.random.key(0), _tiny_config(method))

  def ll(p):
    return float(jnp.mean(-rbm.free_energy(p, jnp.asarray(data))) - rbm.exact_log_partition(p))

  before = ll(state.params)
  step = jax.jit(rbm.train_step)
  for i in range(150):
    batch = {"image": jnp.asarray(data[(16 * i) % 512:(16 * i) % 512 + 16].reshape(16, 2, 3, 1))}
    state, metrics = step(state, batch, jax.random.key(1))
  after = ll(state.params)
  assert int(state.step) == 150
  assert after > before + 1.0, (before, after)
  assert np.isfinite(float(metrics["reconstruction_error"]))
  if method == "pcd":  # the chains moved and stay binary
    assert set(np.unique(np.asarray(state.chains))) <= {0.0, 1.0}


def test_learning_rate_and_momentum_schedules():
  c = _tiny_config("cd")
  c.optim.decay_start = 0.5
  hp = rbm.create_state(jax.random.key(0), c).hparams
  lrs = [float(rbm.learning_rate(hp, jnp.asarray(s))) for s in (0, 100, 150, 200)]
  np.testing.assert_allclose(lrs, [0.05, 0.05, 0.025, 0.0], atol=1e-7)
  assert float(rbm.momentum(hp, jnp.asarray(4))) == 0.5
  assert float(rbm.momentum(hp, jnp.asarray(5))) == pytest.approx(0.5)
  c.optim.final_momentum = 0.9
  hp = rbm.create_state(jax.random.key(0), c).hparams
  assert float(rbm.momentum(hp, jnp.asarray(5))) == pytest.approx(0.9)


@pytest.mark.slow
def test_smoke_run_through_the_loop(tmp_path, run_train_cli):
  proc = run_train_cli(tmp_path, {"data.idx_dir": str(IDX_DIR), "train.tensorboard": False,
                                  "train.num_steps": 20}, config=CONFIG)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["step"] == 20
  test = results["test"]
  assert {"reconstruction_error", "free_energy", "pseudo_log_likelihood"} <= set(test)
  assert 0 < test["reconstruction_error"] < 784 and test["pseudo_log_likelihood"] < 0
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [10, 20]
  assert list((tmp_path / "samples").glob("*.png"))
