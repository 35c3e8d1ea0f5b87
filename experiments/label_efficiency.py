"""Generative vs discriminative with few labels: test error against the number of labels.

  python experiments/label_efficiency.py --dataset=mnist --workdir=runs/labels_mnist
  python experiments/label_efficiency.py --dataset=fashion_mnist --workdir=runs/labels_fashion
  python experiments/label_efficiency.py --dataset=mnist --workdir=runs/few_labels_mnist \
      --models=ssgan,m2,m1m2,bayes_vae --labels=100,1000 --seeds=3 --minutes=20

Every model is trained on the same balanced labelled subsets (genjax.data.labelled: member i of
`--seeds` draws its subset with seed i), the semi-supervised ones also on the unlabelled rest of
the training split, and scored on the test split by the classification evaluator. Step families
train their seeds as one population (genjax.population); fit families are fitted once per seed.
Each (model, labels) pair is an ordinary workdir under WORKDIR/<model>/<labels>, so an
interrupted study resumes where it stopped, and a finished pair is read, not retrained.

Budgets of the step families (fit families fit to convergence and ignore them): by default each
config's own schedule (hours on a CPU for the semi-supervised GAN); `--steps=K` trains K steps
(M1+M2 also shrinks M1's pre-training in its config's proportion, 120,000 M1 steps to 180,000);
`--minutes=M` trains each point, its seeds together, the steps that take M minutes here:
the population's step is timed once in a short probe after compilation (genjax.studies
.budget_steps) and the steps are recorded in the point's budget.json, so the run itself is
deterministic (the same steps on a slower or busier machine) and a later invocation reads the
finished point back. M1+M2's minutes also cover M1's pre-training (model.m1_steps, trained
before the loop, one seed after another): the config's own schedule shrunk alike in time. With
either budget the schedule's learning-rate decay and weight averages follow the steps
(genjax.studies.set_num_steps). A point keeps its budget: an invocation asking another one of
a point's workdir is refused (use another --workdir).

Writes WORKDIR/label_efficiency.json (every row: model, side, labels, mean and sample sd of the
test error over the seeds, the seeds, the budget: steps, pre-training steps, the minutes they
were timed for, and the wall clock the point took), label_efficiency.md (the table, and a row
per point with its budget in steps and minutes), label_efficiency.png (error against labels,
log-log, error bars one sd), learning_curves.json and learning_curves.png: each step family's
test error evaluated `--curve_points` times along its run (train.eval_every, the family's
eval_step on the test split, per seed) against the wall-clock minutes since the point started
(genjax.learning_curves), a line per model and number of labels with a band of one sd over the
seeds, and a marker at its final test error (the table's, from the classification evaluator).
`--smoke` uses the configs' smoke variants (minutes for the whole study's mechanics).
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
# model -> the config field counting the steps each seed's model pre-trains before the loop
# (M1 of M1+M2, in the family's init_from_data): --minutes covers them too.
PRETRAIN = {"m1m2": "model.m1_steps"}
LABELS = ("20", "50", "100", "200", "600", "1000", "3000", "all")

flags.DEFINE_string("dataset", "mnist", "mnist or fashion_mnist.")
flags.DEFINE_string("workdir", None, "Where the runs, the table and the figures go.")
flags.DEFINE_list("labels", list(LABELS), "Numbers of labelled training examples ('all').")
flags.DEFINE_list("models", list(MODELS), f"Models, of {sorted(MODELS)}.")
flags.DEFINE_integer("seeds", 5, "Seeds (labelled subsets) per point.")
flags.DEFINE_integer("steps", None, "Train every step family this many steps.")
flags.DEFINE_float("minutes", None, "Train every step family's point (its seeds together) "
                   "this many minutes' worth of steps, timed here.")
flags.DEFINE_integer("curve_points", 10, "Test-error evaluations along each step family's run "
                     "(its learning curve; 0: none).")
flags.DEFINE_bool("smoke", False, "The configs' smoke variants (tiny networks and batches).")
FLAGS = flags.FLAGS


def labels_value(label: str) -> int:
  """The config's data.num_labels for a --labels entry (-1: all)."""
  return -1 if label == "all" else int(label)


def model_config(model: str, dataset: str, label: str, smoke: bool = False):
  """The config of one model at one number of labels (unlocked, population unset, its own
  schedule), and whether its family is a step family."""
  from genjax import family as family_lib
  from genjax import studies
  _, name, how = MODELS[model]
  n = labels_value(label)
  arg = f"{dataset},{label}" if how == "arg" else dataset
  c = studies.load_config(os.path.join(CONFIGS, f"{name}.py") + f":{arg}"
                          + (",smoke" if smoke else ""))
  is_step = family_lib.is_step(family_lib.load(c.family))
  if how == "fields" and is_step:
    # Supervised on n examples: batches no larger than the labelled set.
    studies.with_labels(c, n)
  elif how == "fields":
    c.data.num_labels = n
    if "train_size" in c.data:
      c.data.train_size = 0
  return c, is_step


