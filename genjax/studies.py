"""What the study scripts share: classifier declarations, configs with overrides, runs read back.

experiments/compare.py, label_efficiency.py and dial.py train many configs into sub-workdirs of
one study. Each point is an ordinary workdir, trained by the generic loop (genjax.train): a
finished one is read back from its results.json (`read_or_train`), an unfinished one resumes
from its checkpoint, and one holding another config is refused (genjax.workdir).

A classifier config declares its row of experiments/compare.py's table with a module-level
constant (read without importing the config, so it must be a literal):

  CLASSIFIER = {"name": "Bernoulli naive Bayes", "side": "generative"}

with `side` one of SIDES, and optional keys `datasets` (those it runs on; default every dataset
of `DATASETS`) and `arg` (its config argument, `{dataset}` replaced by the dataset and
`{variant}` by the variant; default "{dataset}"). A config with several rows (variants of one
model) declares a list of such dicts, each with a `variant` that names it (`CONFIG:VARIANT` on
the command line). A declaration stays out of config.json, so it
never changes a workdir's provenance.
"""

import ast
import copy
import dataclasses
import json
import math
import os

import ml_collections

from genjax import cli

# A hybrid trains a blend of the two objectives (0 < model.joint_weight < 1).
SIDES = ("generative", "discriminative", "hybrid")
DATASETS = ("mnist", "fashion_mnist", "iris", "wine", "breast_cancer", "digits")
DECLARATION = "CLASSIFIER"
_KEYS = {"name", "side", "datasets", "arg", "variant"}


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A classifier row that a config declares: its config file's folder and name, display
  name, side (generative or discriminative), the datasets it runs on, its config argument
  template and its variant (None for a config with one row)."""

  config_dir: str
  config: str
  name: str
  side: str
  datasets: tuple[str, ...] = DATASETS
  arg: str = "{dataset}"
  variant: str | None = None

  @property
  def key(self) -> str:
    """How the command line names it: `CONFIG` or `CONFIG:VARIANT`."""
    return self.config if self.variant is None else f"{self.config}:{self.variant}"

  def spec(self, dataset: str, smoke: bool = False) -> str:
    """`path/to/config.py:ARG` of this classifier on `dataset` (its smoke variant)."""
    arg = self.arg.format(dataset=dataset, variant=self.variant) + (",smoke" if smoke else "")
    return os.path.join(self.config_dir, f"{self.config}.py") + f":{arg.strip(',')}"


def declaration(path: str):
  """The literal value of a config file's CLASSIFIER constant, or None where it has none.
  Raises ValueError where it is not a literal."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == DECLARATION):
      try:
        return ast.literal_eval(node.value)
      except ValueError:
        raise ValueError(f"{path}: {DECLARATION} must be a literal dict or list of dicts "
                         "(it is read without importing the config)") from None
  return None


def _classifier(config_dir: str, config: str, entry, several: bool) -> Classifier:
  where = f"{config}.py's {DECLARATION}"
  if not isinstance(entry, dict) or not {"name", "side"} <= set(entry) or set(entry) - _KEYS:
    raise ValueError(f"{where} must be a dict with 'name' and 'side' and optionally "
                     f"{sorted(_KEYS - {'name', 'side'})}, got {entry!r}")
  if entry["side"] not in SIDES:
    raise ValueError(f"{where}: side must be one of {SIDES}, got {entry['side']!r}")
  if several != ("variant" in entry):
    raise ValueError(f"{where}: a list of rows names each by 'variant'; a single row has none")
  datasets = tuple(entry.get("datasets", DATASETS))
  return Classifier(config_dir, config, entry["name"], entry["side"], datasets,
                    entry.get("arg", "{dataset}"), entry.get("variant"))


def classifiers(config_dir: str) -> list[Classifier]:
  """Every classifier the configs in `config_dir` declare, by config name, then in the order
  a config lists its variants."""
  out = []
  for name, _ in cli.list_configs(config_dir):
    value = declaration(os.path.join(config_dir, f"{name}.py"))
    if value is None:
      continue
    entries = value if isinstance(value, (list, tuple)) else [value]
    several = isinstance(value, (list, tuple))
    out.extend(_classifier(config_dir, name, e, several) for e in entries)
  return out


