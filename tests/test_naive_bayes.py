"""Naive Bayes: hand-computed posteriors, scikit-learn's estimators, streaming fits, samplers."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets
from sklearn import naive_bayes as sknb

from genjax.classical import bernoulli_nb, categorical_nb, gaussian_nb, multinomial_nb
from genjax.classical import naive_bayes as nb

MODULES = [gaussian_nb, bernoulli_nb, multinomial_nb, categorical_nb]


@pytest.fixture(scope="module")
def digits():
  d = datasets.load_digits()
  return d.data.astype(np.float32), d.target.astype(np.int32)


def _dot_tol(x_NxD, log_p_CxD, log_prior_C) -> np.ndarray:
  """Per-row bound [N, 1] on float32 log P(y | x) = jll - logsumexp(jll), jll = x log_p + prior
  (multinomial): two D-term dot products (the class's and the winner's) each within D ulps
  of their term magnitudes, up to ~1.8e3 on digits (2e-3 was 10 ulps of that; 3 seen)."""
  s = np.asarray(x_NxD, np.float64) @ np.abs(np.asarray(log_p_CxD, np.float64)).T
  s = (s + np.abs(np.asarray(log_prior_C, np.float64))).max(1, keepdims=True)
  return 2 * x_NxD.shape[1] * np.finfo(np.float32).eps * s


def _posterior(log_joint_NxC):
  log_joint_NxC = np.asarray(log_joint_NxC, np.float64)
  p = np.exp(log_joint_NxC - log_joint_NxC.max(1, keepdims=True))
  return p / p.sum(1, keepdims=True)


def test_gaussian_hand_computed():
  # Class 0: x in {0, 2} (mean 1, variance 1); class 1: x in {4, 5, 6} (mean 5, variance 2/3).
  x = jnp.array([[0.0], [2.0], [4.0], [5.0], [6.0]])
  y = jnp.array([0, 0, 1, 1, 1])
  params = gaussian_nb.fit(x, y, 2, var_smoothing=0.0)
  np.testing.assert_allclose(params["mean_CxD"][:, 0], [1.0, 5.0], rtol=1e-6)
  np.testing.assert_allclose(params["var_CxD"][:, 0], [1.0, 2.0 / 3.0], rtol=1e-6)
  np.testing.assert_allclose(np.exp(params["log_prior_C"]), [0.4, 0.6], rtol=1e-6)
  # At x = 3: N(3; 1, 1) 0.4 against N(3; 5, 2/3) 0.6, by hand.
  a = 0.4 * np.exp(-0.5 * 4.0) / np.sqrt(2 * np.pi)
  b = 0.6 * np.exp(-0.5 * 4.0 / (2 / 3)) / np.sqrt(2 * np.pi * 2 / 3)
  got = np.exp(gaussian_nb.log_proba(params, jnp.array([[3.0]])))[0]
  np.testing.assert_allclose(got, [a / (a + b), b / (a + b)], rtol=1e-5)


def test_gaussian_variance_smoothing_is_scikit_learns():
  # A constant feature: its class variances are exactly the smoothing, var_smoothing times
  # the largest variance of any feature over all rows (here feature 0's, 2.0).
  x = jnp.array([[0.0, 1.0], [2.0, 1.0], [3.0, 1.0], [1.0, 1.0]])
  y = jnp.array([0, 0, 1, 1])
  params = gaussian_nb.fit(x, y, 2, var_smoothing=0.1)
  total_var = np.var(np.asarray(x)[:, 0])
  np.testing.assert_allclose(params["var_CxD"][:, 1], 0.1 * total_var, rtol=1e-6)
  np.testing.assert_allclose(params["var_CxD"][:, 0], 1.0 + 0.1 * total_var, rtol=1e-6)


def test_gaussian_against_scikit_learn(digits):
  x, y = digits
  ours = np.exp(gaussian_nb.log_proba(gaussian_nb.fit(jnp.asarray(x), jnp.asarray(y), 10),
                                      jnp.asarray(x[:300])))
  ref = sknb.GaussianNB().fit(x.astype(np.float64), y).predict_proba(x[:300].astype(np.float64))
  np.testing.assert_allclose(ours, ref, atol=2e-3)
  assert np.mean(ours.argmax(1) == ref.argmax(1)) == 1.0


def test_bernoulli_hand_computed():
  # Class 0 rows (1, 0), (1, 1); class 1 row (0, 0). alpha = 1:
  # P(x0=1|0) = 3/4, P(x1=1|0) = 2/4, P(x0=1|1) = 1/3, P(x1=1|1) = 1/3; priors 2/3, 1/3.
  x = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
  y = jnp.array([0, 0, 1])
  params = bernoulli_nb.fit(x, y, 2, alpha=1.0, binarize=None)
  a = 2 / 3 * (3 / 4) * (1 - 2 / 4)   # x = (1, 0)
  b = 1 / 3 * (1 / 3) * (1 - 1 / 3)
  got = np.exp(bernoulli_nb.log_proba(params, jnp.array([[1.0, 0.0]])))[0]
  np.testing.assert_allclose(got, [a / (a + b), b / (a + b)], rtol=1e-5)


def test_bernoulli_against_scikit_learn(digits):
  x, y = digits
  for alpha, threshold in [(1.0, 0.0), (0.5, 7.5)]:
    params = bernoulli_nb.fit(jnp.asarray(x), jnp.asarray(y), 10, alpha=alpha,
                              binarize=threshold)
    ref = sknb.BernoulliNB(alpha=alpha, binarize=threshold).fit(x, y)
    np.testing.assert_allclose(bernoulli_nb.log_proba(params, jnp.asarray(x[:200])),
                               ref.predict_log_proba(x[:200]), atol=2e-3)


def test_multinomial_hand_computed():
  # Class 0 totals (3, 1), class 1 totals (0, 2); alpha = 1: P(.|0) = (4/6, 2/6),
  # P(.|1) = (1/4, 3/4); equal priors. x = (2, 1): 4/6^2 * 2/6 against 1/4^2 * 3/4.
  x = jnp.array([[3.0, 1.0], [0.0, 2.0]])
  y = jnp.array([0, 1])
  params = multinomial_nb.fit(x, y, 2)
  a = (4 / 6) ** 2 * (2 / 6)
  b = (1 / 4) ** 2 * (3 / 4)
  got = np.exp(multinomial_nb.log_proba(params, jnp.array([[2.0, 1.0]])))[0]
  np.testing.assert_allclose(got, [a / (a + b), b / (a + b)], rtol=1e-5)


def test_multinomial_against_scikit_learn(digits):
  x, y = digits
  params = multinomial_nb.fit(jnp.asarray(x), jnp.asarray(y), 10, alpha=0.5)
  ref = sknb.MultinomialNB(alpha=0.5).fit(x, y)
  err = np.abs(multinomial_nb.log_proba(params, jnp.asarray(x[:200]))
               - ref.predict_log_proba(x[:200]))
  tol = _dot_tol(x[:200], params["log_p_CxD"], params["log_prior_C"])
  assert np.all(err <= tol), np.max(err / tol)


def test_categorical_hand_computed():
  # One feature with K = 3. Class 0 saw (0, 0, 2), class 1 saw (1,). alpha = 1:
  # P(x=2|0) = 2/6, P(x=2|1) = 1/4; priors 3/4, 1/4.
  x = jnp.array([[0], [0], [2], [1]])
  y = jnp.array([0, 0, 0, 1])
  params = categorical_nb.fit(x, y, 2, num_categories=3)
  a, b = 3 / 4 * 2 / 6, 1 / 4 * 1 / 4
  got = np.exp(categorical_nb.log_proba(params, jnp.array([[2]])))[0]
  np.testing.assert_allclose(got, [a / (a + b), b / (a + b)], rtol=1e-5)


def test_categorical_against_scikit_learn(digits):
  x, y = digits
  xc = (x // 4).astype(np.int32)  # 0..4
  params = categorical_nb.fit(jnp.asarray(xc), jnp.asarray(y), 10, alpha=0.7)
  ref = sknb.CategoricalNB(alpha=0.7, min_categories=5).fit(xc, y)
  np.testing.assert_allclose(categorical_nb.log_proba(params, jnp.asarray(xc[:200])),
                             ref.predict_log_proba(xc[:200]), atol=2e-3)


def test_given_priors_match_scikit_learn(digits):
  x, y = digits
  priors = np.linspace(1.0, 2.0, 10)
  priors /= priors.sum()
  params = multinomial_nb.fit(jnp.asarray(x), jnp.asarray(y), 10, priors=jnp.asarray(priors))
  np.testing.assert_allclose(np.exp(params["log_prior_C"]), priors, rtol=1e-5)
  ref = sknb.MultinomialNB(class_prior=priors).fit(x, y)
  err = np.abs(multinomial_nb.log_proba(params, jnp.asarray(x[:100]))
               - ref.predict_log_proba(x[:100]))
  tol = _dot_tol(x[:100], params["log_p_CxD"], params["log_prior_C"])
  assert np.all(err <= tol), np.max(err / tol)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_streaming_equals_batch(module, digits):
  x, y = digits
  x = (x // 4).astype(np.int32) if module is categorical_nb else x
  kw = {"num_categories": 5} if module is categorical_nb else {}
  full = module.fit(jnp.asarray(x), jnp.asarray(y), 10, **kw)
  stats = module.init_stats(x.shape[1], 10, **kw)
  # Uneven batches, the first of only two classes (the others start empty mid-stream).
  order = np.argsort(y, kind="stable")
  xs, ys = x[order], y[order]
  for lo, hi in [(0, 300), (300, 1001), (1001, len(y))]:
    stats = module.update_stats(stats, jnp.asarray(xs[lo:hi]), jnp.asarray(ys[lo:hi]))
  streamed = module.finalize(stats)
  for k in full:
    np.testing.assert_allclose(streamed[k], full[k], rtol=2e-4, atol=1e-5, err_msg=k)


def test_gaussian_sampler_moments():
  params = {"mean_CxD": jnp.array([[0.0, 5.0], [-3.0, 1.0]]),
            "var_CxD": jnp.array([[1.0, 0.25], [4.0, 9.0]]), "log_prior_C": jnp.zeros(2)}
  n = 20_000
  x = np.asarray(gaussian_nb.sample(params, jax.random.key(0), jnp.full(n, 1)))
  sd = np.sqrt(np.asarray(params["var_CxD"][1]))
  assert np.all(np.abs(x.mean(0) - np.asarray(params["mean_CxD"][1])) < 4 * sd / np.sqrt(n))
  np.testing.assert_allclose(x.var(0), params["var_CxD"][1], rtol=4 * np.sqrt(2 / n))


def test_bernoulli_and_categorical_sampler_moments(digits):
  x, y = digits
  n = 4000
  params = bernoulli_nb.fit(jnp.asarray(x), jnp.asarray(y), 10, binarize=7.5)
  draws = np.asarray(bernoulli_nb.sample(params, jax.random.key(1), jnp.full(n, 3)))
  assert set(np.unique(draws)) <= {0.0, 1.0}
  p = np.exp(np.asarray(params["log_p_CxD"][3]))
  np.testing.assert_allclose(draws.mean(0), p, atol=4.5 * 0.5 / np.sqrt(n))

  xc = (x // 4).astype(np.int32)
  params = categorical_nb.fit(jnp.asarray(xc), jnp.asarray(y), 10, num_categories=5)
  draws = np.asarray(categorical_nb.sample(params, jax.random.key(2), jnp.full(n, 7)))
  freq = (draws[..., None] == np.arange(5)).mean(0)
  np.testing.assert_allclose(freq, np.exp(params["log_p_CxDxK"][7]), atol=4.5 * 0.5 / np.sqrt(n))


def test_multinomial_sampler_moments():
  params = multinomial_nb.fit(jnp.array([[30.0, 10.0, 0.0], [0.0, 0.0, 7.0]]),
                              jnp.array([0, 1]), 2)
  n = 4000
  draws = np.asarray(multinomial_nb.sample(params, jax.random.key(3), jnp.zeros(n, jnp.int32)))
  np.testing.assert_array_equal(draws.sum(1), 40.0)  # the class's mean row total
  p = np.exp(np.asarray(params["log_p_CxD"][0]))
  sd = np.sqrt(40 * p * (1 - p))
  np.testing.assert_allclose(draws.mean(0), 40 * p, atol=4 * sd.max() / np.sqrt(n))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_hyperparameters_are_fit_keywords(module):
  params = inspect.signature(module.fit).parameters
  for name, default in module.HYPERPARAMETERS.items():
    assert params[name].default == default, name


def test_normalise_and_predict_agree(digits):
  x, y = digits
  params = gaussian_nb.fit(jnp.asarray(x), jnp.asarray(y), 10)
  lp = gaussian_nb.log_proba(params, jnp.asarray(x))
  # lp = jll - logsumexp(jll) subtracts numbers up to |jll| ~ 270: a few ulps of that row's
  # top |jll| (1e-5 was under one ulp of 270; half an ulp seen), not of 1.
  top = np.abs(np.asarray(gaussian_nb.joint_log_likelihood(params, jnp.asarray(x))).max(1))
  np.testing.assert_array_less(np.abs(jax.nn.logsumexp(lp, -1)),
                               4 * np.finfo(np.float32).eps * np.maximum(top, 1.0))
  np.testing.assert_array_equal(gaussian_nb.predict(params, jnp.asarray(x)), lp.argmax(-1))
  assert nb.VARIANTS["gaussian"] == gaussian_nb.__name__


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_blocked_update_equals_one_block(module, digits):
  # update_stats folds large batches in blocks of rows (nb.scan_rows): 7 blocks of 250 rows
  # and a remainder of 47 must give the statistics of one pass over all 1797 rows.
  x, y = digits
  x = (x // 4).astype(np.int32) if module is categorical_nb else x
  kw = {"num_categories": 5} if module is categorical_nb else {}
  update = nb.moments_update if module is gaussian_nb else module._update
  stats0 = module.init_stats(x.shape[1], 10, **kw)
  whole = update(stats0, jnp.asarray(x), jnp.asarray(y))
  blocked = nb.scan_rows(update, stats0, jnp.asarray(x), jnp.asarray(y), rows=250)
  for k in whole:
    np.testing.assert_allclose(blocked[k], whole[k], rtol=2e-4, atol=1e-4, err_msg=k)


def test_class_scatters_sorted_blocks_equal_masked_sums():
  """QDA's per-class scatters (rows sorted by class, taken in blocks; gda.class_scatters)
  against float64 sums over each class's rows, with blocks that split classes and a class
  with no rows. float32 sums of n products of size |x|^2: relative error ~n eps, so 1e-4."""
  from genjax.classical import gda
  rng = np.random.default_rng(7)
  x = rng.normal(size=(700, 6)).astype(np.float32)
  y = rng.choice([0, 1, 3], 700).astype(np.int32)  # class 2 is empty
  count = np.bincount(y, minlength=4).astype(np.float32)
  got = np.asarray(gda.class_scatters(jnp.asarray(x), jnp.asarray(y), jnp.asarray(count),
                                      block=64))
  want = np.stack([x[y == c].T.astype(np.float64) @ x[y == c] for c in range(4)])
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_qda_ridge_adds_to_every_class_diagonal():
  """ridge r: each class covariance is the ML covariance plus r I (Cholesky factor checked
  against float64; float32 factorisation of a well-conditioned 4x4: 1e-5 relative)."""
  from genjax.classical import qda
  rng = np.random.default_rng(8)
  x = rng.normal(size=(300, 4)).astype(np.float32)
  y = rng.integers(0, 2, 300).astype(np.int32)
  params = qda.fit(x, y, 2, shrinkage=0.0, ridge=0.5)
  for c in range(2):
    cov = np.cov(x[y == c].astype(np.float64), rowvar=False, bias=True) + 0.5 * np.eye(4)
    chol = np.asarray(params["chol_CxDxD"][c], np.float64)
    np.testing.assert_allclose(chol @ chol.T, cov, rtol=1e-5, atol=1e-5)