def describe(steps: int | None, minutes: float | None) -> str:
  """A budget as the refusals name it."""
  if minutes is not None:
    return f"--minutes={minutes:g}"
  return f"--steps={steps}" if steps is not None else "the config's own schedule"


def check_budget(model: str, workdir: str, steps: int | None, minutes: float | None) -> None:
  """Refuse a point whose workdir holds a run of another budget, before anything is timed or
  written: a budget of minutes is recorded in the point's budget.json (genjax.studies
  .budget_steps), one of steps in its config.json; neither may change (a longer run would
  silently continue the shorter one)."""
  from genjax import studies
  from genjax import workdir as workdir_lib
  recorded = studies.recorded_budget(workdir)
  old = workdir_lib.recorded_config(workdir)
  if old is None:
    return
  old_minutes = None if recorded is None else recorded["minutes"]
  if minutes is not None and old_minutes == minutes:
    return
  if minutes is not None or old_minutes is not None:
    old_steps = old["train"]["num_steps"] if old["train"]["num_steps"] > 0 else None
    raise ValueError(f"{workdir} holds {model}'s run for {describe(old_steps, old_minutes)}, "
                     f"not {describe(steps, minutes)}: a point keeps its "
                     "budget; use another --workdir")


def check_schedule(model: str, config, workdir: str) -> None:
  """Refuse a point whose workdir's run has another number of steps (loop, epochs or
  pre-training) than `config`."""
  from genjax import workdir as workdir_lib
  old = workdir_lib.recorded_config(workdir)
  if old is None:
    return
  fields = ["train.num_steps", "train.num_epochs", *([PRETRAIN[model]] if model in PRETRAIN
                                                     else [])]
  changed = {k: v for k, v in workdir_lib.diff(old, config.to_dict()).items() if k in fields}
  if changed:
    shown = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
    raise ValueError(f"{workdir} holds {model}'s run of another length ({shown}): a point "
                     "keeps its budget; use another --workdir")


def point_config(model: str, dataset: str, label: str, seeds: int, workdir: str,
                 steps: int | None, minutes: float | None, curve_points: int,
                 smoke: bool = False):
  """(config, is_step, budget) of one point: a step family's seeds as one population, trained
  `minutes` minutes' worth of steps (budget: genjax.studies.budget_steps, recorded in the
  point's budget.json; None otherwise) or `steps` steps or its own schedule, its test error
  evaluated `curve_points` times on the way; a fit family's config (fitted per seed)."""
  from genjax import learning_curves, studies
  config, is_step = model_config(model, dataset, label, smoke)
  if not is_step:
    return config, False, None
  config.population = seeds
  check_budget(model, workdir, steps, minutes)
  budget = None
  if minutes is not None:
    budget = studies.budget_steps(config, workdir, minutes, PRETRAIN.get(model))
    studies.apply_budget(config, budget)
  elif steps is not None:
    own_pretrain = studies.field(config, PRETRAIN[model]) if model in PRETRAIN else 0
    if own_pretrain:  # shrunk alike with the loop's steps
      pretrain_steps = max(1, round(steps * own_pretrain / studies.schedule_steps(config)))
      studies.override(config, {PRETRAIN[model]: pretrain_steps}, "--steps")
    studies.set_num_steps(config, steps)
  check_schedule(model, config, workdir)
  num_steps = (config.train.num_steps if config.train.num_steps > 0
               else studies.schedule_steps(config))
  learning_curves.with_evaluations(config, curve_points, num_steps)
  return config, True, budget


