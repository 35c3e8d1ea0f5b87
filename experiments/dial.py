"""The generative-discriminative dial: one model trained at joint weights from 0 to 1.

  python experiments/dial.py --config=bernoulli_nb:mnist --workdir=runs/dial_bernoulli_nb
  python experiments/dial.py --config=experiments/configs/gaussian_nb.py:iris \
      --workdir=runs/dial_gaussian_nb_iris --weights=0,0.5,1 --labels=50,all --seeds=5
  python experiments/dial.py --config=mlp_mnist:mnist --workdir=runs/dial_mlp --budget_minutes=2

A generative classifier whose p(x, y) is differentiable has `model.joint_weight` = lambda and
trains lambda log p(x, y) + (1 - lambda) log p(y | x) per example (Bouchard & Triggs 2004;
Bishop & Lasserre 2007): 1 is the generative model, 0 the same parameters trained
discriminatively. This script trains one config (`CONFIG` is a config file or the name of one
in experiments/configs, `:ARG` its argument) at every lambda of `--weights` and every number of
labels of `--labels`, over `--seeds` seeds, and tabulates test error and log-loss against
lambda.

Labels: a fit family fits a seeded subset of that many training rows (`data.train_size`,
clipped to the training rows; `all`: every row); a step family keeps that many balanced labels
(`data.num_labels`, genjax.data.labelled) with its config's own semi-supervised setting. Seeds:
a fit family is fitted once per seed (seed = config.seed + i, which also draws the subset); a
step family trains its seeds as one population (`config.population`, genjax.population).
`--budget_minutes=M` trains a step family M minutes' worth of steps per run instead of its
config's schedule (its step timed once here, recorded in WORKDIR/budget.json:
genjax.studies.budget_steps); a fit family ignores it.

Each point is an ordinary workdir, WORKDIR/w<lambda>_l<labels>/ (a step family's population)
or WORKDIR/w<lambda>_l<labels>_s<i>/ (a fit family's seed i): an interrupted study resumes (a
finished point is read back from its results.json, an unfinished step family's from its
checkpoint) and a later invocation with more weights or labels adds rows. Writes
WORKDIR/dial.json (a list of rows: config, joint_weight, labels, seeds, error_mean, error_sd,
log_loss_mean, log_loss_sd (null for a tagger, whose error is 1 - token accuracy),
test_log_likelihood (nats, where an evaluator gave one, else
null), steps), dial.md (the table and the best lambda per number of labels) and dial.png (test
error against lambda, a line per number of labels, error bars one sd).
"""

import copy
import json
import os

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402

from genjax import studies  # noqa: E402

WEIGHTS = ("0", "0.01", "0.1", "0.3", "0.5", "0.7", "0.9", "0.99", "1")
LABELS = ("100", "1000", "all")
RESULTS = "dial.json"
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

flags.DEFINE_string("config", None, "CONFIG[:ARG]: a config file or a name in experiments/configs.")
flags.DEFINE_string("workdir", None, "Where the points' workdirs, the table and the figure go.")
flags.DEFINE_list("weights", list(WEIGHTS), "Joint weights (lambda) in [0, 1].")
flags.DEFINE_list("labels", list(LABELS), "Numbers of labelled training examples ('all').")
flags.DEFINE_integer("seeds", 5, "Seeds per point.")
flags.DEFINE_float("budget_minutes", None, "Train a step family this many minutes per run.")
FLAGS = flags.FLAGS


def config_spec(spec: str) -> tuple[str, str]:
  """(`path.py[:arg]`, the name rows show: `config[:arg]`) of `--config`, a config file or the
  name of one in experiments/configs."""
  path, colon, arg = spec.partition(":")
  if not os.path.exists(path) and not path.endswith(".py"):
    path = os.path.join(CONFIG_DIR, f"{path}.py")
  if not os.path.exists(path):
    raise ValueError(f"--config: no config file {path}")
  name = os.path.splitext(os.path.basename(path))[0]
  return path + colon + arg, name + colon + arg


def parse_weights(items: list[str]) -> list[float]:
  """The --weights as floats in [0, 1], in the order given (ValueError otherwise)."""
  weights = [studies.check_joint_weight(w, "--weights") for w in items]
  if not weights or len(set(weights)) != len(weights):
    raise ValueError(f"--weights must list distinct joint weights in [0, 1], got {items}")
  return weights


