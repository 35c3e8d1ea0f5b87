"""Ng & Jordan (2001) on discriminative vs generative classifiers: learning curves of naive
Bayes and Gaussian discriminant analysis (LDA) against logistic regression.

  python experiments/ng_jordan.py --workdir=runs/ng_jordan --idx_dir='../shared/data/{dataset}'

For every dataset and training-set size m, `--splits` random training sets are drawn and the
three models fitted on each. Each fit is an ordinary workdir of the classical fit family
(genjax.families.classical), trained by the generic loop from the models' configs in
experiments/configs: <workdir>/<dataset>/<model>/m<m>_s<seed>/, where split s of the study
runs with config seed --seed + s, which draws its training set (`data.train_size` = m, a seeded
subset of the training split) and, on a UCI set, the training split itself (`data.split_seed`).
A finished point is read back from its results.json, not fitted again, so an interrupted study
resumes and a later one with more datasets, sizes or splits adds only the new points; a point
whose workdir holds another config (another --lda_shrinkage, say) is refused before anything
is fitted. The three models of a split see the same rows, so their errors are paired. Test
error is averaged over the splits, with the standard error of the mean as the error bar.

Datasets: the UCI sets bundled with scikit-learn (the training split a seeded stratified
--uci_train_fraction of the rows, `data.test_fraction`; the test split the rest; the configs'
inputs: Gaussian NB on raw features, LDA and logistic regression on features standardised with
the training split's statistics) and image pairs from MNIST and Fashion-MNIST (`data.classes`,
genjax.data.splits: the pair's training images to draw from, the pair's test images to score;
pixels binarised at 0.5 for all three models, `data.preprocess=binarize_fixed`; Bernoulli NB),
read from raw IDX files (`--idx_dir`, a config's data.idx_dir with `{dataset}` standing for
mnist or fashion_mnist; empty: TFDS, TFDS_DATA_DIR). Logistic regression is the `logistic`
config with l2 = 1 / (--lr_c m) (scikit-learn's default C = 1) and at most --lr_max_iter L-BFGS
iterations; LDA (the `lda` config) shrinks its covariance by --lda_shrinkage.

Writes <workdir>/<dataset>.png, summary.png, results.json (every curve, per-split errors,
crossings) and crossings.md: where each generative curve crosses logistic regression's, and
whether the dataset shows the paper's two regimes (the generative model better at the
smallest m, logistic regression better at the largest, both by more than two standard
errors of the paired difference).
"""

import copy
import os
import time

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
UCI = ("breast_cancer", "wine", "iris", "digits")
# name -> (image dataset, class a, class b); labels: 0 for a, 1 for b.
IMAGE_PAIRS = {
    "mnist_3v5": ("mnist", 3, 5),
    "mnist_4v9": ("mnist", 4, 9),
    "fashion_shirt_v_tshirt": ("fashion_mnist", 6, 0),
    "fashion_pullover_v_coat": ("fashion_mnist", 2, 4),
}
DATASETS = (*UCI, *IMAGE_PAIRS)
MODELS = ("nb", "gda", "lr")
PAIRS = (("nb", "lr"), ("gda", "lr"))
LABELS = {"nb": "naive Bayes", "gda": "GDA (LDA)", "lr": "logistic regression"}

flags.DEFINE_list("datasets", list(DATASETS), f"Any of {', '.join(DATASETS)}.")
flags.DEFINE_string("workdir", "runs/ng_jordan", "Where the fits' workdirs, figures and tables "
                    "go.")
flags.DEFINE_string("idx_dir", "../shared/data/{dataset}", "Raw IDX files of an image dataset, "
                    "{dataset} its name; empty: read the image datasets through TFDS.")
flags.DEFINE_integer("splits", 20, "Random training sets per size.")
flags.DEFINE_integer("num_sizes", 10, "Training-set sizes per dataset (geometric grid).")
flags.DEFINE_integer("max_train_images", 4000, "Largest training set of the image pairs.")
flags.DEFINE_float("uci_train_fraction", 0.75, "Training share of a UCI set (its largest "
                   "training set).")
flags.DEFINE_float("lda_shrinkage", 0.05, "LDA covariance shrinkage (genjax.classical.gda).")
flags.DEFINE_float("lr_c", 1.0, "Logistic regression: l2 = 1 / (lr_c * m).")
flags.DEFINE_integer("lr_max_iter", 1000, "Logistic regression: L-BFGS iteration cap (the "
                     "iterations used are in results.json, lr_max_iterations).")
