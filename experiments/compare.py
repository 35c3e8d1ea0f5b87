"""Every classifier of both families on one dataset, fitted the same way, in one table.

  python experiments/compare.py --dataset=mnist --workdir=runs/compare_mnist
  python experiments/compare.py --dataset=iris --workdir=runs/compare_iris
  python experiments/compare.py --dataset=mnist --workdir=/tmp/cmp --smoke      # seconds each

Each model is its config in experiments/configs (`NAME.py:DATASET`), trained or fitted by the
generic loop (genjax.train) into `<workdir>/<NAME>/` and scored by the same classification
evaluator on the same test split. A model whose workdir already holds results for the same
config is read back, not refitted (a workdir holding another config is refused). The table
(accuracy, log-loss in nats, expected calibration error, fit and predict seconds — wall clock,
compilation included, on the machine that ran each model — family, model) is written as
`table.md`, `table.json` (a list of rows with those keys) and `table.png`.

Datasets: mnist, fashion_mnist (every model; the neural networks only there) and the UCI sets
iris, wine, breast_cancer, digits.
"""

import json
import os

from genjax import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

# (config name, model, family); neural networks only for the image sets.
MODELS = (
    ("gaussian_nb", "Gaussian naive Bayes", "generative"),
    ("bernoulli_nb", "Bernoulli naive Bayes", "generative"),
    ("multinomial_nb", "multinomial naive Bayes", "generative"),
    ("categorical_nb", "categorical naive Bayes", "generative"),
    ("lda", "LDA", "generative"),
    ("qda", "QDA", "generative"),
    ("tan", "TAN (tree-augmented naive Bayes)", "generative"),
    ("logistic", "logistic regression", "discriminative"),
    ("linear_svm", "linear SVM", "discriminative"),
    ("kernel_svm", "RBF SVM (Nystroem)", "discriminative"),
    ("knn", "k-nearest neighbours", "discriminative"),
    ("mlp_mnist", "MLP 800-800", "discriminative"),
    ("lenet5_mnist", "LeNet-5", "discriminative"),
    ("cnn_mnist", "small CNN", "discriminative"),
)
IMAGE_ONLY = ("mlp_mnist", "lenet5_mnist", "cnn_mnist")
IMAGES = ("mnist", "fashion_mnist")
COLUMNS = ("model", "family", "accuracy", "log_loss", "ece", "fit_seconds", "predict_seconds")

flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, iris, wine, breast_cancer, digits.")
flags.DEFINE_string("workdir", None, "Where each model's workdir and the table go.")
flags.DEFINE_list("models", [], "Only these configs (default: every classifier).")
flags.DEFINE_bool("smoke", False, "Each config's smoke variant (seconds; for tests).")
flags.DEFINE_string("idx_dir", None, "Read mnist/fashion_mnist from these raw IDX files.")
FLAGS = flags.FLAGS


def models_for(dataset: str, only: list[str]) -> list[tuple[str, str, str]]:
  chosen = [m for m in MODELS if dataset in IMAGES or m[0] not in IMAGE_ONLY]
  if only:
    unknown = sorted(set(only) - {m[0] for m in chosen})
    if unknown:
      raise ValueError(f"no classifier configs {unknown} for {dataset}; expected some of "
                       f"{[m[0] for m in chosen]}")
    chosen = [m for m in chosen if m[0] in only]
  return chosen


def config_for(name: str, dataset: str, smoke: bool, idx_dir: str | None = None):
  from genjax import config as gconfig
  config = gconfig.load(os.path.join(cli.CONFIG_DIR, f"{name}.py") +
                        f":{dataset}{',smoke' if smoke else ''}")
  config.unlock()
  if "train" in config and "progress" in config.train:
    config.train.progress = False
  if idx_dir and "idx_dir" in config.data:
    config.data.idx_dir = idx_dir
  return config


def run_model(name: str, config, workdir: str) -> dict:
  """results.json of `config` in `workdir`: read back when it is there for the same config,
  else trained or fitted now."""
  from genjax import train
  from genjax import workdir as workdir_lib
  results_path = os.path.join(workdir, "results.json")
  # A workdir of another config is refused (genjax.workdir); one of this very config is reused.
  changes = workdir_lib.check(config, workdir)
  if not changes and workdir_lib.recorded_config(workdir) and os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
    if "accuracy" in results.get("test", {}):
      return results
  return train.train_and_evaluate(config, workdir)


def row(model: str, family: str, results: dict) -> dict:
  test = results["test"]
  return {"model": model, "family": family, "accuracy": test["accuracy"],
          "log_loss": test["log_loss"], "ece": test["ece"],
          "fit_seconds": results.get("fit_seconds", results.get("train_seconds")),
          "predict_seconds": test.get("predict_seconds"), "config": results.get("config"),
          "backend": results.get("backend")}


def markdown(rows: list[dict], dataset: str) -> str:
  lines = [f"Test set of {dataset}; seconds are wall clock, compilation included.", "",
           "| model | family | accuracy | log-loss | ECE | fit s | predict s |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    fit = "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}"
    pred = "" if r["predict_seconds"] is None else f"{r['predict_seconds']:.2f}"
    lines.append(f"| {r['model']} | {r['family']} | {r['accuracy']:.4f} | {r['log_loss']:.4f} "
                 f"| {r['ece']:.4f} | {fit} | {pred} |")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], dataset: str, path: str) -> None:
  """Accuracy and log-loss per model, generative and discriminative in two colours."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  colours = {"generative": "tab:orange", "discriminative": "tab:blue"}
  fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * len(rows) + 1.5), sharey=True)
  names = [r["model"] for r in rows]
  for ax, key, label in ((axes[0], "accuracy", "test accuracy"),
                         (axes[1], "log_loss", "test log-loss (nats)")):
    ax.barh(names, [r[key] for r in rows], color=[colours[r["family"]] for r in rows])
    ax.set_xlabel(label)
    ax.grid(axis="x", alpha=0.3)
  axes[0].invert_yaxis()
  handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
  axes[1].legend(handles, list(colours), loc="lower right")
  fig.suptitle(f"Generative vs discriminative classifiers on {dataset}")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def compare(dataset: str, workdir: str, only: list[str] | None = None, smoke: bool = False,
            idx_dir: str | None = None) -> list[dict]:
  """Fit (or read back) every classifier on `dataset`; write the table; return its rows."""
  from genjax.writers import write_json
  chosen = models_for(dataset, only or [])
  configs = {name: config_for(name, dataset, smoke, idx_dir) for name, _, _ in chosen}
  rows = []
  for name, model, family in chosen:
    results = run_model(name, configs[name], os.path.join(workdir, name))
    rows.append({**row(model, family, results), "config": name})
    print(f"{model:36s} accuracy {rows[-1]['accuracy']:.4f}  log-loss "
          f"{rows[-1]['log_loss']:.4f}", flush=True)
    # The table so far, after every model: a long comparison stopped midway keeps its rows.
    with open(os.path.join(workdir, "table.md"), "w") as f:
      f.write(markdown(rows, dataset))
    write_json(os.path.join(workdir, "table.json"), rows)
  plot(rows, dataset, os.path.join(workdir, "table.png"))
  return rows


def main(argv):
  from absl import app
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  rows = compare(FLAGS.dataset, FLAGS.workdir, FLAGS.models, FLAGS.smoke, FLAGS.idx_dir)
  print(markdown(rows, FLAGS.dataset))
  print(f"wrote {os.path.join(FLAGS.workdir, 'table.md')}, table.json, table.png")


if __name__ == "__main__":
  cli.run(main)
