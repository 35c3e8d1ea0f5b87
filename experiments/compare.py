"""Every classifier of both families on one dataset, fitted the same way, in one table.

  python experiments/compare.py --dataset=mnist --workdir=runs/compare_mnist --budget_minutes=10
  python experiments/compare.py --dataset=iris --workdir=runs/compare_iris
  python experiments/compare.py --dataset=iris --workdir=runs/compare_iris \
      --models=bernoulli_nb,bernoulli_nb@joint_weight=0
  python experiments/compare.py --dataset=mnist --workdir=/tmp/cmp --smoke      # seconds each

The classifiers are the configs in experiments/configs that declare a row (a module constant,
`CLASSIFIER = {"name": "Bernoulli naive Bayes", "side": "generative"}`, with the datasets it
runs on and its config argument where those differ: genjax.studies), so a new classifier joins
the table with no edit here. The semi-supervised models (ssgan_mnist, m2_mnist) and the deep
Bayes classifier train with all labels. `--models` picks some, each `NAME` (`CONFIG` or
`CONFIG:VARIANT`) optionally with overrides, `NAME@field.path=value,...` (a bare field is
`model.FIELD`: `bernoulli_nb@joint_weight=0`); each is its own row and workdir.

Each model is trained or fitted by the generic loop (genjax.train) into `<workdir>/<NAME>/`
(`<workdir>/<NAME>@<overrides>/` with overrides) and scored by the same classification
evaluator on the same test split. A model whose workdir already holds results for the same
config is read back, not refitted (a workdir holding another config is refused).
`--budget_minutes=M` trains every step family M minutes' worth of steps instead of its config's
schedule: the steps per second of its training step on this machine, timed once (a few seconds,
after compilation; genjax.studies.steps_per_second) and recorded in its workdir's budget.json,
so that a later invocation trains and reads back the same run. The table (accuracy, log-loss in
nats, expected calibration error, the model's joint_weight where it has one, its training:
`fit` or steps, fit and predict seconds — wall clock, compilation included, on the machine that
ran each model — side, model) is written as `table.md`, `table.json` (a list of rows with those
keys) and `table.png`.

Datasets: mnist, fashion_mnist (every model; the neural networks only there) and the UCI sets
iris, wine, breast_cancer, digits.
"""

import dataclasses
import os

from genjax import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

from genjax import studies  # noqa: E402

COLUMNS = ("model", "family", "accuracy", "log_loss", "ece", "joint_weight", "training",
           "fit_seconds", "predict_seconds")

flags.DEFINE_string("dataset", "mnist", "mnist, fashion_mnist, iris, wine, breast_cancer, digits.")
flags.DEFINE_string("workdir", None, "Where each model's workdir and the table go.")
flags.DEFINE_list("models", [], "Only these classifiers, NAME or NAME@field=value,... "
                  "(default: every declared classifier for the dataset).")
flags.DEFINE_bool("smoke", False, "Each config's smoke variant (seconds; for tests).")
flags.DEFINE_string("idx_dir", None, "Read mnist/fashion_mnist from these raw IDX files.")
flags.DEFINE_float("budget_minutes", None,
                   "Train each step family this many minutes' worth of steps (timed here).")
FLAGS = flags.FLAGS
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


@dataclasses.dataclass(frozen=True)
class Entry:
  """A row to make: a declared classifier and the overrides (`{dotted field: value text}`) the
  command line gave it."""

  classifier: studies.Classifier
  overrides: tuple = ()

  @property
  def label(self) -> str:
    """Its `--models` name and workdir name: `NAME` or `NAME@field=value,...`."""
    if not self.overrides:
      return self.classifier.key
    shown = ",".join(f"{k.removeprefix('model.')}={v}" for k, v in self.overrides)
    return f"{self.classifier.key}@{shown}"

  @property
  def dirname(self) -> str:
    return self.label.replace(":", "_").replace(os.sep, "_")

  @property
  def name(self) -> str:
    shown = ", ".join(f"{k.removeprefix('model.')}={v}" for k, v in self.overrides)
    return self.classifier.name + (f" ({shown})" if shown else "")


def models_for(dataset: str, only: list[str]) -> list[Entry]:
  """The rows to make on `dataset`: every classifier declared for it, or those `only` names
  (with their overrides). Raises ValueError for an unknown name or one without `dataset`."""
  declared = studies.classifiers(CONFIG_DIR)
  chosen = [c for c in declared if dataset in c.datasets]
  if not only:
    return [Entry(c) for c in chosen]
  by_key = {c.key: c for c in chosen}
  entries = []
  for spec in studies.join_models(only):
    name, overrides = studies.parse_model(spec)
    if name not in by_key:
      other = next((c for c in declared if c.key == name), None)
      why = (f"{name} does not run on {dataset} (its datasets: {list(other.datasets)})" if other
             else f"no classifier config {name!r} for {dataset}")
      raise ValueError(f"{why}; expected some of {sorted(by_key)}")
    entries.append(Entry(by_key[name], tuple(overrides.items())))
  labels = [e.label for e in entries]
  if len(set(labels)) != len(labels):
    raise ValueError(f"--models names a row twice: {labels}")
  return entries


