"""Ng & Jordan (2001) on discriminative vs generative classifiers: learning curves of naive
Bayes and Gaussian discriminant analysis (LDA) against logistic regression.

  python experiments/ng_jordan.py --workdir=runs/ng_jordan --idx_dir='../shared/data/{dataset}'

For every dataset and training-set size m, `--splits` random training sets are drawn and
the three models fitted on each; the splits run as one vmapped program (the closed-form
fits and the L-BFGS fits alike), compiled once per dataset: every size divides the largest,
and a training set of m rows is tiled to the largest size (see `make_errors_fn`). Test
error is averaged over the splits, with the standard error of the mean as the error bar.
Datasets: the UCI sets bundled with scikit-learn
(test = the rows not drawn for training; features standardised with the training rows'
statistics; Gaussian NB) and image pairs from MNIST and Fashion-MNIST (train pool = the
pair's training images, test = the pair's test images; pixels binarised at 0.5 for all
three models; Bernoulli NB), read from raw IDX files (`--idx_dir`, a config's data.idx_dir with
`{dataset}` standing for mnist or fashion_mnist; empty: TFDS, TFDS_DATA_DIR). Logistic
regression is genjax.classical.logistic with l2 = 1 / m (scikit-learn's default C = 1); LDA
shrinks its covariance by --lda_shrinkage.

Writes <workdir>/<dataset>.png, summary.png, results.json (every curve, per-split errors,
crossings) and crossings.md: where each generative curve crosses logistic regression's, and
whether the dataset shows the paper's two regimes (the generative model better at the
smallest m, logistic regression better at the largest, both by more than two standard
errors of the paired difference). Running again with the same settings reads the datasets
that results.json holds back instead of fitting them again.
"""

import os
import time

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

UCI = ("breast_cancer", "wine", "iris", "digits")
# name -> (image dataset, class a, class b); labels: 0 for a, 1 for b.
IMAGE_PAIRS = {
    "mnist_3v5": ("mnist", 3, 5),
    "mnist_4v9": ("mnist", 4, 9),
    "fashion_shirt_v_tshirt": ("fashion_mnist", 6, 0),
    "fashion_pullover_v_coat": ("fashion_mnist", 2, 4),
}
DATASETS = (*UCI, *IMAGE_PAIRS)
PAIRS = (("nb", "lr"), ("gda", "lr"))
LABELS = {"nb": "naive Bayes", "gda": "GDA (LDA)", "lr": "logistic regression"}

flags.DEFINE_list("datasets", list(DATASETS), f"Any of {', '.join(DATASETS)}.")
flags.DEFINE_string("workdir", "runs/ng_jordan", "Where figures and tables go.")
flags.DEFINE_string("idx_dir", "../shared/data/{dataset}", "Raw IDX files of an image dataset, "
                    "{dataset} its name; empty: read the image datasets through TFDS.")
flags.DEFINE_integer("splits", 20, "Random training sets per size.")
flags.DEFINE_integer("num_sizes", 10, "Training-set sizes per dataset (geometric grid).")
flags.DEFINE_integer("max_train_images", 4000, "Largest training set of the image pairs.")
flags.DEFINE_float("uci_train_fraction", 0.75, "Largest training share of a UCI set.")
flags.DEFINE_float("lda_shrinkage", 0.05, "LDA covariance shrinkage (genjax.classical.gda).")
flags.DEFINE_float("lr_c", 1.0, "Logistic regression: l2 = 1 / (lr_c * m).")
flags.DEFINE_integer("lr_max_iter", 1000, "Logistic regression: L-BFGS iteration cap (the "
                     "iterations used are in results.json, lr_max_iterations).")
flags.DEFINE_integer("seed", 0, "Seed of the random splits.")
flags.DEFINE_bool("from_results", False, "Fit nothing: recompute the crossings, tables and "
                  "figures from <workdir>/results.json.")
FLAGS = flags.FLAGS
RENAMED = {"outdir": "--workdir", "data_dir": "--idx_dir=FOLDER/{dataset}",
           "data_root": "--idx_dir=FOLDER/{dataset}"}


