"""Discriminative classical models on MNIST: exact kNN prediction and logistic-regression L-BFGS.

  python experiments/benchmark.py --model=knn_mnist --json
  python experiments/benchmark.py --model=logreg_lbfgs_mnist --json

knn_mnist: k = 3, L2, the full test split (10k) against the full training split (60k) in
[test_block, train_block] distance tiles. Timed in windows interleaved with the in-process
float32 matmul peak: one test block of the kNN (tiles, top-k and merges) and the same tiled
distance computation alone (its tiles reduced by a row minimum instead of the top-k, so the
matmul is not dead code). FLOPs are the distance matmul's, 2 T N D. The whole test split is
then predicted once (compilation included) for its accuracy and wall time; memory stays at
a tile plus the data (max RSS reported).

logreg_lbfgs_mnist: multinomial logistic regression (l2 = 1e-4, pixels in [0, 1]) fitted by
L-BFGS to its gradient tolerance on the 60k training images: seconds after compilation,
iterations, final gradient norm, test accuracy. Each iteration evaluates the objective and
gradient at least once (two [N, D] x [D, C] products); the line search may add more, so
the GFLOP/s from that count is a lower bound.

With --peers (scikit-learn, alternating runs, compilation included in every genjax run: each
starts from cleared in-process caches):
- knn_mnist: genjax fit + predict of the test split against
  KNeighborsClassifier(k, algorithm="brute"), both test accuracies;
- logreg_lbfgs_mnist: scikit-learn's objective, LogisticRegression(C=1, solver="lbfgs")
  (multinomial, bias unpenalised; l2 = 1 / (C N) here) against genjax's fit with
  `peer_tol`; both final objectives by the same float64 function, both test accuracies.
"""

import os
import resource
import time

import numpy as np

from benchmarks import _peers

IDX_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                       "data", "mnist")