def parse_labels(items: list[str]) -> list[str]:
  """The --labels: 'all' or positive numbers (ValueError otherwise)."""
  bad = [x for x in items if x != "all" and not (x.isdigit() and int(x) > 0)]
  if bad or not items or len(set(items)) != len(items):
    raise ValueError(f"--labels must list distinct positive numbers or 'all', got {items}")
  return list(items)


def weighable() -> list[str]:
  """The configs in experiments/configs whose model has joint_weight: each at its default
  argument, or at the arguments of the classifiers it declares (genjax.studies)."""
  declared = {}
  for c in studies.classifiers(CONFIG_DIR):
    declared.setdefault(c.config, []).append(c.spec(c.datasets[0]))
  out = []
  for name, _ in cli.list_configs(CONFIG_DIR):
    for spec in declared.get(name, [os.path.join(CONFIG_DIR, f"{name}.py")]):
      try:
        config = studies.load_config(spec)
      except Exception:  # noqa: BLE001 - a config that does not load here weighs nothing
        continue
      if "joint_weight" in config.get("model", {}):
        out.append(name)
        break
  return out


def base_config(spec: str, name: str):
  """The config of `spec` (unlocked), refused in one line where its model has no
  joint_weight."""
  config = studies.load_config(spec)
  if "model" not in config or "joint_weight" not in config.model:
    raise ValueError(f"{name} has no joint likelihood to weigh (no model.joint_weight); the "
                     f"dial applies to {', '.join(weighable())}")
  return config


def point_dir(workdir: str, weight: float, label: str, seed: int | None = None) -> str:
  """A point's workdir (a fit family's seed `seed` of it)."""
  return os.path.join(workdir, f"w{weight:g}_l{label}" + ("" if seed is None else f"_s{seed}"))


def point_configs(base, weight: float, label: str, seeds: int, is_step: bool,
                  num_train: int | None) -> list:
  """The configs of one point: a step family's population, or a fit family's one per seed."""
  c = copy.deepcopy(base)
  c.model.joint_weight = weight
  n = -1 if label == "all" else int(label)
  if is_step:
    studies.with_labels(c, n)
    c.population = seeds
    return [c]
  if n > 0 and "train_size" not in c.data:
    raise ValueError(f"{c.family} has no data.train_size: only --labels=all applies to it")
  if "train_size" in c.data:
    c.data.train_size = 0 if n <= 0 else min(n, num_train)
  configs = []
  for i in range(seeds):
    member = copy.deepcopy(c)
    member.seed = base.seed + i
    configs.append(member)
  return configs


def run_point(base, name: str, weight: float, label: str, seeds: int, workdir: str,
              is_step: bool, num_train: int | None) -> dict:
  """Train (or read back) one point; its row."""
  configs = point_configs(base, weight, label, seeds, is_step, num_train)
  if is_step:
    results = studies.read_or_train(configs[0], point_dir(workdir, weight, label))
    members = studies.member_results(configs[0], point_dir(workdir, weight, label), results)
  else:
    members = [studies.read_or_train(c, point_dir(workdir, weight, label, i))
               for i, c in enumerate(configs)]
  error_mean, error_sd = studies.mean_sd([studies.test_error(r) for r in members])
  # A tagger's results have no log-loss (token accuracy and, for chunking, F1 instead).
  losses = [r["test"].get("log_loss") for r in members]
  log_loss_mean, log_loss_sd = (None, None) if None in losses else studies.mean_sd(losses)
  likelihoods = [studies.test_log_likelihood(r) for r in members]
  return {"config": name, "joint_weight": weight, "labels": label, "seeds": seeds,
          "error_mean": error_mean, "error_sd": error_sd, "log_loss_mean": log_loss_mean,
          "log_loss_sd": log_loss_sd,
          "test_log_likelihood": (None if None in likelihoods
                                  else studies.mean_sd(likelihoods)[0]),
          "steps": members[0].get("step") if is_step else None}


def label_order(label: str) -> float:
  return float("inf") if label == "all" else int(label)


def best(rows: list[dict]) -> dict:
  """{labels: the row of the lowest mean test error} (ties: the smaller joint weight)."""
  out = {}
  for r in sorted(rows, key=lambda r: r["joint_weight"]):
    if r["labels"] not in out or r["error_mean"] < out[r["labels"]]["error_mean"]:
      out[r["labels"]] = r
  return out