def load_dataset(name: str, idx_dir: str) -> dict:
  """{"x", "y", "num_classes", "x_test", "y_test" (image pairs only), "kind"}; kind is
  "continuous" (UCI: Gaussian NB, standardised) or "binary" (images: Bernoulli NB). An image
  pair is read from `idx_dir` with {dataset} replaced by its dataset (empty: TFDS)."""
  from genjax.data import tabular
  if name in UCI:
    d = tabular.load(name)
    return {"x": d.x, "y": d.y, "num_classes": d.num_classes, "kind": "continuous"}
  from genjax.data.images import load_arrays
  source, a, b = IMAGE_PAIRS[name]
  idx_dir = idx_dir.format(dataset=source) if idx_dir else None
  out = {"num_classes": 2, "kind": "binary"}
  for split, suffix in (("train", ""), ("test", "_test")):
    arrays = load_arrays(source, split, idx_dir=idx_dir)
    pair = tabular.image_pair(arrays.images, arrays.labels, a, b, name)
    out["x" + suffix] = (pair.x > 0.5).astype(np.float32)
    out["y" + suffix] = pair.y
  return out


def training_sizes(data: dict, num_sizes: int, max_train_images: int,
                   uci_train_fraction: float) -> list[int]:
  """About `num_sizes` training-set sizes, geometric from a few rows per class to the largest,
  all dividing the largest (so that every size runs in one compiled program, see
  `run_dataset`): the largest is the number in [0.75 hi, hi] whose divisors best match the
  geometric grid."""
  n, c = len(data["y"]), data["num_classes"]
  hi = min(n, max_train_images) if "x_test" in data else int(uci_train_fraction * n)
  lo = max(2 * c, 6)
  best = None
  for top in range(max(lo, int(0.75 * hi)), hi + 1):
    divisors = np.array([d for d in range(lo, top + 1) if top % d == 0], np.float64)
    grid = np.geomspace(lo, top, num_sizes)
    pick = divisors[np.abs(np.log(divisors)[None] - np.log(grid)[:, None]).argmin(1)]
    cost = np.abs(np.log(pick) - np.log(grid)).sum() - 0.01 * np.log(top)
    if best is None or cost < best[0]:
      best = (cost, sorted({int(m) for m in pick}))
  return best[1]


def split_indices(y: np.ndarray, num_classes: int, m: int, splits: int, seed: int,
                  with_test: bool) -> tuple[np.ndarray, np.ndarray | None]:
  """Training rows [S, m] of `splits` random splits (one row of every class first, so that
  each class is seen), and the remaining rows [S, N - m] as their test sets if `with_test`."""
  train, test = [], []
  for s in range(splits):
    rng = np.random.default_rng([seed, m, s])
    order = rng.permutation(len(y))
    firsts = np.array([order[y[order] == c][0] for c in range(num_classes)])
    order = np.concatenate([firsts, order[~np.isin(order, firsts)]])
    train.append(np.sort(order[:m]))
    test.append(np.sort(order[m:]))
  return np.stack(train), (np.stack(test) if with_test else None)


def make_errors_fn(num_classes: int, kind: str, lda_shrinkage: float, lr_c: float,
                   shared_test: bool, lr_max_iter: int = 1000):
  """A jitted function of one training-set size's splits -> test errors {"nb", "gda", "lr"}
  [S] and L-BFGS iterations [S].

  Its arguments: training rows x [S, M, D] and labels [S, M], each split's m rows tiled M / m
  times; m (traced, so all sizes share one program); test rows [S, T, D], labels [S, T] and
  weights [S, T] (0 for padding), or one shared test set [T, D], [T], [T]. Tiling leaves
  logistic regression's objective, a mean over rows, unchanged; the closed-form fits see
  only the first m rows (the others get label C, whose one-hot row is zero, and zero
  features, so they add to no statistic).
  """
  import jax
  import jax.numpy as jnp

  from genjax.classical import bernoulli_nb, gaussian_nb, lda, logistic

  def one_split(x_tr, y_tr, m, x_te, y_te, w_te):
    first_M = (jnp.arange(x_tr.shape[0]) < m)[:, None]
    if kind == "continuous":
      # Standardise with the training rows only; a constant feature keeps scale 1.
      mu = jnp.sum(jnp.where(first_M, x_tr, 0.0), 0) / m
      sd = jnp.sqrt(jnp.sum(jnp.where(first_M, jnp.square(x_tr - mu), 0.0), 0) / m)
      sd = jnp.where(sd > 0, sd, 1.0)
      x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    x_gen = jnp.where(first_M, x_tr, 0.0)
    y_gen = jnp.where(first_M[:, 0], y_tr, num_classes)
    if kind == "continuous":
      nb_pred = gaussian_nb.predict(gaussian_nb.fit(x_gen, y_gen, num_classes), x_te)
    else:
      nb_params = bernoulli_nb.fit(x_gen, y_gen, num_classes, binarize=None)
      nb_pred = bernoulli_nb.predict(nb_params, x_te)
    gda_pred = lda.predict(lda.fit(x_gen, y_gen, num_classes, shrinkage=lda_shrinkage), x_te)
    lr_params = logistic.fit(x_tr, y_tr, num_classes, l2=1.0 / (lr_c * m),
                             max_iter=lr_max_iter)
    lr_pred = logistic.predict(lr_params, x_te)
    err = lambda pred: jnp.sum(w_te * (pred != y_te)) / jnp.sum(w_te)
    return {"nb": err(nb_pred), "gda": err(gda_pred), "lr": err(lr_pred),
            "lr_iterations": lr_params["num_iterations"]}

  axes = (0, 0, None, None, None, None) if shared_test else (0, 0, None, 0, 0, 0)
  return jax.jit(jax.vmap(one_split, in_axes=axes))


