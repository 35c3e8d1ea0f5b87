"""Generative vs discriminative with few labels: test error against the number of labels.

  python experiments/label_efficiency.py --dataset=mnist --workdir=runs/labels_mnist
  python experiments/label_efficiency.py --dataset=fashion_mnist --workdir=runs/labels_fashion

Every model is trained on the same balanced labelled subsets (genjax.data.labelled: member i of
`--seeds` draws its subset with seed i), the semi-supervised ones also on the unlabelled rest of
the training split, and scored on the test split by the classification evaluator. Step families
train their seeds as one population (genjax.population); fit families are fitted once per seed.
Each (model, labels) pair is an ordinary workdir under WORKDIR/<model>/<labels>, so an
interrupted study resumes where it stopped, and a finished pair is read, not retrained.

Writes WORKDIR/label_efficiency.json (every row: model, side, labels, mean and sample sd of the
test error over the seeds, the seeds), label_efficiency.md (the table) and
label_efficiency.png (error against labels, log-log, error bars one sd).

`--steps=K` trains every step family K steps (default: each config's own schedule, hours on a
CPU for the semi-supervised GAN), with weight averages (model.ema_decay) no longer than K / 10
steps; the table says which budget each row was made with.
"""

import json
import os
import sys

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "experiments", "configs")

# model -> (side, config file, how the labels reach it). `arg`: the config's argument names the
# dataset and the number of labels (`all` too); `fields`: the dataset's config with
# data.num_labels set.
MODELS = {
    "ssgan": ("generative", "ssgan_mnist", "arg"),
    "m2": ("generative", "m2_mnist", "arg"),
    "m1m2": ("generative", "m1m2_mnist", "arg"),
    "bayes_vae": ("generative", "bayes_vae_mnist", "arg"),
    "gaussian_nb": ("generative", "gaussian_nb", "fields"),
    "lda": ("generative", "lda", "fields"),
    "mlp": ("discriminative", "mlp_mnist", "fields"),
    "cnn": ("discriminative", "cnn_mnist", "fields"),
    "logistic": ("discriminative", "logistic", "fields"),
    "knn": ("discriminative", "knn", "fields"),
}
LABELS = ("20", "50", "100", "200", "600", "1000", "3000", "all")

flags.DEFINE_string("dataset", "mnist", "mnist or fashion_mnist.")
flags.DEFINE_string("workdir", None, "Where the runs, the table and the figure go.")
flags.DEFINE_list("labels", list(LABELS), "Numbers of labelled training examples ('all').")
flags.DEFINE_list("models", list(MODELS), f"Models, of {sorted(MODELS)}.")
flags.DEFINE_integer("seeds", 5, "Seeds (labelled subsets) per point.")
flags.DEFINE_integer("steps", None, "Train every step family this many steps.")
FLAGS = flags.FLAGS


def labels_value(label: str) -> int:
  """The config's data.num_labels for a --labels entry (-1: all)."""
  return -1 if label == "all" else int(label)


def model_config(model: str, dataset: str, label: str, steps: int | None):
  """The config of one model at one number of labels (unlocked, population unset)."""
  from genjax import family as family_lib
  from genjax import studies
  _, name, how = MODELS[model]
  n = labels_value(label)
  path = os.path.join(CONFIGS, f"{name}.py")
  c = studies.load_config(f"{path}:{dataset},{label}" if how == "arg" else f"{path}:{dataset}")
  is_step = family_lib.is_step(family_lib.load(c.family))
  if how == "fields" and is_step:
    # Supervised on n examples: batches no larger than the labelled set.
    studies.with_labels(c, n)
  elif how == "fields":
    c.data.num_labels = n
    if "train_size" in c.data:
      c.data.train_size = 0
  if is_step and steps is not None:
    studies.set_num_steps(c, steps)
  return c, is_step


def run_point(model: str, label: str, seeds: int, workdir: str, dataset: str,
              steps: int | None) -> dict:
  """Train (or read) one model at one number of labels over `seeds` seeds."""
  from genjax import studies, train
  config, is_step = model_config(model, dataset, label, steps)
  if is_step:
    config.population = seeds
    results = train.train_and_evaluate(config, workdir)
    members = studies.member_results(config, workdir, results)
  else:
    members = []
    for seed in range(seeds):
      config.seed = seed
      members.append(train.train_and_evaluate(config, os.path.join(workdir, f"seed{seed}")))
  errors = [studies.test_error(r) for r in members]
  mean, sd = studies.mean_sd(errors)
  return {"model": model, "side": MODELS[model][0], "labels": label, "error_mean": mean,
          "error_sd": sd, "errors": errors, "seeds": list(range(seeds)),
          "steps": steps if is_step else None, "fitted": not is_step,
          "train_seconds": sum(r.get("train_seconds", r.get("fit_seconds", 0.0)) for r in members)}


