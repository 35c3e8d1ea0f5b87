"""Linear SVM on MNIST against scikit-learn's LinearSVC (liblinear), compilation included.

  python experiments/benchmark.py --model=linear_svm_mnist --peers --repeats=1 --json

One-vs-rest squared hinge and Crammer-Singer, C = 1 / (l2 N) with l2 = 1e-4 (C = 1/6 on the
60k training images, pixels in [0, 1]). genjax: `svm.fit` with `penalize_bias=True`, liblinear's
objective (its bias is the weight of a constant feature 1, penalised), by preconditioned
L-BFGS; each run starts from cleared in-process caches, so it pays its compilation. The peer:
LinearSVC(C, loss="squared_hinge", multi_class=...). liblinear's Crammer-Singer is the plain
hinge (its `loss` is ignored there); genjax's is the squared hinge, smooth for L-BFGS: the two
are compared on test accuracy. For one-vs-rest, both sides' objectives are also computed by
the same float64 function (liblinear's, divided by C N).
"""

import numpy as np

from benchmarks import _peers
from benchmarks.classical import _mnist

L2 = 1e-4


def ovr_objective(w_DxC: np.ndarray, b_C: np.ndarray, x_NxD: np.ndarray, y_N: np.ndarray,
                  l2: float) -> float:
  """Mean over rows of sum_c max(0, 1 - t_c s_c)^2 plus l2 / 2 (|W|^2 + |b|^2), float64."""
  w, b = np.asarray(w_DxC, np.float64), np.asarray(b_C, np.float64)
  s_NxC = x_NxD.astype(np.float64) @ w + b
  t_NxC = np.where(np.eye(w.shape[1], dtype=bool)[y_N], 1.0, -1.0)
  hinge = np.maximum(1.0 - t_NxC * s_NxC, 0.0)
  return float(np.mean(np.sum(hinge**2, -1)) + 0.5 * l2 * (np.sum(w**2) + np.sum(b**2)))


def linear_svm_mnist(windows: int, window_seconds: float, peak_size: int, peers: bool = False,
                     repeats: int = 1, tol: float = 1e-4) -> dict:
  """Wall seconds of the fit (and test accuracy) of both sides, for both multiclass rules."""
  del windows, window_seconds, peak_size
  import jax

  from genjax.classical import svm

  x_tr, y_tr, x_te, y_te = _mnist()
  n = len(x_tr)
  c = 1.0 / (L2 * n)
  sklearn_svm = _peers.load("sklearn.svm") if peers else None
  out = {"backend": jax.default_backend(), "num_train": n, "l2": L2, "C": c, "tol": tol}
  for multi_class in ("ovr", "crammer_singer"):

    def genjax_run(multi_class=multi_class):
      jax.clear_caches()  # each run pays its compilation
      p = jax.block_until_ready(svm.fit(x_tr, y_tr, 10, l2=L2, multi_class=multi_class,
                                        tol=tol, penalize_bias=True))
      w, b = np.asarray(p.w), np.asarray(p.b)
      result = {"test_accuracy": float(np.mean(np.argmax(x_te @ w + b, 1) == y_te)),
                "iterations": int(p.num_iterations), "loss": float(p.loss),
                "grad_norm": float(p.grad_norm)}
      if multi_class == "ovr":
        result["objective_float64"] = ovr_objective(w, b, x_tr, y_tr, L2)
      return result

    def peer_run(multi_class=multi_class):
      clf = sklearn_svm.LinearSVC(C=c, loss="squared_hinge", multi_class=multi_class)
      clf.fit(x_tr, y_tr)
      result = {"test_accuracy": float(clf.score(x_te, y_te)),
                "iterations": int(np.max(clf.n_iter_))}
      if multi_class == "ovr":
        result["objective_float64"] = ovr_objective(clf.coef_.T, clf.intercept_, x_tr, y_tr, L2)
      return result

    out[multi_class] = _peers.side_by_side(genjax_run, peer_run if sklearn_svm else None,
                                           "scikit-learn LinearSVC", repeats)
  return out


TASKS = {"linear_svm_mnist": linear_svm_mnist}