def parse_model(spec: str) -> tuple[str, dict[str, str]]:
  """(`CONFIG[:VARIANT]`, {dotted field: value text}) of `NAME@field.path=value,...`; a bare
  field name means `model.FIELD`. Raises ValueError for a malformed override."""
  name, at, rest = spec.partition("@")
  overrides = {}
  for item in filter(None, (p.strip() for p in rest.split(","))):
    field, eq, value = item.partition("=")
    if not eq or not field.strip() or not value.strip():
      raise ValueError(f"bad override {item!r} in {spec!r}; expected NAME@field=value,...")
    field = field.strip()
    overrides[field if "." in field else f"model.{field}"] = value.strip()
  if (at and not overrides) or not name.strip():
    raise ValueError(f"bad model {spec!r}; expected NAME or NAME@field=value,...")
  return name.strip(), overrides


def join_models(items: list[str]) -> list[str]:
  """`NAME@field=value,...` specs from a comma-split flag list: an item with `=` and no `@`
  continues the spec before it (`["nb@a=1", "b=2"]` -> `["nb@a=1,b=2"]`)."""
  out = []
  for item in items:
    if out and "=" in item and "@" not in item and "@" in out[-1]:
      out[-1] += "," + item
    else:
      out.append(item)
  return out


def _parse_value(text: str, current):
  """A command-line value as the field's type takes it: a Python literal where it is one
  (numbers, booleans, None, tuples), else the text."""
  if isinstance(current, str):
    return text
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def override(config: ml_collections.ConfigDict, overrides: dict, where: str) -> None:
  """Set dotted fields of `config` from {field: value text or value}. An unknown field or a
  value of the wrong type is a ValueError naming the field and `where` (the config)."""
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
      if not isinstance(node, ml_collections.ConfigDict) or p not in node:
        node = None
        break
      node = node[p]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      why = (" (its model has no joint likelihood to weigh)" if dotted == "model.joint_weight"
             else "")
      raise ValueError(f"{where} has no field {dotted!r}{why}")
    if isinstance(value, str):
      value = _parse_value(value, node[leaf])
    if dotted == "model.joint_weight":
      check_joint_weight(value, where)
    try:
      with node.unlocked():
        node[leaf] = value
    except TypeError as e:
      raise ValueError(f"{where}: {dotted}={value!r} has the wrong type ({e})") from None


def check_joint_weight(value, where: str = "model.joint_weight") -> float:
  """`value` as a float in [0, 1] (the weight of log p(x, y) against log p(y | x)); a
  ValueError naming `where` otherwise."""
  try:
    w = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{where}: joint_weight must be a number in [0, 1], got {value}") from None
  if not 0.0 <= w <= 1.0:
    raise ValueError(f"{where}: joint_weight must be in [0, 1] (1 generative, 0 "
                     f"discriminative), got {value}")
  return w


def load_config(spec: str, overrides: dict | None = None) -> ml_collections.ConfigDict:
  """The config of `path.py[:arg]` with `overrides` set, unlocked, the progress bar off."""
  from genjax import config as gconfig
  config = gconfig.load(spec)
  config.unlock()
  override(config, overrides or {}, os.path.basename(spec))
  if "train" in config and "progress" in config.train:
    config.train.progress = False
  return config