def table(rows: list[dict], labels: list[str], seeds: int, dataset: str) -> str:
  """The Markdown table: a row per model (with its training budget), a column per number of
  labels, test error in % as mean +- sd over the seeds."""
  lines = [f"Test error (%) on {dataset}, mean +- sd over {seeds} seeds (labelled subsets).", "",
           "| model | side | budget | " + " | ".join(labels) + " |",
           "|---|---|---|" + "---|" * len(labels)]
  models = list(dict.fromkeys(r["model"] for r in rows))
  for m in models:
    cells = []
    for label in labels:
      r = next((r for r in rows if r["model"] == m and r["labels"] == label), None)
      cells.append(f"{100 * r['error_mean']:.2f} +- {100 * r['error_sd']:.2f}" if r else "")
    steps = sorted({r["steps"] for r in rows if r["model"] == m and r["steps"]})
    budget = (f"{', '.join(map(str, steps))} steps" if steps else
              "fit" if all(r.get("fitted") for r in rows if r["model"] == m) else "config's own")
    lines.append(f"| {m} | {MODELS[m][0]} | {budget} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], labels: list[str], path: str, num_train: int) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for m in dict.fromkeys(r["model"] for r in rows):
    pts = [(num_train if r["labels"] == "all" else int(r["labels"]), 100 * r["error_mean"],
            100 * r["error_sd"]) for r in rows if r["model"] == m]
    x, y, e = zip(*sorted(pts), strict=True)
    ax.errorbar(x, y, yerr=e, marker="o" if MODELS[m][0] == "generative" else "s",
                linestyle="-" if MODELS[m][0] == "generative" else "--", capsize=3, label=m)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("labelled training examples")
  ax.set_ylabel("test error (%)")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def study(dataset: str, workdir: str, labels: list[str], models: list[str], seeds: int,
          steps: int | None) -> list[dict]:
  from genjax import writers
  unknown = [m for m in models if m not in MODELS]
  if unknown:
    raise ValueError(f"unknown models {unknown}; expected some of {sorted(MODELS)}")
  # Rows of earlier invocations with the same dataset, seeds and budget are kept: a study can
  # be run a few models at a time.
  path = os.path.join(workdir, "label_efficiency.json")
  rows = []
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if (old["dataset"], old["seeds"]) != (dataset, seeds):
      raise ValueError(f"{path} holds a study of {old['dataset']} with {old['seeds']} seeds: "
                       "use another --workdir")
    rows = old["rows"]
  for model in models:
    for label in labels:
      row = run_point(model, label, seeds, os.path.join(workdir, model, label), dataset, steps)
      rows = [r for r in rows if (r["model"], r["labels"]) != (model, label)] + [row]
      print(f"{model:12s} {label:>5s} labels: test error {100 * row['error_mean']:.2f} "
            f"+- {100 * row['error_sd']:.2f} % ({seeds} seeds)", flush=True)
      writers.write_json(path, {"dataset": dataset, "seeds": seeds, "rows": rows})
  rows.sort(key=lambda r: (list(MODELS).index(r["model"]), LABELS.index(r["labels"])
                           if r["labels"] in LABELS else len(LABELS)))
  all_labels = [x for x in LABELS if any(r["labels"] == x for r in rows)]
  all_labels += sorted({r["labels"] for r in rows} - set(LABELS), key=labels_value)
  with open(os.path.join(workdir, "label_efficiency.md"), "w") as f:
    f.write(table(rows, all_labels, seeds, dataset))
  plot(rows, all_labels, os.path.join(workdir, "label_efficiency.png"), 60_000)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  study(FLAGS.dataset, FLAGS.workdir, FLAGS.labels, FLAGS.models, FLAGS.seeds, FLAGS.steps)
  print(open(os.path.join(FLAGS.workdir, "label_efficiency.md")).read(), file=sys.stdout)


if __name__ == "__main__":
  cli.run(main)
