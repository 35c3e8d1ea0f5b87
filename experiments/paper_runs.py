"""Every run that anchors genjax to a published figure, one command away on an accelerator.

  python experiments/paper_runs.py --list                      # each run, its anchor, its cost
  python experiments/paper_runs.py --run=vae_burda1,ssgan_100 --workdir=runs/paper
  python experiments/paper_runs.py --smoke --workdir=/tmp/paper_smoke   # every run, seconds each

The runs (RUNS): Burda et al.'s four VAE / IWAE rows (test NLL, k = 5000), Salimans et al.'s
semi-supervised GAN with 100 labels over 10 seeds, Kingma et al.'s M2 and M1+M2 at 100, 600,
1,000 and 3,000 labels, Larochelle & Bengio's four classification RBMs and Salakhutdinov &
Murray's RBM scored by AIS. Each is a config of experiments/configs at its full schedule (the
config's docstring quotes the anchor), with the anchor's seeds as one population
(`config.population`, genjax.population) where the paper reports a spread over seeds.

`--list` prints, per run, the anchor, the config, the seeds, the steps of its schedule, the
FLOPs of one step (the matrix products of the loop's own step, traced, not run: every Gibbs
sweep of a scan counted, genjax.flops.executed_dot_flops; times the population's members) and
an estimate of its device time: each step costs its FLOPs at `--utilisation` of
`--peak_tflops` (NVIDIA's dense float32 figure for an H100 SXM by default), but no less than
`--step_floor_us` (the latency of launching a small step's kernels), and M1+M2's pre-training
steps are added alike, one member after another. The defaults are assumptions, not
measurements; `experiments/benchmark.py` run on the accelerator measures a step's fraction of
its peak and its steps per second, which replace them. The evaluations (k = 5000 NLL, AIS) are
not counted. `--json` prints the same as JSON; `--run=NAMES` lists only those.

`--run=NAME[,NAME...]` (or `all`) trains each run into WORKDIR/NAME, an ordinary workdir
(genjax.train: resumable; a finished one is read back, one holding another config is refused),
its anchor's evaluator at the end of training (`nll`, `ais`: what experiments/evaluate.py runs
later otherwise), and writes WORKDIR/paper_runs.json and paper_runs.md: the figure reached
(mean +- sd over the seeds where seeded) beside the anchor. Rows of earlier invocations on the
same WORKDIR are kept, so the runs can be made a few at a time. A workdir that already holds
the finished run, scored by the anchor's evaluator (e.g. by train.py and evaluate.py), is read
back. `--smoke` makes every run (or those `--run` names) the same way at its config's smoke
scale (its `smoke` argument; one seed, only the anchor's evaluator) into WORKDIR/<smoke
config>, which the runs of one smoke config share (the four M2 runs train `m2_mnist:smoke`
once): the mechanics in seconds, not the figures.
"""

import dataclasses
import json
import os
import sys

from genjax import cli

cli.quiet_startup()

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "experiments", "configs")
TABLE = "paper_runs"


@dataclasses.dataclass(frozen=True)
class Throughput:
  """The assumed accelerator: its peak (TFLOP/s), the fraction of it a step reaches, the least
  time of one step (microseconds), and its name."""

  peak_tflops: float = 67.0
  utilisation: float = 0.25
  step_floor_us: float = 100.0
  accelerator: str = "NVIDIA H100 SXM, float32"

  def step_seconds(self, flops: float) -> float:
    """Seconds of one step of `flops` FLOPs: at the assumed utilisation, or the floor."""
    return max(flops / (self.peak_tflops * 1e12 * self.utilisation), self.step_floor_us * 1e-6)

  def describe(self) -> str:
    """The assumption in words."""
    return (f"{self.accelerator}: {self.peak_tflops:g} TFLOP/s peak at an assumed "
            f"{self.utilisation:g} of it, and at least {self.step_floor_us:g} us a step")


flags.DEFINE_bool("list", False, "Print every run: anchor, config, steps, FLOPs, device time.")
flags.DEFINE_bool("json", False, "With --list: print JSON instead of the table.")
flags.DEFINE_list("run", [], "Train these runs (names of --list, or `all`) into --workdir.")
flags.DEFINE_bool("smoke", False, "Every run (or those --run names) at smoke scale.")
flags.DEFINE_string("workdir", None, "Where each run's workdir and the table go.")
flags.DEFINE_float("peak_tflops", Throughput.peak_tflops, "Accelerator peak (TFLOP/s) of the "
                   "estimate (default: an H100 SXM's dense float32).")
