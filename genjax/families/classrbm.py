"""Classification RBM (Larochelle & Bengio 2008): generative, discriminative, hybrid and sparse.

The model is genjax.structured.classrbm's RBM over (x, one-hot y). Each labelled example
contributes the gradient of

  joint_weight * log p(x, y) + (1 - joint_weight) * log p(y | x),

log p(x, y)'s by CD-k or persistent CD over the joint (x, y, h) (genjax.structured.classrbm's
block Gibbs sampler, y drawn from its softmax conditional) and log p(y | x)'s exactly (through
the free energy). joint_weight = 1 is the generative classification RBM, 0 the discriminative
one (DRBM), and the papers' hybrid objective log p(y | x) + alpha log p(x, y) is the same
gradient direction as joint_weight = alpha / (1 + alpha) with the learning rate multiplied by
1 + alpha (alpha = 0.01: joint_weight = 0.0099). With `data.semi_supervised` (and
`data.num_labels` labels kept) each step also adds `model.unlabelled_weight` beta times the CD
estimate of the gradient of mean log p(x) over an unlabelled batch (y summed out in the data's
statistics, sampled in the chains'), as in Larochelle, Mandel, Pascanu & Bengio (JMLR 2012).
`model.sparsity` delta is subtracted from the hidden biases after every update (the 2008
paper's sparse hybrid).

Gradients are batch means; the update is rbm's SGD (ascent) with optional momentum, L2 weight
decay on W and U and a learning rate that decays linearly to zero over the last part of the
run (genjax.families.rbm). The step is pure: its noise is folded from the run key and
`state.step`, and drawn per example of the global batch (genjax.rng), so N devices take the
steps of one device with the same global batch; persistent chains are global and each device
advances its slice.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from genjax import latent, rng
from genjax.families import rbm
from genjax.parallel import device_index, pmean_if
from genjax.structured import classrbm as core
from genjax.structured.classrbm import ClassRBMParams


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section of a classification RBM config, every field present."""
  c = ml_collections.ConfigDict({
      "num_hidden": 1500,
      "num_classes": 10,
      # Weight of log p(x, y) against log p(y | x) in [0, 1]: 1 generative, 0 discriminative.
      "joint_weight": 0.0099,
      "unlabelled_weight": 0.0,  # beta of the semi-supervised log p(x) term (data.semi_supervised)
      "sparsity": 0.0,  # delta subtracted from the hidden biases after each update
      "method": "cd",  # cd | pcd (persistent chains in the state)
      "cd_k": 1,  # Gibbs steps per update
      "init_scale": 0.01,  # W, U ~ N(0, init_scale^2)
      "visible_bias_init": "data",  # data: log(p / (1 - p)) of the training pixels | zero
      "sample_gibbs_steps": 1000,  # block Gibbs steps (labels clamped) behind each sample grid
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no classification RBM model field {name!r}")
    c[name] = value
  return c


def optim_config(**overrides) -> ml_collections.ConfigDict:
  """The `optim` section: rbm's SGD; by default plain SGD as the papers (no momentum, no weight
  decay), the learning rate constant for the first half of the run, then decaying to 0."""
  defaults = {"initial_momentum": 0.0, "final_momentum": 0.0, "momentum_switch_step": 0,
              "weight_decay": 0.0}
  return rbm.optim_config(**{**defaults, **overrides})


@struct.dataclass
class ClassRBMHParams:
  """What the step closes over (static: part of the compiled program)."""

  sgd: rbm.RBMHParams = struct.field(pytree_node=False)  # method, cd_k and the SGD schedule
  joint_weight: float = struct.field(pytree_node=False, default=1.0)
  unlabelled_weight: float = struct.field(pytree_node=False, default=0.0)
  sparsity: float = struct.field(pytree_node=False, default=0.0)
  semi_supervised: bool = struct.field(pytree_node=False, default=False)
  num_classes: int = struct.field(pytree_node=False, default=10)


@struct.dataclass
class ClassRBMState:
  """Parameters, their momentum velocities, the persistent chains (x, y) and the step count."""

  step: jax.Array
  params: ClassRBMParams
  velocity: ClassRBMParams
  chains_x: jax.Array  # (labelled batch, D) persistent fantasy particles (pcd); unused for cd
  chains_y: jax.Array  # (labelled batch, C) their one-hot labels
  hparams: ClassRBMHParams = struct.field(pytree_node=False)


def _hparams(config: ml_collections.ConfigDict) -> ClassRBMHParams:
  m, d = config.model, config.data
  if not 0.0 <= m.joint_weight <= 1.0:
    raise ValueError(f"model.joint_weight must be in [0, 1] (1: generative, 0: discriminative), "
                     f"got {m.joint_weight}")
  if m.unlabelled_weight < 0.0:
    raise ValueError(f"model.unlabelled_weight must be >= 0, got {m.unlabelled_weight}")
  if m.sparsity < 0.0:
    raise ValueError(f"model.sparsity must be >= 0, got {m.sparsity}")
  if m.num_classes < 2:
    raise ValueError(f"model.num_classes must be at least 2, got {m.num_classes}")
  semi = bool(d.get("semi_supervised", False))
  if semi and d.get("num_labels", -1) <= 0:
    raise ValueError("data.semi_supervised needs unlabelled data: set data.num_labels > 0 "
                     f"(got {d.get('num_labels', -1)}: every example labelled)")
  if m.unlabelled_weight > 0.0 and not semi:
    raise ValueError(f"model.unlabelled_weight {m.unlabelled_weight} needs unlabelled batches: "
                     "set data.semi_supervised = True and data.num_labels > 0, or 0")
  if config.model.visible_bias_init not in ("data", "zero"):
    raise ValueError(f"unknown model.visible_bias_init {config.model.visible_bias_init!r}; "
                     "expected 'data' or 'zero'")
  # rbm's checks of model.method, model.cd_k and the learning-rate schedule.
  return ClassRBMHParams(sgd=rbm._hparams(config), joint_weight=float(m.joint_weight),
                         unlabelled_weight=float(m.unlabelled_weight), sparsity=float(m.sparsity),
                         semi_supervised=semi, num_classes=m.num_classes)


def hybrid_joint_weight(alpha: float) -> float:
  """The joint_weight of the papers' hybrid objective log p(y | x) + alpha log p(x, y):
  alpha / (1 + alpha) (the same gradient direction; the step is 1 / (1 + alpha) times as long)."""
  return alpha / (1.0 + alpha)


def parse_arg(arg: str | None, variants: tuple[str, ...]) -> tuple[str, int, bool]:
  """(variant, num_labels (-1: all), smoke) of `VARIANT[,NUM_LABELS][,smoke]`."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  named = [p for p in parts if p in variants]
  numbers = [p for p in parts if p.isdigit()]
  unknown = [p for p in parts if p not in variants and p not in numbers and p != "smoke"]
  if (unknown or len(named) != 1 or parts[0] != named[0] or len(numbers) > 1
      or parts.count("smoke") > 1 or (numbers and int(numbers[0]) <= 0)):
    raise ValueError(f"unknown config argument {arg!r}; expected VARIANT[,NUM_LABELS][,smoke] "
                     f"with VARIANT one of {variants} and NUM_LABELS a positive number")
  return named[0], (int(numbers[0]) if numbers else -1), "smoke" in parts


NUM_TRAIN = 60_000  # MNIST's training images (the validation split comes out of them)


def experiment_config(arg: str | None = None, *, variants: dict, num_epochs: int = 50,
                      batch_size: int = 100, validation_size: int = 10_000,
                      unlabelled_weight: float = 0.1) -> ml_collections.ConfigDict:
  """The config of a classification RBM on dynamically binarised MNIST (genjax.config's idiom).

  `variants` maps each variant name to (hidden units, joint_weight, sparsity, learning rate);
  `arg` is `VARIANT[,NUM_LABELS][,smoke]` (parse_arg). The last `validation_size` training
  images are the validation split (classification scores in results.json's `validation`);
  `num_epochs` of the others in batches of `batch_size`, plain SGD (optim_config) at the
  variant's rate, logged every epoch, checkpointed every 10, one grid at the end; the `ais`
  section behind the test log p(x). NUM_LABELS keeps that many balanced labels and trains
  semi-supervised, each step adding `unlabelled_weight` times the CD-1 estimate of the gradient
  of log p(x) on an unlabelled batch. `smoke`: 20 steps of a 16-unit RBM in batches of 20.
  """
  from genjax import config as gconfig
  variant, num_labels, smoke = parse_arg(arg, tuple(variants))
  hidden, joint_weight, sparsity, learning_rate = variants[variant]
  steps_per_epoch = (NUM_TRAIN - validation_size) // batch_size
  data = gconfig.image_data("mnist", preprocess="binarize_dynamic", batch_size=batch_size,
                            validation_size=validation_size)
  model = model_config(num_hidden=hidden, joint_weight=joint_weight, sparsity=sparsity)
  if num_labels > 0:
    gconfig.few_labels(data, num_labels, semi_supervised=True,
                       labelled_batch_size=min(batch_size, num_labels))
    model.unlabelled_weight = unlabelled_weight
  train = gconfig.train_schedule(-1, log_every=steps_per_epoch,
                                 checkpoint_every=10 * steps_per_epoch,
                                 sample_every=num_epochs * steps_per_epoch, sample_grid=10)
  train.num_steps = num_epochs * steps_per_epoch
  c = gconfig.step_config("classrbm", data, model, optim_config(learning_rate=learning_rate),
                          train)
  c.ais = rbm.ais_config()
  c.evals = ml_collections.ConfigDict({
      "metrics": {},
      "classification": {},
      "validation": {"type": "classification", "split": "validation"},
      "grids": {},
      # AIS test log-likelihood (log p(x), the label summed out): experiments/evaluate.py only.
      "ais": {"on_train_end": False},
  })
  if smoke:
    c.data.batch_size = 20
    if num_labels > 0:
      c.data.labelled_batch_size = min(20, num_labels)
    c.model.num_hidden = 16
    c.model.sample_gibbs_steps = 10
    c.train.num_steps = 20
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.train.sample_every = 20
    c.train.sample_grid = 4
    gconfig.set_smoke_evals(c)
  return c


def _chains(key: jax.Array, b_D: jax.Array, num: int, num_classes: int) -> tuple:
  k_x, k_y = jax.random.split(key)
  x = jax.random.bernoulli(k_x, jax.nn.sigmoid(b_D), (num, b_D.shape[0])).astype(jnp.float32)
  y = jax.nn.one_hot(jax.random.randint(k_y, (num,), 0, num_classes), num_classes)
  return x, y


def _chain_count(config: ml_collections.ConfigDict) -> int:
  """The labelled batch size: the persistent chains are as many as the labelled examples."""
  d = config.data
  if d.get("semi_supervised", False):
    return d.get("labelled_batch_size", d.batch_size)
  return d.batch_size


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> ClassRBMState:
  """Small random W and U, zero biases and velocities, persistent chains started at the visible
  biases' marginals and uniform labels. With `model.visible_bias_init == "data"` the loop then
  calls `init_from_data`, which sets the visible biases from the training split. Bad
  hyper-parameters (joint_weight outside [0, 1], semi-supervised without unlabelled data, ...)
  fail here, before anything compiles."""
  hp = _hparams(config)
  dim, hidden, classes = (int(np.prod(config.data.image_shape)), config.model.num_hidden,
                          config.model.num_classes)
  k_w, k_u, k_chain = jax.random.split(key, 3)
  scale = config.model.init_scale
  params = ClassRBMParams(w=scale * jax.random.normal(k_w, (dim, hidden), jnp.float32),
                          u=scale * jax.random.normal(k_u, (classes, hidden), jnp.float32),
                          b=jnp.zeros((dim,), jnp.float32), c=jnp.zeros((hidden,), jnp.float32),
                          d=jnp.zeros((classes,), jnp.float32))
  chains_x, chains_y = _chains(k_chain, params.b, _chain_count(config), classes)
  return ClassRBMState(step=jnp.zeros((), jnp.int32), params=params,
                       velocity=jax.tree.map(jnp.zeros_like, params), chains_x=chains_x,
                       chains_y=chains_y, hparams=hp)


def init_from_data(state: ClassRBMState, train, key: jax.Array) -> ClassRBMState:
  """Visible biases at the log-odds of the training pixels' means (rbm.data_visible_bias), and
  the persistent chains redrawn from them with create_state's chain key."""
  if state.hparams.sgd.visible_bias_init != "data":
    return state
  b = jnp.asarray(rbm.data_visible_bias(rbm.pixel_means(train)))
  k_chain = jax.random.split(key, 3)[2]
  chains_x, chains_y = _chains(k_chain, b, state.chains_x.shape[0], state.hparams.num_classes)
  return state.replace(params=state.params.replace(b=b), chains_x=chains_x, chains_y=chains_y)


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).astype(jnp.float32)


def _scale(tree: ClassRBMParams, s: float) -> ClassRBMParams:
  return jax.tree.map(lambda g: s * g, tree)


def _add(a: ClassRBMParams, b: ClassRBMParams) -> ClassRBMParams:
  return jax.tree.map(jnp.add, a, b)


def gradient(state: ClassRBMState, x_BxD: jax.Array, y_BxC: jax.Array, key: jax.Array,
             x_unlabelled_NxD: jax.Array | None = None,
             axis_name: str | None = None) -> tuple[ClassRBMParams, tuple, jax.Array]:
  """The ascent direction of one step on this device's examples, before averaging over devices.

  joint_weight (lambda) times the CD-k / PCD-k estimate of the gradient of mean log p(x, y)
  plus (1 - lambda) times the exact gradient of mean log p(y | x) over the labelled batch,
  plus unlabelled_weight (beta) times the CD estimate of the gradient of mean log p(x) over
  the unlabelled batch (PCD: against the same chains, whose states sample p(x, y) for both).
  Returns (the gradient, the chains' new (x, y) states: this device's slice, the labelled
  batch's class scores -F(x, y), shape (B, C), for the step's metrics).
  """
  hp, params = state.hparams, state.params
  lam, beta, sgd = hp.joint_weight, hp.unlabelled_weight, hp.sgd
  k_lab, k_unl, k_y = jax.random.split(key, 3)
  # One forward pass over the labelled batch (one x W product; sigmoid and softplus of the
  # [B, C, H] hidden inputs from one exp) serves p(y | x), the data's statistics, the first
  # Gibbs sweep of CD and the metrics.
  o_BxCxH, scores_BxC = core.class_forward(params, x_BxD)
  # lambda (S(x, y) - S_model) + (1 - lambda) (S(x, y) - S(x, p(y | x))): the statistics S are
  # linear in the label weights, so both labelled terms' data parts are one pass with weights
  # y - (1 - lambda) p(y | x) (core.discriminative_gradient at lambda = 0), and the W part
  # one product x^T g.
  q_BxC = y_BxC
  if lam < 1.0:
    q_BxC = y_BxC - (1.0 - lam) * jnp.exp(jax.nn.log_softmax(scores_BxC, axis=-1))
  grad = core.statistics_from_probs(x_BxD, q_BxC, o_BxCxH)

  local = x_BxD.shape[0]
  if sgd.method == "pcd":
    start = jax.lax.dynamic_slice_in_dim(state.chains_x, device_index(axis_name) * local, local)
    start_y = jax.lax.dynamic_slice_in_dim(state.chains_y, device_index(axis_name) * local, local)
    start_h = None
  else:
    start, start_y = x_BxD, y_BxC
    start_h = _at_labels(o_BxCxH, y_BxC)
  chains = (start, start_y)
  needs_chain = lam > 0.0 or (beta > 0.0 and sgd.method == "pcd")
  if needs_chain:
    xk, yk, _ = core.gibbs_chain(params, start, start_y, k_lab, sgd.cd_k, axis_name,
                                 start_hidden_probs_BxH=start_h)
    chains = (xk, yk)
    model_stats = core.sample_statistics(params, xk, yk)
    if lam > 0.0:
      grad = _add(grad, _scale(model_stats, -lam))

  if beta > 0.0:
    o_NxCxH, scores_NxC = core.class_forward(params, x_unlabelled_NxD)
    log_p_NxC = jax.nn.log_softmax(scores_NxC, axis=-1)
    if sgd.method == "cd":
      y0 = core.sample_labels(k_y, log_p_NxC, axis_name)
      xk_u, yk_u, _ = core.gibbs_chain(params, x_unlabelled_NxD, y0, k_unl, sgd.cd_k, axis_name,
                                       start_hidden_probs_BxH=_at_labels(o_NxCxH, y0))
      model_stats = core.sample_statistics(params, xk_u, yk_u)
    unlabelled = core.statistics_from_probs(x_unlabelled_NxD, jnp.exp(log_p_NxC), o_NxCxH)
    grad = _add(grad, _scale(jax.tree.map(jnp.subtract, unlabelled, model_stats), beta))
  return grad, chains, scores_BxC


def _at_labels(o_BxCxH: jax.Array, y_BxC: jax.Array) -> jax.Array:
  """p(h = 1 | x, y) at one-hot labels y from the probabilities of every class, (B, H)."""
  return jnp.sum(y_BxC[:, :, None] * o_BxCxH, axis=1)


def _labelled(state: ClassRBMState, batch: dict) -> tuple[jax.Array, jax.Array]:
  images, labels = ((batch["labelled_image"], batch["labelled_label"])
                    if state.hparams.semi_supervised else (batch["image"], batch["label"]))
  return _flat(images), jax.nn.one_hot(labels, state.hparams.num_classes, dtype=jnp.float32)


def _classification_metrics(scores_BxC: jax.Array, y_BxC: jax.Array) -> dict:
  """Mean -log p(y | x), accuracy, error and mean F(x, y) from the class scores -F(x, y)."""
  log_p_BxC = jax.nn.log_softmax(scores_BxC, axis=-1)
  acc = jnp.mean(jnp.argmax(log_p_BxC, -1) == jnp.argmax(y_BxC, -1))
  return {"loss": -jnp.mean(jnp.sum(y_BxC * log_p_BxC, -1)), "accuracy": acc,
          "error": 1.0 - acc, "free_energy": -jnp.mean(jnp.sum(y_BxC * scores_BxC, -1))}


def train_step(state: ClassRBMState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[ClassRBMState, dict]:
  """One SGD update of the objective in the module docstring.

  Args:
    state: the classification RBM state.
    batch: {"image": binary float (B, H, W, C), "label": int (B,)}, or with
      data.semi_supervised {"image" (unlabelled), "labelled_image", "labelled_label"}; under
      data parallelism this device's slice.
    key: the run's base training key; the step's key is folded from `state.step`.
    axis_name: the device axis to average gradients and metrics over.
  Returns:
    The new state and {"loss" (mean -log p(y | x) of the labelled batch, before the update),
    "accuracy", "error", "free_energy" (mean F(x, y)), "learning_rate"}.
  """
  hp, params, sgd = state.hparams, state.params, state.hparams.sgd
  x_BxD, y_BxC = _labelled(state, batch)
  x_u = _flat(batch["image"]) if hp.semi_supervised else None
  grad, (xk, yk), scores_BxC = gradient(state, x_BxD, y_BxC, rng.step_key(key, state.step),
                                       x_u, axis_name)
  grad = pmean_if(grad, axis_name)

  step = state.step
  lr, mom = rbm.learning_rate(sgd, step), rbm.momentum(sgd, step)
  grad = grad.replace(w=grad.w - sgd.weight_decay * params.w,
                      u=grad.u - sgd.weight_decay * params.u)
  velocity = jax.tree.map(lambda v, g: mom * v + lr * g, state.velocity, grad)
  new_params = jax.tree.map(jnp.add, params, velocity)
  if hp.sparsity > 0.0:
    # Larochelle & Bengio (2008): a constant pull of every hidden unit towards being off.
    new_params = new_params.replace(c=new_params.c - hp.sparsity)

  chains_x, chains_y = state.chains_x, state.chains_y
  if sgd.method == "pcd" and (hp.joint_weight > 0.0 or hp.unlabelled_weight > 0.0):
    gather = (lambda a: a) if axis_name is None else (
        lambda a: jax.lax.all_gather(a, axis_name, tiled=True))
    chains_x, chains_y = gather(xk), gather(yk)
  metrics = {**_classification_metrics(scores_BxC, y_BxC), "learning_rate": lr}
  new_state = state.replace(step=step + 1, params=new_params, velocity=velocity,
                            chains_x=chains_x, chains_y=chains_y)
  return new_state, pmean_if(metrics, axis_name)


def eval_step(state: ClassRBMState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Mean -log p(y | x) ("loss"), accuracy, error and mean free energy F(x, y) of a batch
  {"image", "label"}. `key` is unused (p(y | x) is exact); it is part of the interface."""
  del key
  x_BxD = _flat(batch["image"])
  y_BxC = jax.nn.one_hot(batch["label"], state.hparams.num_classes, dtype=jnp.float32)
  return pmean_if(_classification_metrics(core.class_scores(state.params, x_BxD), y_BxC),
                  axis_name)


def log_proba(state: ClassRBMState, batch: dict) -> jax.Array:
  """Exact log p(y | x), [B, C] (the classification evaluator's hook)."""
  return core.log_p_y_given_x(state.params, _flat(batch["image"]))


def sample(state: ClassRBMState, key: jax.Array, num: int,
           num_steps: int | None = None) -> jax.Array:
  """`num` class-conditional images, classes spread evenly (one grid row per class,
  genjax.latent.sample_labels): p(x | h) after block Gibbs sweeps with the label clamped
  (`model.sample_gibbs_steps` unless `num_steps` is given) from random binary images; shape
  (num, *image_shape) in [0, 1]."""
  hp, params = state.hparams, state.params
  k0, k_chain = jax.random.split(key)
  x0 = jax.random.bernoulli(k0, 0.5, (num, params.w.shape[0])).astype(jnp.float32)
  y = jax.nn.one_hot(latent.sample_labels(num, hp.num_classes), hp.num_classes)
  _, _, px = core.gibbs_chain(params, x0, y, k_chain, hp.sgd.sample_gibbs_steps
                              if num_steps is None else num_steps, clamp_labels=True)
  return px.reshape(num, *hp.sgd.image_shape)


def num_classes(state: ClassRBMState) -> int:
  """Evaluation hook: the classes the samples are conditioned on."""
  return state.hparams.num_classes


# The AIS test log-likelihood (options from the config's `ais` section; minutes to hours) runs
# from experiments/evaluate.py, not at the end of training.
DEFAULT_EVALS = {"metrics": {}, "classification": {}, "grids": {}, "ais": {"on_train_end": False}}
