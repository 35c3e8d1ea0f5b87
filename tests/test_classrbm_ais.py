"""The classification RBM's AIS (genjax.structured.ais) against brute-force enumeration."""

import itertools
import types
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
from genjax.structured import ais, classrbm

REPO_ROOT = Path(__file__).resolve().parents[1]
D, H, C = 6, 4, 3
# float32 rounding accumulated over K annealing steps: each step adds a log-ratio of terms no
# larger than ~16 in size (|b| + |W h| <= 6 + 4 * 2 here), each rounded to 2^-24 relative, so
# even if every rounding had the same sign the sum moves by at most K * 16 * 2^-24 (1e-3 at
# K = 1,000).
ROUNDING_PER_STEP = 16 * 2.0**-24


def _params(seed: int = 0, scale: float = 1.0) -> classrbm.ClassRBMParams:
  r = np.random.default_rng(seed)
  f = lambda *shape: jnp.asarray(r.normal(size=shape), jnp.float32)  # noqa: E731
  return classrbm.ClassRBMParams(w=scale * f(D, H), u=scale * f(C, H), b=f(D), c=f(H), d=f(C))


def _states(n: int) -> np.ndarray:
  return np.asarray(list(itertools.product([0.0, 1.0], repeat=n)), np.float64)


def _logsumexp(a, axis=None):
  m = np.max(a, axis=axis, keepdims=True)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _joint(params, beta=1.0, b_a=None, d_a=None) -> np.ndarray:
  """log p*_beta(x, y, h) over every joint state in float64: (X, C, H) table, with
  p_beta ~ exp((1 - beta)(x.b_A + d_A,y) - beta E(x, y, h))."""
  w, u, b, c, d = (np.asarray(t, np.float64) for t in (params.w, params.u, params.b, params.c,
                                                         params.d))
  b_a = np.zeros(D) if b_a is None else np.asarray(b_a, np.float64)
  d_a = np.zeros(C) if d_a is None else np.asarray(d_a, np.float64)
  xs, hs = _states(D), _states(H)
  neg_e = ((xs @ b)[:, None, None] + d[None, :, None] + (hs @ c)[None, None, :]
           + (xs @ w @ hs.T)[:, None, :] + (u @ hs.T)[None, :, :])
  base = (xs @ b_a)[:, None, None] + d_a[None, :, None]
  return (1.0 - beta) * base + beta * neg_e


def _biases(seed: int = 1):
  r = np.random.default_rng(seed)
  return r.normal(size=D).astype(np.float32), np.log(r.dirichlet(np.ones(C))).astype(np.float32)


def test_path_pieces_against_enumeration():
  params = _params()
  b_a, d_a = _biases()
  hs = jnp.asarray(_states(H), jnp.float32)
  model = (params, jnp.asarray(b_a), jnp.asarray(d_a))
  for beta in (0.0, 0.3, 1.0):
    want = _logsumexp(_joint(params, beta, b_a, d_a), axis=(0, 1))  # x and y summed out
    got = ais.classrbm_log_unnormalized(*model, hs, beta)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
  # beta = 1 is the core's hidden marginal, and beta = 0 the base model with its exact log Z_0.
  np.testing.assert_allclose(np.asarray(ais.classrbm_log_unnormalized(*model, hs, 1.0)),
                             np.asarray(classrbm.hidden_log_weight(params, hs)), rtol=1e-6,
                             atol=1e-5)
  np.testing.assert_allclose(float(ais.classrbm_base_log_partition(model[1], model[2], H)),
                             _logsumexp(_joint(params, 0.0, b_a, d_a)), rtol=1e-6)
  # The path's increment, computed term by term, is the difference of log p* at two betas.
  path = ais.classrbm_path(params, b_a, d_a)
  np.testing.assert_allclose(
      np.asarray(path.increment(hs, 0.3, 0.35)),
      np.asarray(path.log_p(path.model, hs, 0.35) - path.log_p(path.model, hs, 0.3)), atol=1e-5)


def test_base_rate_label_bias_is_the_smoothed_log_frequency():
  got = ais.base_rate_label_bias(np.array([0, 0, 2, 0]), 3, pseudocount=1.0)
  np.testing.assert_allclose(got, np.log([4 / 7, 1 / 7, 2 / 7]), rtol=1e-6)