flags.DEFINE_float("utilisation", Throughput.utilisation,
                   "Fraction of the peak a step is assumed to reach.")
flags.DEFINE_float("step_floor_us", Throughput.step_floor_us,
                   "Assumed least time of one step (microseconds).")
flags.DEFINE_string("accelerator", Throughput.accelerator,
                    "The name the estimate gives the accelerator of --peak_tflops.")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Metric:
  """A figure of results.json: its `test` key, how the tables name it, its unit and the factor
  from the stored value to the unit."""

  key: str
  label: str
  unit: str
  scale: float = 1.0
  evaluator: str = "classification"  # the evaluator that writes it (genjax.evals)


ERROR = Metric("error", "test error", "%", 100.0)
NLL = Metric("nll", "test NLL", "nats", evaluator="nll")
AIS = Metric("log_likelihood", "test log p(v), AIS", "nats", evaluator="ais")


@dataclasses.dataclass(frozen=True)
class Anchor:
  """A published figure: value (in its metric's unit), its sd over seeds (None where none is
  given), the number of seeds (None where the paper does not say) and where it is printed."""

  value: float
  source: str
  sd: float | None = None
  seeds: int | None = None

  def text(self, metric: Metric) -> str:
    spread = "" if self.sd is None else f" +- {self.sd:g}"
    seeds = ("" if self.sd is None else f", {self.seeds} seeds" if self.seeds
             else ", seeds not stated")
    return f"{self.value:g}{spread} {metric.unit}{seeds}"


@dataclasses.dataclass(frozen=True)
class PaperRun:
  """An anchored run: its name, the paper, the anchor, `CONFIG:ARG` of its config at the full
  schedule and at smoke scale, overrides ({dotted field: value}), its seeds (a population where
  > 1), the metric read from results.json, and the config field counting the steps its family
  pre-trains before the loop (genjax.families.ssvae's M1), if any."""

  name: str
  paper: str
  anchor: Anchor
  metric: Metric
  config: str
  smoke: str
  overrides: tuple = ()
  seeds: int = 1
  pretrain: str | None = None

  def spec(self, smoke: bool = False) -> str:
    """`path/to/config.py[:ARG]` at the full schedule or at smoke scale."""
    name, _, arg = (self.smoke if smoke else self.config).partition(":")
    return os.path.join(CONFIG_DIR, f"{name}.py") + (f":{arg}" if arg else "")

  def dirname(self, smoke: bool = False) -> str:
    """Its workdir's name: the run's, or at smoke scale its smoke config's (`m2_mnist`,
    `classrbm_mnist_hybrid`: the runs of one smoke config share its workdir)."""
    if not smoke:
      return self.name
    name, _, arg = self.smoke.partition(":")
    return "_".join([name, *(p for p in arg.split(",") if p and p != "smoke")])

  def command(self, root: str = "runs/paper") -> str:
    """The command that makes it (and its row of the table) in `root`."""
    return f"python experiments/paper_runs.py --run={self.name} --workdir={root}"

  def by_hand(self, root: str = "runs/paper") -> str | None:
    """The same run as experiments/train.py (then experiments/evaluate.py) commands, or None
    where train.py's command line cannot set its overrides and seeds (a config without that
    field: the semi-supervised VAEs have no `population`)."""
    from genjax import studies
    fields = dict(self.overrides, **({"population": self.seeds} if self.seeds > 1 else {}))
    config = studies.load_config(self.spec())
    if any(studies.field(config, k) is None for k in fields):
      return None
    name, _, arg = self.config.partition(":")
    spec = f"experiments/configs/{name}.py" + (f":{arg}" if arg else "")
    extra = "".join(f" --config.{k}={v}" for k, v in fields.items())
    workdir = f"{root}/{self.name}"
    text = f"python experiments/train.py --config={spec}{extra} --workdir={workdir}"
    if self.metric.evaluator != "classification":  # evaluate.py runs it after training
      text += (f" && python experiments/evaluate.py --workdir={workdir} "
               f"--evals={self.metric.evaluator}")
    return text