flags.DEFINE_integer("seed", 0, "Split s runs with config seed seed + s.")
flags.DEFINE_bool("from_results", False, "Fit nothing: recompute the crossings, tables and "
                  "figures from <workdir>/results.json.")
FLAGS = flags.FLAGS
RENAMED = {"outdir": "--workdir", "data_dir": "--idx_dir=FOLDER/{dataset}",
           "data_root": "--idx_dir=FOLDER/{dataset}"}


def kind(name: str) -> str:
  """"continuous" (a UCI set: Gaussian NB) or "binary" (an image pair: Bernoulli NB)."""
  return "continuous" if name in UCI else "binary"


def config_name(model: str, name: str) -> str:
  """The config in experiments/configs of `model` (nb, gda, lr) on dataset `name`."""
  if model == "nb":
    return "gaussian_nb" if kind(name) == "continuous" else "bernoulli_nb"
  return {"gda": "lda", "lr": "logistic"}[model]


def base_config(model: str, name: str, settings: dict):
  """The config of `model` on dataset `name` under the study's `settings` (unlocked), before
  a point's size and seed: its dataset's data fields (a UCI set's test fraction; an image
  pair's classes, binarised pixels and IDX folder) and the model's study hyper-parameters."""
  from genjax import studies
  if name in UCI:
    dataset, data = name, {"test_fraction": 1.0 - settings["uci_train_fraction"]}
  else:
    dataset, a, b = IMAGE_PAIRS[name]
    idx_dir = settings["idx_dir"]
    data = {"classes": (a, b), "preprocess": "binarize_fixed",
            "idx_dir": idx_dir.format(dataset=dataset) if idx_dir else None}
  c = studies.load_config(os.path.join(CONFIG_DIR, f"{config_name(model, name)}.py:{dataset}"))
  for field, value in data.items():
    c.data[field] = value
  if model == "gda":
    c.model.hp.shrinkage = settings["lda_shrinkage"]
  elif model == "lr":
    c.model.hp.max_iter = settings["lr_max_iter"]
  return c


def point_config(base, model: str, m: int, seed: int, lr_c: float):
  """The config of one fit: `base` on a seeded training set of m rows (config seed `seed`,
  which also draws a UCI set's training split); logistic regression's l2 = 1 / (lr_c m)."""
  c = copy.deepcopy(base)
  c.seed = seed
  c.data.train_size = m
  if "split_seed" in c.data:
    c.data.split_seed = seed
  if model == "lr":
    c.model.hp.l2 = 1.0 / (lr_c * m)
  return c


def point_dir(workdir: str, name: str, model: str, m: int, seed: int) -> str:
  """The workdir of one fit."""
  return os.path.join(workdir, name, model, f"m{m}_s{seed}")


def training_sizes(num_train: int, num_classes: int, num_sizes: int, largest: int) -> list[int]:
  """About `num_sizes` training-set sizes, geometric from a few rows per class (max(2 C, 6))
  to `largest` (at most the `num_train` rows of the training split), rounded, distinct."""
  lo, hi = max(2 * num_classes, 6), min(largest, num_train)
  if hi < lo:
    raise ValueError(f"the largest training set ({hi} rows) is below the smallest ({lo})")
  return sorted({int(round(m)) for m in np.geomspace(lo, hi, num_sizes)})


def sizes_of(name: str, settings: dict) -> list[int]:
  """The training-set sizes of dataset `name`: up to its whole training split (a UCI set) or
  to --max_train_images (an image pair)."""
  from genjax import train
  split = train.load_split(base_config("lr", name, settings), "train")
  largest = len(split) if name in UCI else settings["max_train_images"]
  return training_sizes(len(split), split.num_classes, settings["num_sizes"], largest)


def points(name: str, settings: dict, sizes: list[int], workdir: str) -> list[tuple]:
  """(model, m, split, config, workdir) of every fit of dataset `name`, size by size."""
  out = []
  bases = {model: base_config(model, name, settings) for model in MODELS}
  for m in sizes:
    for model in MODELS:
      for s in range(settings["splits"]):
        seed = settings["seed"] + s
        out.append((model, m, s, point_config(bases[model], model, m, seed, settings["lr_c"]),
                    point_dir(workdir, name, model, m, seed)))
  return out


def check_points(fits: list[tuple]) -> None:
  """Refuse, naming the fields, where a fit's workdir holds another config (the study's
  settings changed), before anything is fitted."""
  from genjax import studies
  for *_, config, workdir in fits:
    studies.refuse_other_config(config, workdir)