def _mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Pixels in [0, 1]: training [60000, 784], labels, test [10000, 784], labels (raw IDX files
  where $GENJAX_MNIST_IDX or ../shared/data/mnist holds them, else TFDS)."""
  from genjax.data.images import load_arrays
  idx_dir = os.environ.get("GENJAX_MNIST_IDX", IDX_DIR)
  kw = {"idx_dir": idx_dir} if os.path.isdir(idx_dir) else {}
  train, test = load_arrays("mnist", "train", **kw), load_arrays("mnist", "test", **kw)
  flat = lambda a: a.images.reshape(len(a.images), -1).astype(np.float32) / 255.0
  return flat(train), train.labels, flat(test), test.labels


def _max_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def knn_mnist(windows: int, window_seconds: float, peak_size: int, k: int = 3,
              train_block: int = 8192, test_block: int = 1024, peers: bool = False,
              repeats: int = 3) -> dict:
  """kNN on MNIST: distance FLOP rate against the matmul peak, and the full prediction."""
  import jax
  import jax.numpy as jnp

  from genjax import timing
  from genjax.classical import knn

  x_tr, y_tr, x_te, y_te = _mnist()
  n, d = x_tr.shape
  params = knn.fit(x_tr, y_tr, 10, k=k, train_block=train_block, test_block=test_block)
  block = jnp.asarray(x_te[:test_block])

  @jax.jit
  def distances_only(params, q_BxD):
    def tile(carry, blk):
      x_TxD, offset_T = blk
      return jnp.minimum(carry, jnp.min(knn._tile_distances(params, q_BxD, x_TxD, offset_T),
                                        -1)), None
    out, _ = jax.lax.scan(tile, jnp.full(q_BxD.shape[0], jnp.inf), (params.x_blocks,
                                                                     params.offsets))
    return out

  fns = {"knn_block": lambda: knn.neighbours(params, block),
         "distances_block": lambda: distances_only(params, block),
         "peak": timing.matmul_fn(peak_size)}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  block_flops = 2 * test_block * n * d
  t = time.perf_counter()
  predicted = np.asarray(knn.predict(params, x_te))
  full_seconds = time.perf_counter() - t
  tile = params.x_blocks.shape[1]
  out = {
      "backend": jax.default_backend(), "k": k, "num_train": n, "num_test": len(x_te),
      "train_block": tile, "test_block": test_block,
      "tile_megabytes": test_block * tile * 4 / 2**20,
      "matmul_peak_gflops_per_sec": peak,
      "distance_gflops_per_sec": block_flops / seconds["distances_block"] / 1e9,
      "fraction_of_peak": block_flops / seconds["distances_block"] / 1e9 / peak,
      "knn_gflops_per_sec": block_flops / seconds["knn_block"] / 1e9,
      "fraction_of_peak_with_top_k": block_flops / seconds["knn_block"] / 1e9 / peak,
      "full_predict_seconds_with_compile": full_seconds,
      "full_predict_seconds_estimated": seconds["knn_block"] * len(x_te) / test_block,
      "test_accuracy": float(np.mean(predicted == y_te)),
      "max_rss_megabytes": _max_rss_mb(),
  }
  if not peers:
    return out
  neighbors = _peers.load("sklearn.neighbors")

  def genjax_run():
    jax.clear_caches()  # each run pays its compilation
    p = knn.fit(x_tr, y_tr, 10, k=k, train_block=train_block, test_block=test_block)
    return {"test_accuracy": float(np.mean(np.asarray(knn.predict(p, x_te)) == y_te))}

  def peer_run():
    clf = neighbors.KNeighborsClassifier(k, algorithm="brute").fit(x_tr, y_tr)
    return {"test_accuracy": float(np.mean(clf.predict(x_te) == y_te))}

  out["peers"] = _peers.side_by_side(genjax_run, peer_run if neighbors else None,
                                     "scikit-learn KNeighborsClassifier(brute)", repeats)
  return out


def logreg_objective(w_DxC: np.ndarray, b_C: np.ndarray, x_NxD: np.ndarray, y_N: np.ndarray,
                     l2: float) -> float:
  """Mean cross-entropy plus l2 / 2 |W|^2 (bias unpenalised), in float64."""
  w = np.asarray(w_DxC, np.float64)
  s_NxC = x_NxD.astype(np.float64) @ w + np.asarray(b_C, np.float64)
  top_N = s_NxC.max(-1)
  lse_N = top_N + np.log(np.sum(np.exp(s_NxC - top_N[:, None]), -1))
  nll = lse_N - s_NxC[np.arange(len(y_N)), y_N]
  return float(np.mean(nll) + 0.5 * l2 * np.sum(w**2))


def logreg_lbfgs_mnist(windows: int, window_seconds: float, peak_size: int,
                       l2: float = 1e-4, peers: bool = False, repeats: int = 3,
                       peer_tol: float = 2e-3) -> dict:
  """Logistic regression L-BFGS fit to convergence on MNIST: seconds and iterations."""
  import jax
  import jax.numpy as jnp

  from genjax import timing
  from genjax.classical import logistic

  x_tr, y_tr, x_te, y_te = (jnp.asarray(a) for a in _mnist())
  n, d = x_tr.shape
  t = time.perf_counter()
  jax.block_until_ready(logistic.fit(x_tr, y_tr, 10, l2=l2))
  first = time.perf_counter() - t
  t = time.perf_counter()
  params = jax.block_until_ready(logistic.fit(x_tr, y_tr, 10, l2=l2))
  fit_seconds = time.perf_counter() - t
  peak_s = timing.time_interleaved({"peak": timing.matmul_fn(peak_size)}, windows,
                                   window_seconds)["peak"]
  peak = 2 * peak_size**3 / peak_s / 1e9
  iterations = int(params["num_iterations"])
  flops = iterations * 2 * (2 * n * d * 10)
  out = {
      "backend": jax.default_backend(), "num_train": n, "l2": l2,
      "fit_seconds": fit_seconds, "compile_seconds": max(first - fit_seconds, 0.0),
      "iterations": iterations, "seconds_per_iteration": fit_seconds / max(iterations, 1),
      "grad_norm": float(params["grad_norm"]), "tolerance": logistic.HYPERPARAMETERS["tol"],
      "loss": float(params["loss"]),
      "test_accuracy": float(jnp.mean(logistic.predict(params, x_te) == y_te)),
      "matmul_peak_gflops_per_sec": peak,
      "gflops_per_sec_lower_bound": flops / fit_seconds / 1e9,
      "fraction_of_peak_lower_bound": flops / fit_seconds / 1e9 / peak,
  }
  if peers:
    out["peers"] = _logreg_side_by_side(*(np.asarray(a) for a in (x_tr, y_tr, x_te, y_te)),
                                        peer_tol, repeats)
  return out


def _logreg_side_by_side(x_tr, y_tr, x_te, y_te, tol: float, repeats: int) -> dict:
  """LogisticRegression(C=1, lbfgs) against genjax's fit of the same objective."""
  import jax

  from genjax.classical import logistic

  linear_model = _peers.load("sklearn.linear_model")
  l2 = 1.0 / len(x_tr)  # C = 1

  def quality(w, b, **more):
    return {"objective_float64": logreg_objective(w, b, x_tr, y_tr, l2),
            "test_accuracy": float(np.mean(np.argmax(x_te @ w + b, 1) == y_te)), **more}

  def genjax_run():
    jax.clear_caches()  # each run pays its compilation
    p = jax.block_until_ready(logistic.fit(x_tr, y_tr, 10, l2=l2, tol=tol))
    return quality(np.asarray(p["w"]), np.asarray(p["b"]),
                   iterations=int(p["num_iterations"]), grad_norm=float(p["grad_norm"]))

  def peer_run():
    clf = linear_model.LogisticRegression(C=1.0, solver="lbfgs").fit(x_tr, y_tr)
    return quality(clf.coef_.T, clf.intercept_, iterations=int(np.max(clf.n_iter_)))

  out = _peers.side_by_side(genjax_run, peer_run if linear_model else None,
                            "scikit-learn LogisticRegression(lbfgs)", repeats)
  out.update({"C": 1.0, "l2": l2, "tol": tol})
  return out


TASKS = {"knn_mnist": knn_mnist, "logreg_lbfgs_mnist": logreg_lbfgs_mnist}
