"""scikit-learn-style estimator classes (fit / predict / predict_proba / score) over the pure
functional cores in genjax.classical, and `ESTIMATORS`, a registry from model name to class.

Every core module has `fit(x_NxD, y_N, num_classes, **hyperparameters) -> params`,
`log_proba(params, x_NxD)`, `predict(params, x_NxD)` and `HYPERPARAMETERS`; a class here only
maps arbitrary labels to 0..C-1 (`classes_`, sorted as `np.unique` sorts them), holds the
hyper-parameters and the fitted `params_`, and converts to NumPy at the edges.

    from genjax.classical.estimators import LogisticRegression
    clf = LogisticRegression(l2=1e-4).fit(x_train, y_train)
    clf.score(x_test, y_test), clf.predict_proba(x_test)
"""

import importlib

import jax
import numpy as np


class ClassicalClassifier:
  """An estimator over the core module `MODULE` with hyper-parameters `HYPERPARAMETERS`
  (the module's, updated by the class's `DEFAULTS`, then by the constructor's arguments)."""

  MODULE = ""
  DEFAULTS: dict = {}

  def __init__(self, **hyperparameters):
    self.module = importlib.import_module(self.MODULE)
    self._hyperparameters = {**self.module.HYPERPARAMETERS, **self.DEFAULTS}
    self.set_params(**hyperparameters)

  def get_params(self, deep: bool = True) -> dict:
    """The hyper-parameters, by name (`deep` is accepted for scikit-learn compatibility)."""
    del deep
    return dict(self._hyperparameters)

  def set_params(self, **hyperparameters) -> "ClassicalClassifier":
    """Update hyper-parameters; unknown names are refused."""
    unknown = set(hyperparameters) - set(self._hyperparameters)
    if unknown:
      raise ValueError(f"{type(self).__name__} has no hyper-parameters {sorted(unknown)}; "
                       f"known: {sorted(self._hyperparameters)}")
    self._hyperparameters.update(hyperparameters)
    return self

  def __repr__(self) -> str:
    changed = {k: v for k, v in self._hyperparameters.items()
               if self.module.HYPERPARAMETERS.get(k, object()) != v}
    return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

  def fit(self, x_NxD, y_N) -> "ClassicalClassifier":
    """Fit on rows x [N, D] and labels y [N] of any sortable type; returns self."""
    x_NxD = np.asarray(x_NxD, np.float32)
    self.classes_, y_index = np.unique(np.asarray(y_N), return_inverse=True)
    if x_NxD.ndim != 2 or len(x_NxD) != len(y_index):
      raise ValueError(f"expected x [N, D] and y [N], got {x_NxD.shape} and {np.shape(y_N)}")
    self.n_features_in_ = x_NxD.shape[1]
    self.params_ = jax.block_until_ready(self.module.fit(
        x_NxD, y_index.astype(np.int32), len(self.classes_), **self._hyperparameters))
    return self

  def _check(self, x_NxD) -> np.ndarray:
    if not hasattr(self, "params_"):
      raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit first")
    x_NxD = np.asarray(x_NxD, np.float32)
    if x_NxD.ndim != 2 or x_NxD.shape[1] != self.n_features_in_:
      raise ValueError(f"expected x [N, {self.n_features_in_}], got {x_NxD.shape}")
    return x_NxD

  def predict_log_proba(self, x_NxD) -> np.ndarray:
    """log P(class | x), [N, C], columns in the order of `classes_`."""
    return np.asarray(self.module.log_proba(self.params_, self._check(x_NxD)))

  def predict_proba(self, x_NxD) -> np.ndarray:
    """P(class | x), [N, C], columns in the order of `classes_`."""
    return np.exp(self.predict_log_proba(x_NxD))

  def predict(self, x_NxD) -> np.ndarray:
    """The predicted label of each row, [N] (values of `classes_`)."""
    x_NxD = self._check(x_NxD)
    return self.classes_[np.asarray(self.module.predict(self.params_, x_NxD))]

  def score(self, x_NxD, y_N) -> float:
    """Accuracy of `predict` on (x, y)."""
    return float(np.mean(self.predict(x_NxD) == np.asarray(y_N)))


class _DecisionFunction:
  def decision_function(self, x_NxD) -> np.ndarray:
    """The model's class scores, [N, C]."""
    return np.asarray(self.module.decision_function(self.params_, self._check(x_NxD)))


class LogisticRegression(_DecisionFunction, ClassicalClassifier):
  """Multinomial logistic regression with L2 (genjax.classical.logistic)."""

  MODULE = "genjax.classical.logistic"

  @property
  def n_iter_(self) -> int:
    return int(self.params_["num_iterations"])


class LinearSVC(_DecisionFunction, ClassicalClassifier):
  """Linear SVM, one-vs-rest squared hinge by default (genjax.classical.svm)."""

  MODULE = "genjax.classical.svm"
  DEFAULTS = {"kernel": "linear"}

  @property
  def n_iter_(self) -> int:
    return int(self.params_.num_iterations)


class KernelSVC(LinearSVC):
  """RBF-kernel SVM through Nystroem features (or `kernel="fourier"`), genjax.classical.svm."""

  DEFAULTS = {"kernel": "nystroem"}


def _plain(name: str, module: str, description: str) -> type[ClassicalClassifier]:
  """The ClassicalClassifier `name` over genjax.classical.<module>, with nothing of its own."""
  module = f"genjax.classical.{module}"
  return type(name, (ClassicalClassifier,), {
      "__doc__": f"{description} ({module}).", "__module__": __name__, "__qualname__": name,
      "MODULE": module})


KNeighborsClassifier = _plain("KNeighborsClassifier", "knn",
                              "Exact, blocked k-nearest neighbours")
GaussianNB = _plain("GaussianNB", "gaussian_nb", "Gaussian naive Bayes")
BernoulliNB = _plain("BernoulliNB", "bernoulli_nb", "Bernoulli naive Bayes")
MultinomialNB = _plain("MultinomialNB", "multinomial_nb", "Multinomial naive Bayes")
CategoricalNB = _plain("CategoricalNB", "categorical_nb", "Categorical naive Bayes")
LinearDiscriminantAnalysis = _plain("LinearDiscriminantAnalysis", "lda",
                                    "LDA: Gaussian classes with one shared covariance")
QuadraticDiscriminantAnalysis = _plain("QuadraticDiscriminantAnalysis", "qda",
                                       "QDA: Gaussian classes, a covariance each")


ESTIMATORS = {
    "logistic": LogisticRegression,
    "linear_svm": LinearSVC,
    "kernel_svm": KernelSVC,
    "knn": KNeighborsClassifier,
    "gaussian_nb": GaussianNB,
    "bernoulli_nb": BernoulliNB,
    "multinomial_nb": MultinomialNB,
    "categorical_nb": CategoricalNB,
    "lda": LinearDiscriminantAnalysis,
    "qda": QuadraticDiscriminantAnalysis,
}


def make(name: str, **hyperparameters) -> ClassicalClassifier:
  """The estimator registered as `name`, with hyper-parameters."""
  if name not in ESTIMATORS:
    raise ValueError(f"unknown model {name!r}; expected one of {sorted(ESTIMATORS)}")
  return ESTIMATORS[name](**hyperparameters)
