"""Estimator classes against scikit-learn (same objectives, same answers) and their plumbing:
label mapping, parameters, errors, and every registered model end to end."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import linear_model, neighbors, svm  # noqa: E402

from genjax.classical import estimators  # noqa: E402
from genjax.data import tabular  # noqa: E402


@pytest.fixture(scope="module")
def wine():
  data = tabular.load("wine")
  x = (data.x - data.x.mean(0)) / data.x.std(0)
  return x.astype(np.float32), data.y


def test_logistic_regression_matches_scikit_learn(wine):
  x, y = wine
  l2 = 1e-2
  ours = estimators.LogisticRegression(l2=l2, tol=1e-6).fit(x, y)
  ref = linear_model.LogisticRegression(C=1 / (l2 * len(y)), tol=1e-10, max_iter=10000).fit(x, y)
  np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x), atol=2e-3)
  # Both parametrisations are invariant to adding a vector to every class: compare centred.
  centre = lambda w: w - w.mean(0, keepdims=True)
  np.testing.assert_allclose(centre(np.asarray(ours.params_["w"])), centre(ref.coef_.T),
                             atol=2e-2)
  assert ours.score(x, y) == ref.score(x, y)
  assert 0 < ours.n_iter_ < 1000


def test_linear_svc_matches_scikit_learn(wine):
  x, y = wine
  l2 = 1e-2
  ours = estimators.LinearSVC(l2=l2, tol=1e-6).fit(x, y)
  # liblinear penalises the intercept as a feature of value intercept_scaling: make it large so
  # that its penalty vanishes, as in our objective.
  ref = svm.LinearSVC(C=1 / (l2 * len(y)), loss="squared_hinge", intercept_scaling=100.0,
                      tol=1e-8, max_iter=100000).fit(x, y)
  np.testing.assert_allclose(ours.decision_function(x), ref.decision_function(x), atol=2e-2)
  np.testing.assert_array_equal(ours.predict(x), ref.predict(x))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_matches_scikit_learn(wine, weights):
  x, y = wine
  ours = estimators.KNeighborsClassifier(k=5, weights=weights, smoothing=0.0).fit(x[:120], y[:120])
  ref = neighbors.KNeighborsClassifier(5, weights=weights).fit(x[:120], y[:120])
  np.testing.assert_allclose(ours.predict_proba(x[120:]), ref.predict_proba(x[120:]), atol=1e-5)
  np.testing.assert_array_equal(ours.predict(x[120:]), ref.predict(x[120:]))


def test_labels_parameters_and_errors(wine):
  x, y = wine
  names = np.array(["barolo", "grignolino", "barbera"])[y]
  clf = estimators.make("knn", k=3)
  assert clf.get_params()["k"] == 3 and "metric" in clf.get_params()
  assert clf.set_params(k=1) is clf and clf.get_params()["k"] == 1
  with pytest.raises(RuntimeError, match="not fitted"):
    clf.predict(x)
  clf.fit(x, names)
  assert list(clf.classes_) == ["barbera", "barolo", "grignolino"]
  assert clf.score(x, names) == 1.0  # each row is its own nearest neighbour
  assert clf.predict_proba(x).shape == (len(y), 3)
  with pytest.raises(ValueError, match="no hyper-parameters"):
    estimators.LogisticRegression(C=1.0)
  with pytest.raises(ValueError, match="unknown model"):
    estimators.make("random_forest")
  with pytest.raises(ValueError, match="expected x"):
    clf.predict(x[:, :5])


# Each model compiles its own fit: the cheap ones run by default, the rest with -m slow.
FAST = ("knn", "gaussian_nb", "lda")


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(estimators.ESTIMATORS)])
def test_every_registered_model_fits_iris(name):
  data = tabular.load("iris")
  if name == "categorical_nb":
    x = np.floor(data.x)  # small integer categories
  elif name == "multinomial_nb":
    x = data.x  # non-negative
  else:
    x = (data.x - data.x.mean(0)) / data.x.std(0)
  clf = estimators.make(name)
  clf.fit(x[::2], data.y[::2])
  p = clf.predict_proba(x[1::2])
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-4)
  np.testing.assert_array_equal(clf.predict(x[1::2]), clf.classes_[p.argmax(1)])
  assert clf.score(x[1::2], data.y[1::2]) > 0.6
