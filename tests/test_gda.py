"""LDA and QDA: closed forms in float64 NumPy, scikit-learn's LDA, streaming fits, samplers."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from genjax.classical import gda, lda, qda


@pytest.fixture(scope="module")
def wine():
  d = datasets.load_wine()
  x = d.data.astype(np.float64)
  x = (x - x.mean(0)) / x.std(0)  # unit scale, so float32 and float64 agree closely
  return x.astype(np.float32), d.target.astype(np.int32)


def _shrunk(cov, s):
  d = cov.shape[0]
  return (1 - s) * cov + s * np.trace(cov) / d * np.eye(d)


def _log_softmax(a):
  a = a - a.max(1, keepdims=True)
  return a - np.log(np.exp(a).sum(1, keepdims=True))


@pytest.mark.parametrize("shrinkage", [0.0, 0.3])
def test_lda_equals_closed_form(wine, shrinkage):
  x, y = wine
  x64 = x.astype(np.float64)
  means = np.stack([x64[y == c].mean(0) for c in range(3)])
  counts = np.bincount(y, minlength=3)
  # Pooled maximum-likelihood covariance: within-class scatter over N.
  cov = sum((x64[y == c] - means[c]).T @ (x64[y == c] - means[c]) for c in range(3)) / len(y)
  prec = np.linalg.inv(_shrunk(cov, shrinkage))
  log_joint = (x64 @ prec @ means.T - 0.5 * np.einsum("cd,de,ce->c", means, prec, means)
               + np.log(counts / counts.sum()))
  params = lda.fit(jnp.asarray(x), jnp.asarray(y), 3, shrinkage=shrinkage)
  np.testing.assert_allclose(params["weight_CxD"], means @ prec, rtol=1e-3, atol=1e-3)
  np.testing.assert_allclose(params["chol_DxD"] @ params["chol_DxD"].T, _shrunk(cov, shrinkage),
                             atol=1e-5)
  np.testing.assert_allclose(lda.log_proba(params, jnp.asarray(x)), _log_softmax(log_joint),
                             atol=2e-3)


def test_lda_against_scikit_learn(wine):
  x, y = wine
  params = lda.fit(jnp.asarray(x), jnp.asarray(y), 3, shrinkage=0.0)
  ref = LinearDiscriminantAnalysis(solver="lsqr").fit(x.astype(np.float64), y)
  np.testing.assert_allclose(np.exp(lda.log_proba(params, jnp.asarray(x))),
                             ref.predict_proba(x.astype(np.float64)), atol=1e-4)


def test_qda_equals_closed_form(wine):
  x, y = wine
  x64 = x.astype(np.float64)
  s = 0.05
  log_joint = np.zeros((len(y), 3))
  for c in range(3):
    xc = x64[y == c]
    cov = _shrunk(np.cov(xc.T, bias=True), s)
    diff = x64 - xc.mean(0)
    _, logdet = np.linalg.slogdet(cov)
    log_joint[:, c] = (-0.5 * np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
                       - 0.5 * logdet - 0.5 * x.shape[1] * np.log(2 * np.pi)
                       + np.log(len(xc) / len(y)))
  params = qda.fit(jnp.asarray(x), jnp.asarray(y), 3, shrinkage=s)
  np.testing.assert_allclose(qda.joint_log_likelihood(params, jnp.asarray(x)), log_joint,
                             rtol=1e-4, atol=2e-3)
  np.testing.assert_allclose(qda.log_proba(params, jnp.asarray(x)), _log_softmax(log_joint),
                             atol=2e-3)


def test_given_priors(wine):
  x, y = wine
  priors = jnp.array([0.2, 0.5, 0.3])
  for module in (lda, qda):
    free = module.fit(jnp.asarray(x), jnp.asarray(y), 3)
    given = module.fit(jnp.asarray(x), jnp.asarray(y), 3, priors=priors)
    np.testing.assert_allclose(np.exp(given["log_prior_C"]), priors, rtol=1e-6)
    # Bayes' rule: the posterior odds move by exactly the prior odds.
    shift = module.log_proba(given, jnp.asarray(x[:20])) - module.log_proba(free, x[:20])
    shift = shift - shift[:, :1]
    expected = (jnp.log(priors) - free["log_prior_C"]) - (jnp.log(priors[0])
                                                          - free["log_prior_C"][0])
    # Four log-probabilities, each rounded at the scale of its row's |log P| (QDA's reach
    # ~360: 1e-4 was 2 ulps of that), make a shift: allow 16 ulps of the largest.
    tol = 16 * np.finfo(np.float32).eps * np.abs(np.asarray(module.log_proba(free, x[:20]))).max()
    np.testing.assert_allclose(shift, np.broadcast_to(expected, shift.shape), atol=tol)


@pytest.mark.parametrize("module", [lda, qda], ids=["lda", "qda"])
def test_streaming_equals_batch(module, wine):
  x, y = wine
  full = module.fit(jnp.asarray(x), jnp.asarray(y), 3)
  stats = module.init_stats(x.shape[1], 3)
  order = np.argsort(y, kind="stable")
  xs, ys = x[order], y[order]
  for lo, hi in [(0, 40), (40, 41), (41, 120), (120, len(y))]:
    stats = module.update_stats(stats, jnp.asarray(xs[lo:hi]), jnp.asarray(ys[lo:hi]))
  streamed = module.finalize(stats)
  for k in full:
    np.testing.assert_allclose(streamed[k], full[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_lda_sampler_moments(wine):
  x, y = wine
  params = lda.fit(jnp.asarray(x[:, :4]), jnp.asarray(y), 3)
  n = 20_000
  draws = np.asarray(lda.sample(params, jax.random.key(0), jnp.full(n, 2)), np.float64)
  cov = np.asarray(params["chol_DxD"] @ params["chol_DxD"].T, np.float64)
  sd = np.sqrt(np.diag(cov))
  assert np.all(np.abs(draws.mean(0) - params["mean_CxD"][2]) < 4 * sd / np.sqrt(n))
  # Each entry of the sample covariance has standard error <= sqrt(2 / n) * sd_i * sd_j.
  tol = 4 * np.sqrt(2 / n) * np.outer(sd, sd)
  assert np.all(np.abs(np.cov(draws.T, bias=True) - cov) < tol)


def test_qda_sampler_moments(wine):
  x, y = wine
  params = qda.fit(jnp.asarray(x[:, :3]), jnp.asarray(y), 3, shrinkage=0.1)
  n = 20_000
  y_draw = jnp.array([0, 1] * (n // 2))
  draws = np.asarray(qda.sample(params, jax.random.key(1), y_draw), np.float64)
  for c in (0, 1):
    dc = draws[np.asarray(y_draw) == c]
    cov = np.asarray(params["chol_CxDxD"][c] @ params["chol_CxDxD"][c].T, np.float64)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(dc.mean(0) - params["mean_CxD"][c]) < 4 * sd / np.sqrt(len(dc)))
    tol = 4 * np.sqrt(2 / len(dc)) * np.outer(sd, sd)
    assert np.all(np.abs(np.cov(dc.T, bias=True) - cov) < tol)


def test_shrinkage_keeps_constant_features_invertible():
  x = jnp.array([[0.0, 1.0, 0.0], [1.0, 2.0, 0.0], [2.0, 2.5, 0.0], [3.0, 5.0, 0.0]])
  y = jnp.array([0, 0, 1, 1])
  for module in (lda, qda):
    lp = module.log_proba(module.fit(x, y, 2), x)
    assert np.all(np.isfinite(lp))
  assert gda.VARIANTS["lda"] == lda.__name__


@pytest.mark.parametrize("module", [lda, qda], ids=["lda", "qda"])
def test_hyperparameters_are_fit_keywords(module):
  params = inspect.signature(module.fit).parameters
  for name, default in module.HYPERPARAMETERS.items():
    assert params[name].default == default, name