def run_point(model: str, label: str, seeds: int, workdir: str, dataset: str,
              steps: int | None = None, minutes: float | None = None, curve_points: int = 0,
              smoke: bool = False) -> dict:
  """Train (or read back) one model at one number of labels over `seeds` seeds; its row."""
  from genjax import learning_curves, studies, train
  config, is_step, budget = point_config(model, dataset, label, seeds, workdir, steps, minutes,
                                         curve_points, smoke)
  row = {"model": model, "side": MODELS[model][0], "labels": label,
         "seeds": list(range(seeds)), "fitted": not is_step, "steps": None,
         "pretrain_steps": None, "minutes": None, "steps_per_sec": None}
  if is_step:
    results = studies.finished_results(config, workdir)
    if results is None:
      clock = learning_curves.Clock(workdir)
      results = train.train_and_evaluate(config, workdir, on_eval=clock)
      clock.finish()
    members = studies.member_results(config, workdir, results)
    wall = learning_curves.read(workdir)["wall_seconds"]
    row.update(steps=int(members[0]["step"]),
               pretrain_steps=(studies.field(config, PRETRAIN[model]) if model in PRETRAIN
                               else None),
               wall_minutes=(wall if wall is not None else members[0]["train_seconds"]) / 60)
    if budget is not None:
      row.update(minutes=budget["minutes"], steps_per_sec=budget["steps_per_sec"])
  else:
    members = []
    for seed in range(seeds):
      config.seed = seed
      members.append(studies.read_or_train(config, os.path.join(workdir, f"seed{seed}")))
    row["wall_minutes"] = sum(r.get("fit_seconds", 0.0) for r in members) / 60
  errors = [studies.test_error(r) for r in members]
  mean, sd = studies.mean_sd(errors)
  return {**row, "error_mean": mean, "error_sd": sd, "errors": errors}


def budget_text(row: dict) -> str:
  """A row's budget: `fit`, or its loop steps (and pre-training steps), with the minutes they
  were timed for."""
  if row.get("fitted"):
    return "fit"
  if not row.get("steps"):
    return "config's own"
  text = f"{row['steps']:,} steps"
  if row.get("pretrain_steps"):
    text += f" + {row['pretrain_steps']:,} pre-training"
  if row.get("minutes") is not None:
    text = f"{row['minutes']:g} min: " + text
  return text


def label_order(label: str) -> float:
  return float("inf") if label == "all" else int(label)


def table(rows: list[dict], labels: list[str], seeds: int, dataset: str) -> str:
  """The Markdown tables: a row per model (with its training budget), a column per number of
  labels, test error in % as mean +- sd over the seeds; then a row per point with its budget
  in steps and minutes, the wall clock it took and its seeds."""
  lines = [f"Test error (%) on {dataset}, mean +- sd over {seeds} seeds (labelled subsets).", "",
           "| model | side | budget | " + " | ".join(labels) + " |",
           "|---|---|---|" + "---|" * len(labels)]
  models = list(dict.fromkeys(r["model"] for r in rows))
  for m in models:
    cells = []
    for label in labels:
      r = next((r for r in rows if r["model"] == m and r["labels"] == label), None)
      cells.append(f"{100 * r['error_mean']:.2f} +- {100 * r['error_sd']:.2f}" if r else "")
    budgets = {budget_text(r) for r in rows if r["model"] == m}
    budget = budgets.pop() if len(budgets) == 1 else "per point, below"
    lines.append(f"| {m} | {MODELS[m][0]} | {budget} | " + " | ".join(cells) + " |")
  lines += ["", "Each point's budget (minutes: those its steps were timed for, here, the seeds "
            "trained together; wall clock: the whole run, data, compilation, pre-training and "
            "the learning curve's evaluations included):", "",
            "| model | labels | seeds | budget | steps | pre-training steps | budget (min) "
            "| wall clock (min) | test error (%) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
  for r in rows:
    wall = r.get("wall_minutes")
    lines.append(
        f"| {r['model']} | {r['labels']} | {len(r['seeds'])} | {budget_text(r)} | "
        f"{'' if r.get('steps') is None else format(r['steps'], ',')} | "
        f"{'' if not r.get('pretrain_steps') else format(r['pretrain_steps'], ',')} | "
        f"{'' if r.get('minutes') is None else format(r['minutes'], 'g')} | "
        f"{'' if wall is None else format(wall, '.1f')} | "
        f"{100 * r['error_mean']:.2f} +- {100 * r['error_sd']:.2f} |")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str, num_train: int) -> None:
  """Test error against the number of labels, log-log, a line per model, error bars one sd."""
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


def curve(row: dict, workdir: str) -> dict | None:
  """The learning curve of a step family's point (genjax.learning_curves): per evaluation its
  step, minutes, the seeds' test errors and their mean and sd, and the point's final test
  error (the table's) at its whole wall clock; None where its workdir is gone."""
  from genjax import learning_curves, studies
  if row.get("fitted") or not os.path.exists(os.path.join(workdir, "config.json")):
    return None
  read = learning_curves.read(workdir)
  points = []
  for p in read["points"]:
    mean, sd = studies.mean_sd(p["errors"])
    points.append({"step": p["step"], "errors": p["errors"], "error_mean": mean, "error_sd": sd,
                   "minutes": None if p["seconds"] is None else p["seconds"] / 60})
  return {"model": row["model"], "labels": row["labels"], "seeds": row["seeds"],
          "budget": budget_text(row), "steps": row["steps"], "minutes": row.get("minutes"),
          "invocations": read["invocations"], "points": points,
          "final": {"step": row["steps"], "minutes": row.get("wall_minutes"),
                    "errors": row["errors"], "error_mean": row["error_mean"],
                    "error_sd": row["error_sd"]}}