def finished_results(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """results.json of `config` in `workdir` where the workdir holds finished results of this
  very config, else None. A workdir of another config is refused (genjax.workdir)."""
  from genjax import workdir as workdir_lib
  results_path = os.path.join(workdir, "results.json")
  changes = workdir_lib.check(config, workdir)
  if not changes and workdir_lib.recorded_config(workdir) and os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
    if "accuracy" in results.get("test", {}):
      return results
  return None


def refuse_other_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """A ValueError naming the changed fields where `workdir` holds a run of another config (a
  study run again with other settings into the same folder), for a study to call on each of
  its points before it trains any."""
  from genjax import workdir as workdir_lib
  try:
    workdir_lib.check(config, workdir)
  except workdir_lib.WorkdirError:
    changed = workdir_lib.diff(workdir_lib.recorded_config(workdir), config.to_dict())
    shown = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
    raise ValueError(f"{workdir} holds a run with other settings ({shown}): use another "
                     "--workdir") from None


def read_or_train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """results.json of `config` in `workdir`: read back when the workdir holds finished
  results of this very config (finished_results), else trained or fitted now (resuming from
  its checkpoint). A workdir of another config is refused (genjax.workdir)."""
  from genjax import train
  results = finished_results(config, workdir)
  return results if results is not None else train.train_and_evaluate(config, workdir)


def member_results(config: ml_collections.ConfigDict, workdir: str, results: dict) -> list:
  """Each member's results.json of a population run (its own results for one run)."""
  from genjax import population
  size = population.size(config)
  if size == 1:
    return [results]
  out = []
  for i in range(size):
    with open(os.path.join(population.member_dir(workdir, i), "results.json")) as f:
      out.append(json.load(f))
  return out


def test_error(results: dict) -> float:
  """The test error (fraction) of a classifier's results.json; a tagger's is one minus its
  token accuracy, which the sequence evaluators give in percent."""
  test = results.get("test", {})
  if "error" in test:
    return test["error"]
  if "num_tokens" in test:  # genjax.evals.sequences: tagging, chunking
    return 1.0 - test["accuracy"] / 100.0
  return 1.0 - test["accuracy"]


def test_log_likelihood(results: dict) -> float | None:
  """The test log-likelihood in nats per example where an evaluator gave one (`ais`'s
  log_likelihood, or minus `likelihood`'s nll), else None."""
  test = results.get("test", {})
  if "log_likelihood" in test:
    return float(test["log_likelihood"])
  if "nll" in test:
    return -float(test["nll"])
  return None


def mean_sd(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof 1; 0 for one value)."""
  mean = sum(values) / len(values)
  sd = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1 else 0.0)
  return mean, sd


def set_num_steps(c: ml_collections.ConfigDict, steps: int) -> None:
  """Train a step family's config `steps` steps: its schedule's decay placed in them (and with
  it a weight average's horizon, model.ema_horizon, which is a fraction of the schedule)."""
  c.train.num_epochs, c.train.num_steps = -1, steps
  c.train.log_every = min(c.train.log_every, steps)
  c.train.checkpoint_every = c.train.log_every * max(1, steps // c.train.log_every)
  if c.optim.get("decay_steps", -1) > 0:
    c.optim.decay_steps = steps


def with_labels(c: ml_collections.ConfigDict, num_labels: int) -> None:
  """A step family's config trained on `num_labels` balanced labels (<= 0: all), with its own
  semi-supervised setting; labelled batches no larger than the labelled set."""
  c.data.num_labels = num_labels
  if num_labels > 0:
    if c.data.get("semi_supervised", False):
      c.data.labelled_batch_size = min(c.data.get("labelled_batch_size", c.data.batch_size),
                                       num_labels)
    else:
      c.data.batch_size = min(c.data.batch_size, num_labels)


def steps_per_second(config: ml_collections.ConfigDict, window_seconds: float = 2.0,
                     windows: int = 3) -> float:
  """Training steps per second of a step family's config on this machine: the loop's step on
  real batches (genjax.train.make_loop_step, one device; a population's members in one step, as
  the loop trains them: config.population), the median of `windows` timed windows after
  compilation and warm-up (genjax.timing)."""
  import jax

  from genjax import population, timing, train
  from genjax.parallel import DataParallel
  family = train.load_family(config.family)
  dp = DataParallel("none")
  # The loop's own members and input (genjax.train), so that the probe steps as the run will.
  members = train._Members.of(config, "")
  source = train._make_input(members, dp, train.load_split(config, "train"))
  state = members.stack([family.create_state(k.init, c)
                         for c, k in zip(members.configs, members.keys, strict=True)])
  batch_spec = {k: jax.ShapeDtypeStruct((2, *v.shape), v.dtype)
                for k, v in source.element_spec.items()}
  metric_shapes = jax.eval_shape(lambda s, b, k: family.train_step(s, b, k)[1],
                                 members.split(state)[0], batch_spec, members.keys[0].train)
  loop_fn = train.make_loop_step(family, source)
  if members.stacked:
    loop_fn = population.member_step(loop_fn, source.member_axes)
  loop_step = dp.wrap(loop_fn, "rrrr" + source.kinds, "rr", donate_argnums=(0, 1))
  loop = {"state": state, "step": 0,
          "acc": members.stack([train.zero_accumulator(metric_shapes)] * len(members.configs))}
  train_key = members.stack([k.train for k in members.keys])
  data_key = members.stack([k.data for k in members.keys])

  def one_step():
    loop["state"], loop["acc"] = loop_step(loop["state"], loop["acc"], train_key, data_key,
                                           *source.args(loop["step"]))
    loop["step"] += 1
    return loop["acc"]

  seconds = timing.time_interleaved({"step": one_step}, windows, window_seconds)["step"]
  return 1.0 / seconds


def pretrain_steps_per_second(config: ml_collections.ConfigDict, field: str, steps: int = 100,
                              window_seconds: float = 2.0, windows: int = 3) -> float:
  """Pre-training steps per second of a config whose family trains part of its model in
  `init_from_data` before the loop, for `field` (a dotted config field: `model.m1_steps`)
  steps, one member after another (genjax.train): the median of `windows` timed windows of
  that hook with `field` set to `steps`, for one member, after compilation and warm-up."""
  from genjax import timing, train
  family = train.load_family(config.family)
  config = copy.deepcopy(config)
  with config.unlocked():
    config.population = 1
  override(config, {field: steps}, "the pre-training probe")
  keys = train.RunKeys.from_seed(config.seed)
  split = train.load_split(config, "train")
  state = family.create_state(keys.init, config)
  seconds = timing.time_interleaved(
      {"pretrain": lambda: family.init_from_data(state, split, keys.init)}, windows,
      window_seconds)["pretrain"]
  return steps / seconds


BUDGET_FILE = "budget.json"


def field(config: ml_collections.ConfigDict, dotted: str):
  """The value of a dotted field of `config` (`model.m1_steps`); None where it has none."""
  node = config
  for name in dotted.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      return None
    node = node[name]
  return node


def schedule_steps(config: ml_collections.ConfigDict) -> int:
  """The loop steps of a step family's config as it is (train.num_steps, or num_epochs of its
  training input's epochs)."""
  import jax

  from genjax import train
  from genjax.data import pipeline
  from genjax.parallel import DataParallel
  source = pipeline.make_input(config, DataParallel("none"), jax.random.key(0),
                               train.load_split(config, "train"))
  return train.total_steps(config, source.steps_per_epoch)


def budget_steps(config: ml_collections.ConfigDict, workdir: str, minutes: float,
                 pretrain: str | None = None) -> dict:
  """{minutes, steps, steps_per_sec, backend}: the steps of `minutes` minutes of a step family's
  training here (a population's members together: steps_per_second). Read from `workdir`'s
  budget.json when it was timed for the same budget, else timed now and recorded there, so
  that a later invocation makes the very same config and reads the finished run back.

  `pretrain` names a dotted field counting the steps each member trains in the family's
  init_from_data before the loop (`model.m1_steps`: M1 of M1+M2). Where `config` sets it above
  0 the minutes cover those steps too: the config's own schedule, its pre-training and its loop
  steps, shrunk alike in time to fit (both timed here: pretrain_steps_per_second), recorded as
  `pretrain` (the field), `pretrain_steps` and `pretrain_steps_per_sec`; apply_budget sets
  both."""
  import jax

  from genjax import population
  from genjax.writers import write_json
  own_pretrain = (field(config, pretrain) or 0) if pretrain else 0
  budget = recorded_budget(workdir)
  if budget is not None and (budget["minutes"], budget.get("pretrain")) == (
      minutes, pretrain if own_pretrain else None):
    return budget
  rate = steps_per_second(config)
  budget = {"minutes": minutes, "steps": max(1, int(minutes * 60 * rate)),
            "steps_per_sec": rate, "backend": jax.default_backend()}
  if own_pretrain > 0:
    pretrain_rate = pretrain_steps_per_second(config, pretrain)
    own_loop = schedule_steps(config)
    # Members pre-train one after another; the loop trains them together.
    seconds = own_pretrain * population.size(config) / pretrain_rate + own_loop / rate
    scale = minutes * 60 / seconds
    budget.update(steps=max(1, int(scale * own_loop)), pretrain=pretrain,
                  pretrain_steps=max(1, int(scale * own_pretrain)),
                  pretrain_steps_per_sec=pretrain_rate)
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, BUDGET_FILE), budget)
  return budget


def apply_budget(config: ml_collections.ConfigDict, budget: dict) -> None:
  """Train `config` for a budget of budget_steps: its loop steps (set_num_steps) and, where
  the budget has them, its pre-training steps."""
  set_num_steps(config, budget["steps"])
  if budget.get("pretrain"):
    override(config, {budget["pretrain"]: budget["pretrain_steps"]}, "the budget")


def recorded_budget(workdir: str) -> dict | None:
  """The budget.json of `workdir` (budget_steps), or None where it has none."""
  path = os.path.join(workdir, BUDGET_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
