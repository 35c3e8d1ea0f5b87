"""Naive Bayes fit and predict throughput on MNIST (60k training, 10k test images).

  python experiments/benchmark.py --model=naive_bayes_mnist --json

Gaussian and Bernoulli NB: the closed-form fit on the whole training split and the
prediction of the whole test split, in examples/s. Bernoulli NB is one matmul each way
(class one-hots against pixels to fit, pixels against log-odds to predict): its GFLOP/s is
given as a fraction of the float32 matmul peak measured in the same process. Gaussian NB's
prediction is elementwise ((x - mean)^2 / var summed over pixels, kept out of matmul form
for its precision), so its FLOPs are counted but it has no matmul to compare with.

With --peers: fit on the training split and predict the test split, against scikit-learn's
GaussianNB, BernoulliNB, LinearDiscriminantAnalysis and QuadraticDiscriminantAnalysis (their
defaults but QDA's reg_param), alternating runs; each genjax run starts from cleared
in-process caches, so it pays its compilation. Both sides' test accuracies are reported.
genjax's LDA shrinks its covariance (1e-3 of trace / D, its default), its QDA adds 0.01 to
the class covariances' diagonals (GENJAX_SETTINGS); scikit-learn's LDA (solver "svd") uses a
pseudo-inverse and its QDA reg_param 0.01 (PEER_SETTINGS).

Then genjax alone again with the persistent compilation cache
(genjax.compilation_cache) in a fresh temporary directory: its first run compiles
and writes the cache ("cold_cache_seconds"), the next ones, from cleared in-process caches,
load the programs from disk ("warm_cache_seconds", the median; "warm_cache_ratio" is it over
the peer's median).
"""


import numpy as np

from benchmarks import _peers
from benchmarks.classical import _mnist as mnist_with_test_labels


def _mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Training pixels in [0, 1] [60000, 784], labels, test pixels [10000, 784]."""
  x_tr, y_tr, x_te, _ = mnist_with_test_labels()
  return x_tr, y_tr, x_te


# model: (genjax module, scikit-learn module, class)
PEERS = {"gaussian_nb": ("gaussian_nb", "sklearn.naive_bayes", "GaussianNB"),
         "bernoulli_nb": ("bernoulli_nb", "sklearn.naive_bayes", "BernoulliNB"),
         "lda": ("lda", "sklearn.discriminant_analysis", "LinearDiscriminantAnalysis"),
         "qda": ("qda", "sklearn.discriminant_analysis", "QuadraticDiscriminantAnalysis")}

# QDA without regularisation fails on MNIST (singular class covariances): reg_param 0.01, the
# number of genjax's shrinkage (scikit-learn adds it to the scaled variances, genjax shrinks
# towards trace / D).
PEER_SETTINGS = {"qda": {"reg_param": 1e-2}}
# genjax's QDA as scikit-learn's: no shrinkage, 0.01 added to every class's diagonal (where
# scikit-learn's gives (1 - 0.01) Sigma + 0.01 I).
GENJAX_SETTINGS = {"qda": {"shrinkage": 0.0, "ridge": 1e-2}}


def _side_by_side(x_tr, y_tr, x_te, y_te, repeats: int) -> dict:
  """Fit + predict, compilation included, of each model of PEERS against scikit-learn's."""
  import importlib
  import warnings

  import jax

  out = {}
  for name, (module, peer_module, peer_class) in PEERS.items():
    core = importlib.import_module(f"genjax.classical.{module}")
    peer = _peers.load(peer_module)

    def genjax_run(core=core, name=name):
      jax.clear_caches()  # each run pays its compilation
      predicted = core.predict(core.fit(x_tr, y_tr, 10, **GENJAX_SETTINGS.get(name, {})), x_te)
      return {"test_accuracy": float(np.mean(np.asarray(predicted) == y_te))}

    def peer_run(peer=peer, peer_class=peer_class, name=name):
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QDA's collinear variables
        clf = getattr(peer, peer_class)(**PEER_SETTINGS.get(name, {})).fit(x_tr, y_tr)
        return {"test_accuracy": float(np.mean(clf.predict(x_te) == y_te))}

    out[name] = _peers.side_by_side(genjax_run, peer_run if peer else None,
                                    f"scikit-learn {peer_class}", repeats)
    out[name]["genjax_settings"] = GENJAX_SETTINGS.get(name, {})
  _with_cache(out, x_tr, y_tr, x_te, max(repeats, 2))
  return out