def test_transition_leaves_the_intermediate_hidden_marginal_invariant():
  """h ~ p_beta exactly, one transition, and the 16 hidden states' frequencies are p_beta's:
  N independent draws, so each frequency's standard deviation is sqrt(p (1 - p) / N); 5 of
  them per state."""
  params = _params(seed=2)
  b_a, d_a = _biases(seed=3)
  beta, n = 0.6, 40_000
  hs = jnp.asarray(_states(H), jnp.float32)
  log_p = _logsumexp(_joint(params, beta, b_a, d_a), axis=(0, 1))
  p = np.exp(log_p - _logsumexp(log_p))
  idx = jax.random.categorical(jax.random.key(0), jnp.asarray(log_p), shape=(n,))
  h = jax.jit(ais.classrbm_transition)(params, jnp.asarray(b_a), jnp.asarray(d_a), hs[idx],
                                      beta, jax.random.key(1))
  codes = np.asarray(h, np.int64) @ (2 ** np.arange(H - 1, -1, -1))
  freq = np.bincount(codes, minlength=2**H) / n
  np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
  # The transition moves: a fixed start does not stay put (what an identity map would pass).
  assert np.mean(np.any(np.asarray(h) != np.asarray(hs[idx]), -1)) > 0.3


def _repeats(path, num_repeats: int, num_runs: int, num_betas: int, seed: int = 0) -> np.ndarray:
  log_w, log_z0 = ais.runs(path, jax.random.key(seed), num_repeats * num_runs, num_betas)
  return np.array([ais.log_mean_exp_interval(w, log_z0).log_z
                   for w in log_w.reshape(num_repeats, num_runs)])


@pytest.mark.parametrize("base", ["base_rate", "uniform"])
def test_ais_log_partition_matches_enumeration(base):
  """The mean of R independent estimates is within 4 standard errors of the exact log Z (each
  estimate's spread measured from the R of them), plus the estimator's own bias: log of an
  unbiased Z estimate is low by about var / 2 (delta method), plus float32 rounding."""
  params = _params(seed=4)
  exact = float(_logsumexp(_joint(params)))
  np.testing.assert_allclose(float(classrbm.exact_log_partition(params)), exact, rtol=1e-6)
  b_a, d_a = _biases(seed=5) if base == "base_rate" else (np.zeros(D), np.zeros(C))
  path = ais.classrbm_path(params, b_a, d_a)
  num_repeats, num_betas = 10, 1000
  est = _repeats(path, num_repeats, num_runs=100, num_betas=num_betas)
  spread = est.std(ddof=1)
  tolerance = 4 * spread / np.sqrt(num_repeats) + spread**2 / 2 + num_betas * ROUNDING_PER_STEP
  assert abs(est.mean() - exact) < tolerance, (est, exact, tolerance)
  assert 0 < spread < 0.1  # a spread this small is what makes the test sharp
  # Barely annealed (10 temperatures), the estimates scatter far more: AIS is doing the work.
  crude = _repeats(path, num_repeats, num_runs=100, num_betas=10)
  assert crude.std(ddof=1) > 3 * spread


def test_mean_log_likelihood_is_the_label_marginal():
  """log p(x) = logsumexp_y -F(x, y) - log Z: a distribution over the 64 images, and each
  image's probability the brute-force sum over y and h."""
  params = _params(seed=6)
  table = _joint(params)
  log_z = float(_logsumexp(table))
  xs = jnp.asarray(_states(D), jnp.float32)
  want = _logsumexp(table, axis=(1, 2)) - log_z
  np.testing.assert_allclose(np.exp(want).sum(), 1.0, rtol=1e-9)
  got = np.asarray(ais.log_marginal_unnormalized(params, xs), np.float64) - log_z
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  ll = ais.mean_log_likelihood(params, xs[:7], log_z, batch_size=3)
  np.testing.assert_allclose(ll, want[:7].mean(), rtol=1e-5, atol=1e-5)