def plot_curves(curves: list[dict], path: str) -> None:
  """Test error (log) against wall-clock minutes: a line per model and number of labels (the
  seeds' mean), a band of one sd over the seeds, a marker at the point's final test error."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import matplotlib.ticker
  import numpy as np
  fig, ax = plt.subplots(figsize=(7, 4.5))
  colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(c["model"] for c in curves))}
  styles = ("-", "--", ":", "-.")
  labels = sorted({c["labels"] for c in curves}, key=label_order)
  for c in curves:
    timed = [p for p in c["points"] if p["minutes"] is not None]
    colour, style = colours[c["model"]], styles[labels.index(c["labels"]) % len(styles)]
    if timed:
      x = np.array([p["minutes"] for p in timed])
      y = 100 * np.array([p["error_mean"] for p in timed])
      e = 100 * np.array([p["error_sd"] for p in timed])
      ax.plot(x, y, style, color=colour, label=f"{c['model']}, {c['labels']} labels")
      ax.fill_between(x, np.maximum(y - e, 1e-2), y + e, color=colour, alpha=0.15)
    final = c["final"]
    if final["minutes"] is not None:
      ax.plot([final["minutes"]], [100 * final["error_mean"]], "o", color=colour,
              **({} if timed else {"label": f"{c['model']}, {c['labels']} labels"}))
  ax.set_yscale("log")
  ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  ax.set_xlabel("wall clock (minutes; the seeds trained together)")
  ax.set_ylabel("test error (%)")
  ax.grid(alpha=0.3, which="both")
  if curves:
    ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def study(dataset: str, workdir: str, labels: list[str], models: list[str], seeds: int,
          steps: int | None = None, minutes: float | None = None, curve_points: int = 10,
          smoke: bool = False) -> list[dict]:
  """Train (or read back) every point; write label_efficiency.{json,md,png} and
  learning_curves.{json,png}; return the rows (those of earlier invocations included)."""
  from genjax import writers
  unknown = [m for m in models if m not in MODELS]
  if unknown:
    raise ValueError(f"unknown models {unknown}; expected some of {sorted(MODELS)}")
  if steps is not None and minutes is not None:
    raise ValueError("--steps and --minutes are two budgets: give one")
  if (steps is not None and steps <= 0) or (minutes is not None and minutes <= 0):
    raise ValueError(f"the budget must be positive, got --steps={steps} --minutes={minutes}")
  if seeds < 1:
    raise ValueError(f"--seeds must be at least 1, got {seeds}")
  # Rows of earlier invocations with the same dataset and seeds are kept: a study can be run a
  # few models at a time (each point keeps the budget it was trained for: check_budget).
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
      row = run_point(model, label, seeds, os.path.join(workdir, model, label), dataset, steps,
                      minutes, curve_points, smoke)
      rows = [r for r in rows if (r["model"], r["labels"]) != (model, label)] + [row]
      print(f"{model:12s} {label:>5s} labels: test error {100 * row['error_mean']:.2f} "
            f"+- {100 * row['error_sd']:.2f} % ({seeds} seeds; {budget_text(row)}, "
            f"{row['wall_minutes']:.1f} min)", flush=True)
      writers.write_json(path, {"dataset": dataset, "seeds": seeds, "rows": rows})
  rows.sort(key=lambda r: (list(MODELS).index(r["model"]), label_order(r["labels"])))
  all_labels = sorted({r["labels"] for r in rows}, key=label_order)
  with open(os.path.join(workdir, "label_efficiency.md"), "w") as f:
    f.write(table(rows, all_labels, seeds, dataset))
  plot(rows, os.path.join(workdir, "label_efficiency.png"), 60_000)
  curves = [c for r in rows
            if (c := curve(r, os.path.join(workdir, r["model"], r["labels"]))) is not None]
  writers.write_json(os.path.join(workdir, "learning_curves.json"),
                     {"dataset": dataset, "seeds": seeds, "curves": curves})
  plot_curves(curves, os.path.join(workdir, "learning_curves.png"))
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  study(FLAGS.dataset, FLAGS.workdir, FLAGS.labels, FLAGS.models, FLAGS.seeds, FLAGS.steps,
        FLAGS.minutes, FLAGS.curve_points, FLAGS.smoke)
  print(open(os.path.join(FLAGS.workdir, "label_efficiency.md")).read(), file=sys.stdout)


if __name__ == "__main__":
  cli.run(main)
