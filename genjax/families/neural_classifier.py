"""Classifier family: state, and pure train/eval steps for cross-entropy (or JEM's blend)."""

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn
from flax import struct

from genjax import jem, optimizers, rng
from genjax.nn import classifiers
from genjax.nn.classifiers import ARCHS  # noqa: F401 (neural_classifier.ARCHS, as before)
from genjax.parallel import pmean_if
from genjax.state import ModelState, init_variables

OPTIMIZERS = optimizers.OPTIMIZERS
SCHEDULES = ("constant", "cosine", "step")
_BUFFER_STREAM = 1  # folded into create_state's key for the JEM replay buffer's noise
_SGLD_STREAM = 1  # folded into a training step's key for the JEM sampler
_SAMPLE_DROPOUT_STREAM = 2  # ... and for the dropout of the samples' forward pass


@struct.dataclass
class ClassifierState:
  """One network's state and the step count; for JEM training (`model.joint_weight` > 0) the
  SGLD replay buffer (buffer_size, H, W, C), in the state so that checkpoints carry it, and the
  objective's hyper-parameters."""

  step: jax.Array
  model: ModelState
  buffer: jax.Array | None = None
  jem_hparams: jem.JEMHParams = struct.field(pytree_node=False, default=jem.JEMHParams())


def build_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The network `config.model` describes (genjax.nn.classifiers.build)."""
  return classifiers.build(config.model)


def schedule_steps(config: ml_collections.ConfigDict) -> int:
  """How many steps a decaying learning rate decays over: `optim.decay_steps` if positive,
  else `train.num_steps`."""
  if config.optim.get("decay_steps", -1) > 0:
    return config.optim.decay_steps
  if config.train.num_steps > 0:
    return config.train.num_steps
  # The family sees only the config, not the data, so it cannot turn epochs into steps.
  raise ValueError(f"optim.schedule={config.optim.schedule!r} needs a length: set "
                   "train.num_steps or optim.decay_steps")


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """The config's learning rate as a function of the update count.

  `constant`; `cosine` from `learning_rate` to 0 over `schedule_steps`; `step` multiplies it
  by `step_factor` at each fraction `step_boundaries` of `schedule_steps`. A positive
  `warmup_steps` ramps linearly from 0 first (counted inside `schedule_steps`).
  """
  o = config.optim
  lr, warmup = o.learning_rate, o.get("warmup_steps", 0)
  if o.schedule not in SCHEDULES:
    raise ValueError(f"unknown optim.schedule {o.schedule!r}; expected one of {SCHEDULES}")
  if o.schedule == "constant":
    main = optax.constant_schedule(lr)
  else:
    n = schedule_steps(config) - warmup
    if n <= 0:
      raise ValueError(f"optim.warmup_steps ({warmup}) leaves no steps to decay over")
    if o.schedule == "cosine":
      main = optax.cosine_decay_schedule(lr, n)
    else:
      main = optimizers.step_decay(lr, [int(f * n) for f in o.step_boundaries], o.step_factor)
  return optimizers.with_warmup(main, lr, warmup)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam (decoupled weight decay: AdamW) or SGD with momentum (L2 added to the gradient), on
  `learning_rate_schedule` (see genjax.optimizers.build)."""
  return optimizers.build(config.optim, learning_rate_schedule(config))


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> ClassifierState:
  """Initialise the network and its optimiser from `config`, and with `model.joint_weight` > 0
  the JEM replay buffer (uniform noise, genjax.jem.init_buffer)."""
  hp = jem.hparams(config.model, config.data.batch_size)
  model = build_model(config)
  tx = make_optimizer(config)
  x = jnp.zeros((2, *config.data.image_shape), jnp.float32)
  # SGLD's samples would enter the batch statistics, and the paper drops batch norm; the
  # variables' shapes (traced, not compiled) say whether the network has it.
  if hp.joint_weight > 0.0 and "batch_stats" in jax.eval_shape(
      lambda: init_variables(model, key, x, train=False)):
    raise ValueError(f"model.joint_weight > 0 needs a network without batch norm; "
                     f"model.arch={config.model.arch!r} has it")
  variables = init_variables(model, key, x, train=False)
  buffer = None
  if hp.joint_weight > 0.0:
    buffer = jem.init_buffer(jax.random.fold_in(key, _BUFFER_STREAM), hp.buffer_size,
                             tuple(config.data.image_shape))
  else:  # the sampler's settings are unused: the state (and its compiled step) ignores them
    hp = jem.JEMHParams()
  return ClassifierState(step=jnp.zeros((), jnp.int32),
                         model=ModelState.create(model, variables, tx), buffer=buffer,
                         jem_hparams=hp)