def markdown(rows: list[dict]) -> str:
  """The table (a row per point) and a line per number of labels naming the best weight."""
  name, seeds = rows[0]["config"], rows[0]["seeds"]
  lines = [f"{name}: test error and log-loss against the joint weight lambda (lambda log p(x, y) "
           f"+ (1 - lambda) log p(y | x)), mean +- sd over {seeds} seeds.", "",
           "| lambda | labels | test error (%) | log-loss (nats) | test log-likelihood (nats) "
           "| steps |",
           "| ---: | ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    ll = "" if r["test_log_likelihood"] is None else f"{r['test_log_likelihood']:.2f}"
    steps = "fit" if r["steps"] is None else str(r["steps"])
    loss = ("" if r["log_loss_mean"] is None
            else f"{r['log_loss_mean']:.4f} +- {r['log_loss_sd']:.4f}")
    lines.append(f"| {r['joint_weight']:g} | {r['labels']} | {100 * r['error_mean']:.2f} +- "
                 f"{100 * r['error_sd']:.2f} | {loss} | {ll} | {steps} |")
  lines.append("")
  for label, r in sorted(best(rows).items(), key=lambda kv: label_order(kv[0])):
    inside = 0 < r["joint_weight"] < 1
    lines.append(f"Best lambda with {label} labels: {r['joint_weight']:g} (test error "
                 f"{100 * r['error_mean']:.2f} %), "
                 f"{'strictly inside (0, 1)' if inside else 'an end point, not inside (0, 1)'}.")
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> None:
  """Test error against lambda, a line per number of labels, error bars one sd."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for label in sorted({r["labels"] for r in rows}, key=label_order):
    pts = sorted((r["joint_weight"], 100 * r["error_mean"], 100 * r["error_sd"])
                 for r in rows if r["labels"] == label)
    x, y, e = zip(*pts, strict=True)
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=f"{label} labels")
  ax.set_xlabel("joint weight lambda (0: discriminative, 1: generative)")
  ax.set_ylabel("test error (%)")
  ax.set_title(rows[0]["config"])
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def dial(config: str, workdir: str, weights: list[str], labels: list[str], seeds: int,
         budget_minutes: float | None = None) -> list[dict]:
  """Train (or read back) every point of the dial; write dial.json, dial.md and dial.png;
  return the rows (those of earlier invocations of the same study included)."""
  from genjax import family as family_lib
  from genjax import train, writers
  spec, name = config_spec(config)
  weight_values = parse_weights(weights)
  labels = parse_labels(labels)
  if seeds < 1:
    raise ValueError(f"--seeds must be at least 1, got {seeds}")
  if budget_minutes is not None and budget_minutes <= 0:
    raise ValueError(f"--budget_minutes must be positive, got {budget_minutes}")
  base = base_config(spec, name)
  path = os.path.join(workdir, RESULTS)
  rows = []
  if os.path.exists(path):
    with open(path) as f:
      rows = json.load(f)
    if rows and (rows[0]["config"], rows[0]["seeds"]) != (name, seeds):
      raise ValueError(f"{path} holds a dial of {rows[0]['config']} with {rows[0]['seeds']} "
                       "seeds: use another --workdir")
  is_step = family_lib.is_step(family_lib.load(base.family))
  num_train = None
  if not is_step and any(x != "all" for x in labels):
    num_train = len(train.load_split(base, "train"))
  if is_step and budget_minutes is not None:
    studies.set_num_steps(base, studies.budget_steps(base, workdir, budget_minutes)["steps"])
  for label in labels:
    for weight in weight_values:
      row = run_point(base, name, weight, label, seeds, workdir, is_step, num_train)
      rows = [r for r in rows if (r["joint_weight"], r["labels"]) != (weight, label)] + [row]
      print(f"lambda {weight:<5g} {label:>5s} labels: test error {100 * row['error_mean']:.2f} "
            f"+- {100 * row['error_sd']:.2f} % ({seeds} seeds)", flush=True)
      writers.write_json(path, rows)  # after every point: a stopped study keeps its rows
  rows.sort(key=lambda r: (label_order(r["labels"]), r["joint_weight"]))
  writers.write_json(path, rows)
  with open(os.path.join(workdir, "dial.md"), "w") as f:
    f.write(markdown(rows))
  plot(rows, os.path.join(workdir, "dial.png"))
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not FLAGS.config or not FLAGS.workdir:
    raise app.UsageError("--config and --workdir are required")
  dial(FLAGS.config, FLAGS.workdir, FLAGS.weights, FLAGS.labels, FLAGS.seeds,
       FLAGS.budget_minutes)
  print(open(os.path.join(FLAGS.workdir, "dial.md")).read())


if __name__ == "__main__":
  cli.run(main)