def entry_config(entry: Entry, dataset: str, smoke: bool, idx_dir: str | None = None):
  """The config of `entry` on `dataset` (unlocked, overrides set, the progress bar off)."""
  config = studies.load_config(entry.classifier.spec(dataset, smoke), dict(entry.overrides))
  if idx_dir and "idx_dir" in config.data:
    config.data.idx_dir = idx_dir
  return config


def run_model(config, workdir: str, budget_minutes: float | None = None) -> tuple[dict, str]:
  """(results.json, how it was trained) of `config` in `workdir`: a finished run of the same
  config read back, else trained or fitted now; a step family with `budget_minutes` trained
  that many minutes' worth of steps (genjax.studies.budget_steps)."""
  from genjax import family as family_lib
  if not family_lib.is_step(family_lib.load(config.family)):
    return studies.read_or_train(config, workdir), "fit"
  if budget_minutes is None:
    training = "config's schedule"
  else:
    budget = studies.budget_steps(config, workdir, budget_minutes)
    studies.set_num_steps(config, budget["steps"])
    training = (f"{budget_minutes:g} min ({budget['steps_per_sec']:.3g} steps/s on "
                f"{budget['backend']})")
  results = studies.read_or_train(config, workdir)
  return results, f"{results.get('step')} steps, {training}"


def row(model: str, family: str, results: dict) -> dict:
  test = results["test"]
  return {"model": model, "family": family, "accuracy": test["accuracy"],
          "log_loss": test["log_loss"], "ece": test["ece"],
          "joint_weight": results.get("joint_weight"),
          "fit_seconds": results.get("fit_seconds", results.get("train_seconds")),
          "predict_seconds": test.get("predict_seconds"), "config": results.get("config"),
          "backend": results.get("backend")}


def markdown(rows: list[dict], dataset: str) -> str:
  lines = [f"Test set of {dataset}; seconds are wall clock, compilation included.", "",
           "| model | family | accuracy | log-loss | ECE | joint weight | training | fit s "
           "| predict s |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
  for r in rows:
    fit = "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}"
    pred = "" if r["predict_seconds"] is None else f"{r['predict_seconds']:.2f}"
    weight = "" if r.get("joint_weight") is None else f"{r['joint_weight']:g}"
    lines.append(f"| {r['model']} | {r['family']} | {r['accuracy']:.4f} | {r['log_loss']:.4f} "
                 f"| {r['ece']:.4f} | {weight} | {r.get('training', '')} | {fit} | {pred} |")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], dataset: str, path: str) -> None:
  """Accuracy and log-loss per model, each side in its colour."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  colours = {"generative": "tab:orange", "discriminative": "tab:blue", "hybrid": "tab:green"}
  colours = {k: v for k, v in colours.items() if any(r["family"] == k for r in rows)}
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
            idx_dir: str | None = None, budget_minutes: float | None = None) -> list[dict]:
  """Fit (or read back) every classifier on `dataset` (those `only` names, with their
  overrides); write the table; return its rows."""
  from genjax.writers import write_json
  if budget_minutes is not None and budget_minutes <= 0:
    raise ValueError(f"--budget_minutes must be positive, got {budget_minutes}")
  chosen = models_for(dataset, only or [])
  # Every config is built before anything trains: a bad override fails in one line first.
  configs = {e.label: entry_config(e, dataset, smoke, idx_dir) for e in chosen}
  rows = []
  for e in chosen:
    results, training = run_model(configs[e.label], os.path.join(workdir, e.dirname),
                                  budget_minutes)
    rows.append({**row(e.name, e.classifier.side, results), "config": e.label,
                 "training": training})
    print(f"{e.name:36s} accuracy {rows[-1]['accuracy']:.4f}  log-loss "
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
  rows = compare(FLAGS.dataset, FLAGS.workdir, FLAGS.models, FLAGS.smoke, FLAGS.idx_dir,
                 FLAGS.budget_minutes)
  print(markdown(rows, FLAGS.dataset))
  print(f"wrote {os.path.join(FLAGS.workdir, 'table.md')}, table.json, table.png")


if __name__ == "__main__":
  cli.run(main)