def _with_cache(out: dict, x_tr, y_tr, x_te, runs: int) -> None:
  """genjax's runs with the persistent compilation cache in a new directory: cold, then warm."""
  import importlib
  import statistics
  import tempfile
  import time

  import jax

  from genjax import compilation_cache

  with tempfile.TemporaryDirectory() as tmp:
    compilation_cache.enable(tmp)
    for name, (module, _, _) in PEERS.items():
      core = importlib.import_module(f"genjax.classical.{module}")
      seconds = []
      for _ in range(runs):
        jax.clear_caches()
        start = time.perf_counter()
        fit = core.fit(x_tr, y_tr, 10, **GENJAX_SETTINGS.get(name, {}))
        np.asarray(core.predict(fit, x_te))
        seconds.append(time.perf_counter() - start)
      warm = statistics.median(seconds[1:])
      out[name].update({"cold_cache_seconds": seconds[0], "warm_cache_seconds": warm,
                        "warm_cache_seconds_each": seconds[1:]})
      if "seconds" in out[name]["peer"]:
        out[name]["warm_cache_ratio"] = warm / out[name]["peer"]["seconds"]
    compilation_cache.disable()  # before the directory goes


def naive_bayes_mnist(windows: int, window_seconds: float, peak_size: int, peers: bool = False,
                      repeats: int = 3) -> dict:
  """Fit and predict throughput of Gaussian and Bernoulli NB on MNIST."""
  import jax
  import jax.numpy as jnp

  from genjax import timing
  from genjax.classical import bernoulli_nb, gaussian_nb

  if peers:  # first, before this process has compiled anything of the models
    side_by_side = _side_by_side(*mnist_with_test_labels(), repeats)
  x_tr, y_tr, x_te = (jnp.asarray(a) for a in _mnist())
  n, d = x_tr.shape
  t, c = x_te.shape[0], 10
  g_params = gaussian_nb.fit(x_tr, y_tr, c)
  b_params = bernoulli_nb.fit(x_tr, y_tr, c)
  fns = {"gaussian_fit": lambda: gaussian_nb.fit(x_tr, y_tr, c),
         "gaussian_predict": lambda: gaussian_nb.predict(g_params, x_te),
         "bernoulli_fit": lambda: bernoulli_nb.fit(x_tr, y_tr, c),
         "bernoulli_predict": lambda: bernoulli_nb.predict(b_params, x_te),
         "peak": timing.matmul_fn(peak_size)}
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  # Matmul FLOPs: 2 N C D for the fit's class sums, 2 T D C for the prediction's scores.
  flops = {"bernoulli_fit": 2 * n * c * d, "bernoulli_predict": 2 * t * d * c,
           # Fit: sums and centred squares (two matmuls of 2 N C D, plus elementwise work);
           # predict: subtract, square, scale, add for every (row, class, pixel).
           "gaussian_fit": 4 * n * c * d, "gaussian_predict": 4 * t * c * d}
  rows = {"gaussian_fit": n, "gaussian_predict": t, "bernoulli_fit": n, "bernoulli_predict": t}
  out = {"backend": jax.default_backend(), "num_train": n, "num_test": t,
         "matmul_peak_gflops_per_sec": peak}
  for name, rows_n in rows.items():
    s = seconds[name]
    out[f"{name}_seconds"] = s
    out[f"{name}_examples_per_sec"] = rows_n / s
    out[f"{name}_gflops_per_sec"] = flops[name] / s / 1e9
    if name.startswith("bernoulli"):
      out[f"{name}_fraction_of_peak"] = flops[name] / s / 1e9 / peak
  if peers:
    out["peers"] = side_by_side
  return out


TASKS = {"naive_bayes_mnist": naive_bayes_mnist}