def run_dataset(name: str, sizes: list[int], splits: int, fits: list[tuple]) -> tuple[dict, int]:
  """(learning curves of one dataset, the number of fits made now): each fit is read back from
  its workdir where it is finished, else fitted there. Curves: per model, sizes -> mean,
  standard error and per-split errors; also logistic regression's largest L-BFGS iteration
  count per size and the fits' recorded fit seconds."""
  from genjax import studies, train, writers
  errors = {model: np.zeros((len(sizes), splits)) for model in MODELS}
  iterations = [0] * len(sizes)
  fit_seconds, fitted, num_test = 0.0, 0, None
  for model, m, s, config, workdir in fits:
    results = studies.finished_results(config, workdir)
    if results is None:
      results = train.train_and_evaluate(config, workdir)
      fitted += 1
    i = sizes.index(m)
    errors[model][i, s] = studies.test_error(results)
    fit_seconds += results.get("fit_seconds", 0.0)
    num_test = results["test"]["num_examples"]
    if model == "lr":
      log = writers.read_metrics(os.path.join(workdir, "metrics.jsonl"))
      used = [r["num_iterations"] for r in log if "num_iterations" in r]
      iterations[i] = max(iterations[i], int(used[-1]) if used else 0)
  curves = {model: {"mean": e_MxS.mean(1).tolist(),
                    "sem": (e_MxS.std(1, ddof=1) / np.sqrt(splits)).tolist(),
                    "per_split": e_MxS.tolist()}
            for model, e_MxS in errors.items()}
  return {"sizes": sizes, "splits": splits, "num_test": num_test, "kind": kind(name),
          "curves": curves, "lr_max_iterations": iterations,
          "fit_seconds": fit_seconds}, fitted


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


def run_study(datasets: list[str], outdir: str, idx_dir: str, splits: int, num_sizes: int,
              max_train_images: int, uci_train_fraction: float, lda_shrinkage: float,
              lr_c: float, seed: int, lr_max_iter: int = 1000) -> dict:
  """Run every dataset's curves and write the figures and tables; returns the results. Every
  fit is a workdir under `outdir` (see the module docstring): finished ones are read back, so
  an interrupted study resumes. Unknown datasets, fewer than two splits, a training fraction
  outside (0, 1) and workdirs that hold other configs are refused before anything is
  fitted."""
  unknown = [name for name in datasets if name not in DATASETS]
  if unknown:
    raise ValueError(f"--datasets: unknown {unknown}; expected some of {DATASETS}")
  if splits < 2:
    raise ValueError(f"--splits must be at least 2 (the error bars), got {splits}")
  if not 0.0 < uci_train_fraction < 1.0:
    raise ValueError(f"--uci_train_fraction must be in (0, 1), got {uci_train_fraction}")
  settings = {"datasets": datasets, "idx_dir": idx_dir, "splits": splits,
              "num_sizes": num_sizes, "max_train_images": max_train_images,
              "uci_train_fraction": uci_train_fraction, "lda_shrinkage": lda_shrinkage,
              "lr_c": lr_c, "lr_max_iter": lr_max_iter, "seed": seed}
  plan = {}
  for name in datasets:
    sizes = sizes_of(name, settings)
    plan[name] = (sizes, points(name, settings, sizes, outdir))
    check_points(plan[name][1])
  os.makedirs(outdir, exist_ok=True)
  results = {}
  for name, (sizes, fits) in plan.items():
    t = time.perf_counter()
    r, fitted = run_dataset(name, sizes, splits, fits)
    r["crossings"] = {f"{gen}_vs_lr": crossing(sizes, np.array(r["curves"][gen]["per_split"]),
                                               np.array(r["curves"]["lr"]["per_split"]))
                      for gen, _ in PAIRS}
    results[name] = r
    plot_dataset(os.path.join(outdir, f"{name}.png"), name, r)
    # Written after every dataset, so that the tables keep what a stopped study finished.
    write_tables(outdir, results, settings)
    print(f"{name}: {fitted} of {len(fits)} fits made now ({time.perf_counter() - t:.0f}s), "
          f"sizes {sizes[0]}..{sizes[-1]}; " + "; ".join(
              f"{gen} vs lr: {r['crossings'][f'{gen}_vs_lr']['verdict']}" for gen, _ in PAIRS),
          flush=True)
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