BURDA = "Burda et al. 2016, Table 1, k = 5000"
KINGMA = "Kingma et al. 2014, Table 1"
LAROCHELLE = "Larochelle & Bengio 2008, Table 1"
# Kingma et al.'s Table 1 (test error %, mean +- sd; the number of runs is not stated).
M2_ANCHORS = {100: (11.97, 1.71), 600: (4.94, 0.13), 1000: (3.60, 0.56), 3000: (3.92, 0.63)}
M1M2_ANCHORS = {100: (3.33, 0.14), 600: (2.59, 0.05), 1000: (2.40, 0.02), 3000: (2.18, 0.04)}
KINGMA_SEEDS = 5

RUNS = (
    PaperRun("vae_burda1", "VAE, 1 stochastic layer (Burda et al. 2016)", Anchor(86.76, BURDA),
             NLL, "vae_burda1", "vae_burda1:smoke"),
    PaperRun("iwae_burda1", "IWAE k = 50, 1 stochastic layer (Burda et al. 2016)",
             Anchor(84.78, BURDA), NLL, "iwae_burda1", "iwae_burda1:smoke"),
    PaperRun("vae_burda2", "VAE, 2 stochastic layers (Burda et al. 2016)", Anchor(85.33, BURDA),
             NLL, "vae_burda2", "vae_burda2:smoke"),
    PaperRun("iwae_burda2", "IWAE k = 50, 2 stochastic layers (Burda et al. 2016)",
             Anchor(82.90, BURDA), NLL, "iwae_burda2", "iwae_burda2:smoke"),
    PaperRun("ssgan_100", "semi-supervised GAN, feature matching, 100 labels (Salimans et al. "
             "2016)", Anchor(0.93, "Salimans et al. 2016, section 5", 0.065, 10), ERROR,
             "ssgan_mnist:100", "ssgan_mnist:smoke", seeds=10),
    *(PaperRun(f"m2_{n}", f"M2, {n:,} labels (Kingma et al. 2014)",
               Anchor(M2_ANCHORS[n][0], KINGMA, M2_ANCHORS[n][1]), ERROR, f"m2_mnist:{n}",
               "m2_mnist:smoke", seeds=KINGMA_SEEDS) for n in M2_ANCHORS),
    *(PaperRun(f"m1m2_{n}", f"M1+M2, {n:,} labels (Kingma et al. 2014)",
               Anchor(M1M2_ANCHORS[n][0], KINGMA, M1M2_ANCHORS[n][1]), ERROR, f"m1m2_mnist:{n}",
               "m1m2_mnist:smoke", seeds=KINGMA_SEEDS, pretrain="model.m1_steps")
      for n in M1M2_ANCHORS),
    *(PaperRun(f"classrbm_{v}", f"classification RBM, {v.replace('_', ' ')} (Larochelle & "
               "Bengio 2008)", Anchor(a, LAROCHELLE), ERROR, f"classrbm_mnist:{v}",
               f"classrbm_mnist:{v},smoke")
      for v, a in (("generative", 3.39), ("discriminative", 1.81), ("hybrid", 1.28),
                   ("sparse_hybrid", 1.16))),
    PaperRun("rbm_cd25", "RBM, 500 hidden units, CD-25 (Salakhutdinov & Murray 2008)",
             Anchor(-86.34, "Salakhutdinov & Murray 2008, Table 1"), AIS, "rbm_mnist",
             "rbm_mnist:smoke"),
)
BY_NAME = {r.name: r for r in RUNS}


def select(names: list[str]) -> list[PaperRun]:
  """The runs `names` names (`all`: every run), in RUNS's order. Raises ValueError naming the
  known runs for an unknown name."""
  if names == ["all"]:
    return list(RUNS)
  unknown = [n for n in names if n not in BY_NAME]
  if unknown:
    raise ValueError(f"unknown paper runs {unknown}; expected `all` or some of {list(BY_NAME)}")
  return [r for r in RUNS if r.name in names]