def cross_entropy(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of integer labels."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxK, labels_B))


def accuracy(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Fraction of examples whose largest logit is at their label."""
  return jnp.mean(jnp.argmax(logits_BxK, axis=-1) == labels_B)


def train_step(state: ClassifierState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[ClassifierState, dict]:
  """One optimiser step on the mean cross-entropy of `batch`, or with `model.joint_weight` =
  lambda > 0 on JEM's (1 - lambda) * CE + lambda * (-log p(x, y)) (genjax.jem).

  The JEM loss is CE + lambda * (mean E(x_data) - mean E(x_sgld)): -log p(x, y) = CE - log p(x),
  whose gradient is estimated by the energy difference (log Z's gradient is minus the mean
  energy gradient under the model). The samples x_sgld come from genjax.jem.replay_sgld, run on
  the network in inference mode (the density the classifier defines at test time); the two
  energies go through the training-mode network as the cross-entropy does (the data's from the
  cross-entropy's own forward pass), so dropout enters both sides alike.

  Args:
    state: the classifier state.
    batch: {"image": float (B, H, W, C), "label": int32 (B,)}; under data parallelism, this
      device's slice.
    key: the run's base training key; the step's dropout key is folded from `state.step`, and
      each example's mask from its index in the global batch (genjax.nn.dropout), so a run on
      N devices drops what a one-device run drops.
    axis_name: the device axis to average gradients, metrics and batch statistics over.
  Returns:
    The new state and {"loss", "accuracy"} (with JEM also "cross_entropy", "energy_data",
    "energy_sample"), averaged over devices.
  """
  if state.jem_hparams.joint_weight > 0.0:
    return _jem_train_step(state, batch, key, axis_name)
  m = state.model
  dropout_key = rng.step_key(key, state.step)
  module = m.module.clone(bn_axis_name=axis_name)
  labels = batch["label"]

  def loss_fn(params):
    variables = {"params": params}
    if m.batch_stats:
      variables["batch_stats"] = m.batch_stats
      logits, updates = module.apply(variables, batch["image"], train=True,
                                     rngs={"dropout": dropout_key}, mutable=["batch_stats"])
      batch_stats = updates["batch_stats"]
    else:
      logits = module.apply(variables, batch["image"], train=True, rngs={"dropout": dropout_key})
      batch_stats = m.batch_stats
    return cross_entropy(logits, labels), (logits, batch_stats)

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
  model = m.apply_gradients(pmean_if(grads, axis_name), batch_stats=batch_stats)
  metrics = {"loss": loss, "accuracy": accuracy(logits, labels)}
  return state.replace(step=state.step + 1, model=model), pmean_if(metrics, axis_name)


def _jem_train_step(state: ClassifierState, batch: dict, key: jax.Array,
                    axis_name: str | None = None) -> tuple[ClassifierState, dict]:
  """train_step's JEM branch (joint_weight > 0; create_state refused batch norm)."""
  m, hp = state.model, state.jem_hparams
  step_key = rng.step_key(key, state.step)
  module = m.module.clone(bn_axis_name=axis_name)
  x, labels = batch["image"], batch["label"]
  x_sample, buffer = jem.replay_sgld(
      state.buffer, lambda x: module.apply({"params": m.params}, x, train=False),
      jax.random.fold_in(step_key, _SGLD_STREAM), x.shape[0], hp, axis_name)
  sample_dropout_key = jax.random.fold_in(step_key, _SAMPLE_DROPOUT_STREAM)

  def loss_fn(params):
    logits = module.apply({"params": params}, x, train=True, rngs={"dropout": step_key})
    logits_sample = module.apply({"params": params}, x_sample, train=True,
                                 rngs={"dropout": sample_dropout_key})
    ce = cross_entropy(logits, labels)
    e_data, e_sample = jnp.mean(jem.energy(logits)), jnp.mean(jem.energy(logits_sample))
    loss = ce + hp.joint_weight * (e_data - e_sample)
    return loss, {"logits": logits, "cross_entropy": ce, "energy_data": e_data,
                  "energy_sample": e_sample}

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
  model = m.apply_gradients(pmean_if(grads, axis_name))
  metrics = {"loss": loss, "accuracy": accuracy(aux.pop("logits"), labels), **aux}
  new = state.replace(step=state.step + 1, model=model, buffer=buffer)
  return new, pmean_if(metrics, axis_name)


def log_proba(state: ClassifierState, batch: dict) -> jax.Array:
  """log P(class | image) [B, K] of the network in inference mode (the classification
  evaluator's hook)."""
  m = state.model
  return jax.nn.log_softmax(m.module.apply(m.variables, batch["image"], train=False), axis=-1)


# The family's own metrics, then accuracy, log-loss and calibration of its predictions.
DEFAULT_EVALS = {"metrics": {}, "classification": {}}


def eval_step(state: ClassifierState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Loss, accuracy and error (1 - accuracy) on a batch, the network in inference mode.

  `key` is unused (inference is deterministic); it is part of the family interface.
  """
  del key
  m = state.model
  logits = m.module.apply(m.variables, batch["image"], train=False)
  acc = accuracy(logits, batch["label"])
  metrics = {"loss": cross_entropy(logits, batch["label"]), "accuracy": acc, "error": 1.0 - acc}
  return pmean_if(metrics, axis_name)


# Config building: every classifier config has the same sections, and differs in its network,
# learning rate and length.

DATASETS = ("mnist", "fashion_mnist")


def experiment_config(arg: str | None = None, *, model: dict, learning_rate: float,
                      num_steps: int, log_every: int, checkpoint_every: int,
                      warmup_steps: int = 0, jem_fields: bool = False) -> ml_collections.ConfigDict:
  """The config of a classifier (genjax.config's idiom): `arg` names the dataset (`mnist`, the
  default, or `fashion_mnist`), optionally followed by `,smoke` (20 steps, no warm-up); pixels
  in [0, 1], batch 128, the network `model` (arch and its fields), Adam with a cosine decay
  over `num_steps` after `warmup_steps` of linear warm-up. `jem_fields` adds genjax.jem's model
  fields (JEM training, off at their default joint_weight 0), the replay buffer holding 10,000
  images (a smoke run's: two batches)."""
  from genjax import config as gconfig
  dataset, smoke = gconfig.parse_dataset_arg(arg, default="mnist", choices=DATASETS)
  batch_size = 128
  if jem_fields:
    model = {**model, **jem.config_fields(buffer_size=2 * batch_size if smoke else 10_000)}
  data = gconfig.image_data(dataset, "unit", batch_size)  # nothing selected on validation
  optim = ml_collections.ConfigDict({
      "name": "adam",  # adam | sgd
      "learning_rate": learning_rate,
      "b1": 0.9, "b2": 0.999,  # adam
      "momentum": 0.9, "nesterov": False,  # sgd
      "weight_decay": 0.0,  # decoupled for adam (AdamW), added to the gradient for sgd
      "schedule": "cosine",  # constant | cosine | step
      "warmup_steps": 0 if smoke else warmup_steps,
      "decay_steps": -1,  # <= 0: train.num_steps
      "step_boundaries": (0.5, 0.75),  # step schedule: fractions of decay_steps ...
      "step_factor": 0.1})  # ... at each of which the learning rate is multiplied by this
  train = ml_collections.ConfigDict({
      "num_epochs": -1,
      "num_steps": 20 if smoke else num_steps,
      "log_every": 10 if smoke else log_every,
      "checkpoint_every": 10 if smoke else checkpoint_every,
      "checkpoint_every_seconds": 300.0,
      "keep_checkpoints": 2,
      "sample_every": 1_000_000,  # a classifier draws no samples
      "sample_grid": 5,
      "tensorboard": True,
      "progress": True})
  return gconfig.step_config("neural_classifier", data,
                             ml_collections.ConfigDict({"num_classes": 10, **model}), optim, train)