def test_ais_evaluator_scores_the_binarised_test_set():
  """genjax.evals.ais on a classification RBM: its path from the training data's base rates,
  log Z near the exact one, and the test figure the mean log p(x) of the project's seeded
  binarisation of the test images."""
  params = _params(seed=7)
  exact = float(_logsumexp(_joint(params)))
  r = np.random.default_rng(8)

  def split(name, n):
    return splits.ArraySplit(name, {"image": r.integers(0, 256, (n, 2, 3, 1)).astype(np.uint8),
                                    "label": r.integers(0, C, n).astype(np.int32)})

  config = ml_collections.ConfigDict({"family": "classrbm", "ais": {"num_betas": 1000}})
  # A family with no grid hooks: the evaluator scores it and draws no grids.
  ctx = evals.Context(family=types.SimpleNamespace(), state=types.SimpleNamespace(params=params),
                      config=config, step=0, key=jax.random.key(0), workdir="", writer=object())
  train, test = split("train", 200), split("test", 50)
  ctx.add_split(train)
  ctx.add_split(test)
  out = ais_eval.ais(ctx, "test", num_runs=100, num_repeats=4, num_train_eval=20)
  spread = out["log_z_repeat_std"]
  assert abs(out["log_z"] - exact) < 4 * spread / 2 + spread**2 / 2 + 1000 * ROUNDING_PER_STEP
  x = likelihood_eval.binarized(test.arrays["image"], likelihood_eval.BINARIZE_SEED)
  codes = np.asarray(x.reshape(50, -1) @ 2.0 ** np.arange(D - 1, -1, -1), np.int64)
  log_px_star = _logsumexp(_joint(params), axis=(1, 2))[codes]  # logsumexp_y -F(x, y)
  assert out["log_likelihood"] == pytest.approx(log_px_star.mean() - out["log_z"], abs=1e-4)
  assert out["nll"] == -out["log_likelihood"]
  details = out["details"]
  assert details["num_hidden"] == H and details["num_betas"] == 1000 and "grids" not in details
  want_z0 = (H * np.log(2) + np.logaddexp(0, ais.base_rate_bias(
      train.arrays["image"].reshape(200, -1) / 255.0)).sum())  # + logsumexp of log frequencies
  assert details["log_z_base"] == pytest.approx(want_z0, rel=1e-6)


def test_a_classification_rbm_path_needs_labels():
  with pytest.raises(ValueError, match="training labels"):
    ais.path_from_data(_params(), np.zeros((4, D)))


def test_a_path_given_only_its_log_weight_anneals_the_same():
  """The generic AIS with only log p*_beta and the transition (the increment as a difference
  of log p* at two betas) takes the same steps and weights as with the term-by-term ratio, up
  to float32 rounding over the K steps."""
  path = ais.classrbm_path(_params(seed=9), *_biases(seed=10))
  bare = ais.Path(model=path.model, log_p=path.log_p, transition=path.transition,
                  sample_base=path.sample_base, log_z_base=path.log_z_base)
  betas = jnp.asarray(ais.beta_schedule(200))
  h0 = path.sample_base(path.model, jax.random.key(0), 64)
  want = np.asarray(ais.anneal(path, betas, jax.random.key(1), h0))
  got = np.asarray(ais.anneal(bare, betas, jax.random.key(1), h0))
  np.testing.assert_allclose(got, want, atol=2 * 200 * ROUNDING_PER_STEP)
  assert np.std(want) > 0.01  # the runs differ: the weights are not a constant


def test_ais_evaluator_on_the_family_state():
  """The family's own state (classrbm_mnist's smoke model, 784 x 16): the evaluator runs on it
  through experiments/evaluate.py's path, and its log Z matches 2^16 enumerated hidden states."""
  from conftest import load_config_module

  from genjax.families import classrbm as family
  config = load_config_module(REPO_ROOT / "experiments" / "configs" /
                              "classrbm_mnist.py").get_config("hybrid,smoke")
  state = family.create_state(jax.random.key(0), config)
  # Weights large enough that the model is far from the base rates (init_scale 0.01 is not).
  r = np.random.default_rng(11)
  state = state.replace(params=state.params.replace(
      w=jnp.asarray(0.1 * r.normal(size=state.params.w.shape), jnp.float32),
      u=jnp.asarray(r.normal(size=state.params.u.shape), jnp.float32)))
  exact = float(classrbm.exact_log_partition(state.params))

  def split(name, n):
    return splits.ArraySplit(name, {"image": r.integers(0, 256, (n, 28, 28, 1)).astype(np.uint8),
                                    "label": r.integers(0, 10, n).astype(np.int32)})

  ctx = evals.Context(family=family, state=state, config=config, step=0, key=jax.random.key(0),
                      workdir="")
  ctx.add_split(split("train", 100))
  ctx.add_split(split("test", 20))
  out = ais_eval.ais(ctx, "test", num_runs=50, num_repeats=4, num_betas=500, num_train_eval=20)
  spread = out["log_z_repeat_std"]
  # Each step's increment sums D + C + H terms as large in all as log p* itself (~ log Z),
  # rounded to 2^-24 of that: at most 500 * 2^-24 * |log Z| over the 500 steps.
  rounding = 500 * 2.0**-24 * abs(exact)
  assert abs(out["log_z"] - exact) < 4 * spread / 2 + spread**2 / 2 + rounding, (out, exact)
  assert 0 < spread < 0.3 and out["details"]["num_hidden"] == 16