def run_config(run: PaperRun, smoke: bool = False):
  """The config `run` trains (unlocked, the progress bar off): its spec with its overrides, its
  seeds as a population, its anchor's evaluator run at the end of training. At smoke scale, its
  config's smoke variant with one seed, only the anchor's evaluator and no sample grid during
  training."""
  from genjax import evals, studies
  from genjax import family as family_lib
  config = studies.load_config(run.spec(smoke), dict(run.overrides))
  if run.seeds > 1 and not smoke:
    config.population = run.seeds
  evaluators = evals.resolve(config, family_lib.load(config.family))
  wanted = [n for n, o in evaluators.items()
            if o["type"] == run.metric.evaluator and o["split"] == "test"]
  if not wanted:
    evaluators[run.metric.evaluator] = {"type": run.metric.evaluator, "split": "test"}
    wanted = [run.metric.evaluator]
  for name in wanted:
    evaluators[name]["on_train_end"] = True
  if smoke:
    evaluators = {n: evaluators[n] for n in wanted}
    if config.train.num_steps > 0:
      config.train.sample_every = config.train.num_steps
  config.evals = evaluators
  return config


# ------------------------------------------------------------------------------ the estimate


def device_seconds(cost: dict, throughput: Throughput) -> float:
  """Estimated device seconds of a run's training from its `cost` (step_cost): the loop's steps
  (the population's members in one step), then each member's pre-training steps one after
  another."""
  loop = cost["steps"] * throughput.step_seconds(cost["members"] * cost["flops_per_step"])
  pretrain = (cost["members"] * cost["pretrain_steps"]
              * throughput.step_seconds(cost["pretrain_flops_per_step"]))
  return loop + pretrain


_SPLITS: dict = {}


def _train_split(config):
  """The training split of `config`, read once per dataset and preprocessing (the FLOP counts
  need its shapes; runs that share a split share the read)."""
  from genjax import train
  shared = ("name", "preprocess", "validation_size", "image_shape", "data_dir", "idx_dir",
            "classes")
  key = json.dumps({k: config.data.get(k) for k in shared}, sort_keys=True, default=str)
  if key not in _SPLITS:
    _SPLITS[key] = train.load_split(config, "train")
  return _SPLITS[key]


def step_cost(run: PaperRun) -> dict:
  """{members, steps, flops_per_step, pretrain_steps, pretrain_flops_per_step} of `run`: the
  loop's steps of its schedule and the FLOPs of one member's loop step, as the loop builds it
  (genjax.train.make_loop_step on the training input), traced, not compiled
  (genjax.flops.executed_dot_flops); where it pre-trains (`run.pretrain`), the steps of that
  field and the FLOPs of one pre-training step (the family's init_from_data traced with the
  field at 1)."""
  import jax

  from genjax import population, studies, train
  from genjax.data import pipeline
  from genjax.flops import executed_dot_flops
  from genjax.parallel import DataParallel
  config = run_config(run)
  members = population.size(config)
  with config.unlocked():
    config.population = 1
  family = train.load_family(config.family)
  key = jax.random.key(config.seed)
  split = _train_split(config)
  source = pipeline.make_input(config, DataParallel("none"), key, split)
  args = source.args(0)
  state = jax.eval_shape(lambda k: family.create_state(k, config), key)

  def metrics(state, args):
    return family.train_step(state, source.draw(jax.numpy.int32(0), key, *args), key)[1]

  acc = train.zero_accumulator(jax.eval_shape(metrics, state, args))
  jaxpr = jax.make_jaxpr(train.make_loop_step(family, source))(state, acc, key, key, *args)
  cost = {"members": members, "steps": train.total_steps(config, source.steps_per_epoch),
          "flops_per_step": executed_dot_flops(jaxpr.jaxpr), "pretrain_steps": 0,
          "pretrain_flops_per_step": 0}
  if run.pretrain:
    cost["pretrain_steps"] = int(studies.field(config, run.pretrain))
    studies.override(config, {run.pretrain: 1}, "the pre-training's FLOP count")
    state = jax.eval_shape(lambda k: family.create_state(k, config), key)
    pre = jax.make_jaxpr(lambda s: family.init_from_data(s, split, key))(state)
    cost["pretrain_flops_per_step"] = executed_dot_flops(pre.jaxpr)
  return cost