def run_dataset(name: str, data: dict, sizes: list[int], splits: int, seed: int,
                lda_shrinkage: float, lr_c: float, lr_max_iter: int = 1000) -> dict:
  """Learning curves of one dataset: per model, sizes -> mean, standard error, per split."""
  shared_test = "x_test" in data
  fn = make_errors_fn(data["num_classes"], data["kind"], lda_shrinkage, lr_c, shared_test,
                      lr_max_iter)
  x, y = data["x"], data["y"]
  top = sizes[-1]
  per_split = {k: [] for k in ("nb", "gda", "lr")}
  iterations = []
  for m in sizes:
    tr, te = split_indices(y, data["num_classes"], m, splits, seed, not shared_test)
    tr = np.tile(tr, (1, top // m))
    if shared_test:
      test = (data["x_test"], data["y_test"], np.ones(len(data["y_test"]), np.float32))
    else:
      # Pad every size's test rows to the smallest size's count (weight 0), one shape for all.
      width = len(y) - sizes[0]
      te_pad = np.concatenate([te, np.repeat(te[:, :1], width - te.shape[1], 1)], 1)
      w = (np.arange(width) < te.shape[1]).astype(np.float32)
      test = (x[te_pad], y[te_pad], np.broadcast_to(w, te_pad.shape))
    out = fn(x[tr], y[tr], np.float32(m), *test)
    for k in per_split:
      per_split[k].append(np.asarray(out[k], np.float64))
    iterations.append(int(np.max(out["lr_iterations"])))
  curves = {}
  for k, errs in per_split.items():
    e_MxS = np.stack(errs)
    curves[k] = {"mean": e_MxS.mean(1).tolist(),
                 "sem": (e_MxS.std(1, ddof=1) / np.sqrt(splits)).tolist(),
                 "per_split": e_MxS.tolist()}
  return {"sizes": sizes, "splits": splits, "num_test": int(len(data["y_test"]) if shared_test
                                                            else len(y) - sizes[-1]),
          "kind": data["kind"], "curves": curves, "lr_max_iterations": iterations}


def crossing(sizes: list[int], gen_MxS: np.ndarray, lr_MxS: np.ndarray) -> dict:
  """Where logistic regression's mean error first drops below the generative model's for
  good (interpolated in log m), and the two regimes' test at the ends of the curve.

  The paired difference d = err_lr - err_gen (same splits) has mean d_m and standard error
  se_m; a model leads at m where |d_m| > 2 se_m, else it is a tie. Returns {"crossing_m"
  (None: no crossing), "generative_better_small_m", "lr_better_large_m", "two_regimes",
  "verdict" ("two regimes", or who leads at the smallest and at the largest m), ...}.
  """
  d_MxS = np.asarray(lr_MxS, np.float64) - np.asarray(gen_MxS, np.float64)
  d = d_MxS.mean(1)
  se = d_MxS.std(1, ddof=1) / np.sqrt(d_MxS.shape[1])
  cross = None
  # The last sign change from "generative ahead" (d > 0) to "LR ahead" (d <= 0): curves that
  # wobble across each other at small m count only by their final crossing.
  for i in range(len(d) - 1, 0, -1):
    if d[i] <= 0 < d[i - 1]:
      lm0, lm1 = np.log(sizes[i - 1]), np.log(sizes[i])
      cross = float(np.exp(lm0 + (lm1 - lm0) * d[i - 1] / (d[i - 1] - d[i])))
      break
    if d[i] > 0:
      break
  def leader(i):
    return "generative" if d[i] > 2 * se[i] else "LR" if -d[i] > 2 * se[i] else "tie"

  small, large = leader(0), leader(-1)
  gen_small, lr_large = small == "generative", large == "LR"
  verdict = ("two regimes" if gen_small and lr_large else
             f"small m: {small}; large m: {large}")
  return {"crossing_m": cross, "generative_better_small_m": gen_small,
          "lr_better_large_m": lr_large, "two_regimes": gen_small and lr_large,
          "diff_small_m": float(d[0]), "se_small_m": float(se[0]),
          "diff_large_m": float(d[-1]), "se_large_m": float(se[-1]), "verdict": verdict}


def _plot_pair(ax, result: dict, gen: str, title: str) -> None:
  sizes = result["sizes"]
  for k, color in ((gen, "tab:blue"), ("lr", "tab:red")):
    mean = np.array(result["curves"][k]["mean"])
    sem = np.array(result["curves"][k]["sem"])
    ax.plot(sizes, mean, "o-", ms=3, color=color, label=LABELS[k])
    ax.fill_between(sizes, mean - sem, mean + sem, color=color, alpha=0.25)
  cross = result["crossings"][f"{gen}_vs_lr"]["crossing_m"]
  if cross is not None:
    ax.axvline(cross, color="grey", ls=":", lw=1)
  ax.set_xscale("log")
  ax.set_title(title, fontsize=9)
  ax.set_xlabel("training-set size m")
  ax.set_ylabel("test error")
  ax.legend(fontsize=7)


def plot_dataset(path: str, name: str, result: dict) -> None:
  """Two panels: naive Bayes vs LR and GDA vs LR, mean test error with +-1 SEM bands."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
  for ax, (gen, _) in zip(axes, PAIRS, strict=True):
    _plot_pair(ax, result, gen, f"{name}: {LABELS[gen]} vs LR ({result['splits']} splits)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_summary(path: str, results: dict) -> None:
  """One row per dataset, the two comparisons side by side."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  n = len(results)
  fig, axes = plt.subplots(n, 2, figsize=(9, 2.8 * n), squeeze=False)
  for row, (name, result) in zip(axes, results.items(), strict=True):
    for ax, (gen, _) in zip(row, PAIRS, strict=True):
      _plot_pair(ax, result, gen, f"{name}: {LABELS[gen]} vs LR")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def crossings_markdown(results: dict) -> str:
  """The crossing table: one row per dataset and comparison."""
  lines = ["| dataset | comparison | m range | error at smallest m (gen / LR) | "
           "error at largest m (gen / LR) | crossing m | verdict |",
           "|---|---|---|---|---|---|---|"]
  for name, r in results.items():
    for gen, _ in PAIRS:
      c = r["crossings"][f"{gen}_vs_lr"]
      g, lr = r["curves"][gen]["mean"], r["curves"]["lr"]["mean"]
      cross = "none" if c["crossing_m"] is None else f"{c['crossing_m']:.0f}"
      lines.append(f"| {name} | {LABELS[gen]} vs LR | {r['sizes'][0]}-{r['sizes'][-1]} | "
                   f"{g[0]:.3f} / {lr[0]:.3f} | {g[-1]:.3f} / {lr[-1]:.3f} | {cross} | "
                   f"{c['verdict']} |")
  return "\n".join(lines) + "\n"


def write_tables(outdir: str, results: dict, settings: dict) -> None:
  """results.json (settings and every dataset's curves) and crossings.md."""
  from genjax.writers import write_json
  write_json(os.path.join(outdir, "results.json"), {"settings": settings, "datasets": results})
  with open(os.path.join(outdir, "crossings.md"), "w") as f:
    f.write(crossings_markdown(results))


def finished_datasets(outdir: str, settings: dict) -> dict:
  """{dataset: its results} of <outdir>/results.json where it was written with `settings`
  (the list of datasets aside); {} where there is none or its settings differ."""
  import json
  path = os.path.join(outdir, "results.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    saved = json.load(f)

  def curves_settings(s: dict) -> dict:  # what changes a dataset's curves
    return {k: v for k, v in s.items() if k != "datasets"}

  same = curves_settings(saved["settings"]) == curves_settings(settings)
  return saved["datasets"] if same else {}


def run_study(datasets: list[str], outdir: str, idx_dir: str, splits: int, num_sizes: int,
              max_train_images: int, uci_train_fraction: float, lda_shrinkage: float,
              lr_c: float, seed: int, lr_max_iter: int = 1000) -> dict:
  """Run every dataset's curves and write the figures and tables; returns the results. A
  dataset that <outdir>/results.json holds from a study with the same settings is read back,
  not fitted again (an interrupted study resumes; a later one with more datasets adds them)."""
  unknown = [name for name in datasets if name not in DATASETS]
  if unknown:
    raise ValueError(f"--datasets: unknown {unknown}; expected some of {DATASETS}")
  os.makedirs(outdir, exist_ok=True)
  settings = {"datasets": datasets, "splits": splits, "num_sizes": num_sizes,
              "max_train_images": max_train_images, "uci_train_fraction": uci_train_fraction,
              "lda_shrinkage": lda_shrinkage, "lr_c": lr_c, "lr_max_iter": lr_max_iter,
              "seed": seed}
  finished = finished_datasets(outdir, settings)
  results = {}
  for name in datasets:
    if name in finished:
      results[name] = finished[name]
      print(f"{name}: read back from {os.path.join(outdir, 'results.json')}", flush=True)
      continue
    t = time.perf_counter()
    data = load_dataset(name, idx_dir)
    sizes = training_sizes(data, num_sizes, max_train_images, uci_train_fraction)
    r = run_dataset(name, data, sizes, splits, seed, lda_shrinkage, lr_c, lr_max_iter)
    r["crossings"] = {f"{gen}_vs_lr": crossing(sizes, np.array(r["curves"][gen]["per_split"]),
                                               np.array(r["curves"]["lr"]["per_split"]))
                      for gen, _ in PAIRS}
    r["seconds"] = time.perf_counter() - t
    results[name] = r
    plot_dataset(os.path.join(outdir, f"{name}.png"), name, r)
    # Written after every dataset, so that an interrupted study keeps what it finished.
    write_tables(outdir, results, settings)
    print(f"{name}: {r['seconds']:.0f}s, sizes {sizes[0]}..{sizes[-1]}; " + "; ".join(
        f"{gen} vs lr: {r['crossings'][f'{gen}_vs_lr']['verdict']}" for gen, _ in PAIRS),
          flush=True)
  write_tables(outdir, results, settings)
  plot_summary(os.path.join(outdir, "summary.png"), results)
  return results


def retabulate(outdir: str) -> dict:
  """Crossings, tables and figures again from a finished study's results.json."""
  import json
  with open(os.path.join(outdir, "results.json")) as f:
    saved = json.load(f)
  results = saved["datasets"]
  for name, r in results.items():
    r["crossings"] = {f"{gen}_vs_lr": crossing(r["sizes"],
                                               np.array(r["curves"][gen]["per_split"]),
                                               np.array(r["curves"]["lr"]["per_split"]))
                      for gen, _ in PAIRS}
    plot_dataset(os.path.join(outdir, f"{name}.png"), name, r)
  write_tables(outdir, results, saved["settings"])
  plot_summary(os.path.join(outdir, "summary.png"), results)
  return results


def main(argv):
  del argv
  if FLAGS.from_results:
    retabulate(FLAGS.workdir)
    return
  run_study(FLAGS.datasets, FLAGS.workdir, FLAGS.idx_dir, FLAGS.splits, FLAGS.num_sizes,
            FLAGS.max_train_images, FLAGS.uci_train_fraction, FLAGS.lda_shrinkage, FLAGS.lr_c,
            FLAGS.seed, FLAGS.lr_max_iter)


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED)