def listing(throughput: Throughput, runs: list[PaperRun] | None = None) -> list[dict]:
  """Every run (or `runs`) as a row of --list: name, paper, metric, unit, anchor, config,
  overrides, seeds, its cost (step_cost), FLOPs in all, estimated device seconds, command."""
  rows = []
  for run in runs or RUNS:
    cost = step_cost(run)
    total = cost["steps"] * cost["members"] * cost["flops_per_step"] + (
        cost["members"] * cost["pretrain_steps"] * cost["pretrain_flops_per_step"])
    rows.append({"name": run.name, "paper": run.paper, "metric": run.metric.label,
                 "unit": run.metric.unit, "anchor": dataclasses.asdict(run.anchor),
                 "anchor_text": run.anchor.text(run.metric), "config": run.config,
                 "overrides": dict(run.overrides), "seeds": run.seeds, **cost,
                 "total_flops": total, "device_seconds": device_seconds(cost, throughput),
                 "command": run.command(), "by_hand": run.by_hand()})
  return rows


def duration(seconds: float) -> str:
  """`4.2 h`, `16 min` or `40 s`."""
  if seconds >= 3600:
    return f"{seconds / 3600:.1f} h"
  return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def list_markdown(rows: list[dict], throughput: Throughput) -> str:
  """--list's table, what its estimate assumes, and each run's commands."""
  lines = [f"Device time: training only, estimated for {throughput.describe()} (assumptions, "
           "not measurements; experiments/benchmark.py on the accelerator measures them). "
           "FLOPs: the matrix products of one loop step, traced, times the seeds trained as "
           "one population.", "",
           "| run | anchor (paper) | config | seeds | steps | GFLOP / step | device time |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
  for r in rows:
    steps = f"{r['steps']:,}" + (f" + {r['pretrain_steps']:,} pre-training"
                                 if r["pretrain_steps"] else "")
    gflop = f"{r['members'] * r['flops_per_step'] / 1e9:.3g}"
    if r["pretrain_steps"]:
      gflop += f" (pre-training {r['pretrain_flops_per_step'] / 1e9:.3g})"
    lines.append(f"| `{r['name']}` | {r['metric']}: {r['anchor_text']} ({r['anchor']['source']}) "
                 f"| `{r['config']}` | {r['seeds']} | {steps} | {gflop} "
                 f"| {duration(r['device_seconds'])} |")
  total = sum(r["device_seconds"] for r in rows)
  lines += ["", f"In all: {duration(total)} of device time, one run after another.", "",
            "`python experiments/paper_runs.py --run=NAME --workdir=runs/paper` makes a run "
            "and its row of the table; by hand, as it trains them:", "", "```bash"]
  lines += [r["by_hand"] for r in rows if r["by_hand"]] + ["```"]
  without = [r["name"] for r in rows if not r["by_hand"]]
  if without:
    lines += ["", f"and {', '.join(without)} through paper_runs.py only (train.py's command "
              "line cannot set their seeds: their configs have no `population` field)."]
  return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the runs


def finished(config, workdir: str, metric: Metric) -> dict | None:
  """results.json of `config` in `workdir` where it holds a finished run of this config scored
  for `metric`, else None. The recorded config may differ in what does not change the run's
  results (logging, checkpoints, evaluators: genjax.workdir's extending fields), not in its
  length; a workdir of another config is refused (genjax.workdir)."""
  from genjax import workdir as workdir_lib
  path = os.path.join(workdir, "results.json")
  changes = workdir_lib.check(config, workdir)
  if {"train.num_steps", "train.num_epochs"} & set(changes) or not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  return results if metric.key in results.get("test", {}) else None


def train_run(run: PaperRun, config, workdir: str) -> dict:
  """The results.json of `run`'s `config` in `workdir`: read back where finished, else trained
  (resuming from its checkpoint) and scored by the anchor's evaluator."""
  from genjax import train
  results = finished(config, workdir, run.metric)
  return results if results is not None else train.train_and_evaluate(config, workdir)


def row(run: PaperRun, config, workdir: str, results: dict) -> dict:
  """A row of the table: the anchor and the figure reached (each seed's, their mean and sample
  sd, in the metric's unit), the steps, the training's wall clock and the workdir."""
  from genjax import studies
  members = studies.member_results(config, workdir, results)
  values = [run.metric.scale * float(m["test"][run.metric.key]) for m in members]
  mean, sd = studies.mean_sd(values)
  return {"name": run.name, "paper": run.paper, "metric": run.metric.label,
          "unit": run.metric.unit, "anchor": dataclasses.asdict(run.anchor),
          "anchor_text": run.anchor.text(run.metric), "config": run.config,
          "seeds": len(values), "values": values, "mean": mean, "sd": sd,
          "steps": int(members[0]["step"]), "train_seconds": results.get("train_seconds"),
          "backend": results.get("backend"), "workdir": os.path.abspath(workdir)}


def markdown(rows: list[dict], smoke: bool) -> str:
  """The table: each run's figure beside its anchor."""
  scale = ("smoke scale: the mechanics only, not the models' figures" if smoke
           else "each config's full schedule")
  lines = [f"Paper runs ({scale}); reached: mean +- sd over the seeds (one population).", "",
           "| run | metric | anchor | reached | seeds | steps | training (min) | workdir |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
  for r in rows:
    reached = f"{r['mean']:.4g}" + (f" +- {r['sd']:.2g}" if r["seeds"] > 1 else "")
    minutes = "" if r["train_seconds"] is None else f"{r['train_seconds'] / 60:.1f}"
    lines.append(f"| {r['name']} | {r['metric']} ({r['unit']}) | {r['anchor_text']} "
                 f"({r['anchor']['source']}) | {reached} | {r['seeds']} | {r['steps']:,} "
                 f"| {minutes} | {r['workdir']} |")
  return "\n".join(lines) + "\n"


def run_all(runs: list[PaperRun], workdir: str, smoke: bool = False) -> list[dict]:
  """Train (or read back) each of `runs` into workdir/NAME (at smoke scale workdir/<its smoke
  config>: PaperRun.dirname); write workdir/paper_runs.json and paper_runs.md after each;
  return the table's rows (earlier invocations' included)."""
  from genjax import writers
  path = os.path.join(workdir, f"{TABLE}.json")
  rows = []
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old["smoke"] != smoke:
      raise ValueError(f"{path} holds a table of {'smoke' if old['smoke'] else 'full'} runs: "
                       "use another --workdir")
    rows = old["rows"]
  # Every config is built before anything trains: a bad one fails in one line first.
  configs = {r.name: run_config(r, smoke) for r in runs}
  for run in runs:
    where = os.path.join(workdir, run.dirname(smoke))
    results = train_run(run, configs[run.name], where)
    new = row(run, configs[run.name], where, results)
    rows = [r for r in rows if r["name"] != run.name] + [new]
    rows.sort(key=lambda r: list(BY_NAME).index(r["name"]))
    print(f"{run.name:24s} {new['metric']}: {new['mean']:.4g} +- {new['sd']:.2g} "
          f"{new['unit']} ({new['seeds']} seeds); anchor {new['anchor_text']}", flush=True)
    writers.write_json(path, {"smoke": smoke, "rows": rows})
    with open(os.path.join(workdir, f"{TABLE}.md"), "w") as f:
      f.write(markdown(rows, smoke))
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.list:
    throughput = Throughput(FLAGS.peak_tflops, FLAGS.utilisation, FLAGS.step_floor_us,
                            FLAGS.accelerator)
    if min(throughput.peak_tflops, throughput.utilisation) <= 0 or throughput.utilisation > 1:
      raise ValueError("--peak_tflops must be positive and --utilisation in (0, 1]")
    rows = listing(throughput, select(FLAGS.run) if FLAGS.run else None)
    if FLAGS.json:
      print(json.dumps({"throughput": dataclasses.asdict(throughput), "runs": rows}))
    else:
      print(list_markdown(rows, throughput), end="")
    return
  if not FLAGS.run and not FLAGS.smoke:
    raise app.UsageError("give --list, --run=NAME[,NAME...] or --smoke")
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  runs = select(FLAGS.run) if FLAGS.run else list(RUNS)
  rows = run_all(runs, FLAGS.workdir, FLAGS.smoke)
  print(markdown(rows, FLAGS.smoke), file=sys.stdout)
  print(f"wrote {os.path.join(FLAGS.workdir, TABLE)}.json and .md")


if __name__ == "__main__":
  cli.run(main)
