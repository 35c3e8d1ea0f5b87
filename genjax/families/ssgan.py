"""Semi-supervised GAN family (Salimans et al. 2016, "Improved Techniques for Training GANs",
section 5): a K-class classifier is the discriminator of a GAN whose fakes are class K + 1.

The discriminator's K logits l_1..l_K are the real classes'; the fake class's logit is fixed at
0, so D(x) = P(real | x) = Z(x) / (Z(x) + 1) with Z = sum_k exp(l_k), i.e. sigmoid(logsumexp(l)).
Every loss is written in log space:

  supervised   = cross-entropy of the labelled batch under softmax(l);
  unsupervised = -mean log D(x_unlabelled) - mean log(1 - D(G(z))), where with
                 lse = logsumexp(l): log D = lse - softplus(lse) and log(1 - D) = -softplus(lse);
  discriminator loss = supervised + unsupervised_weight * unsupervised.

The generator is trained by feature matching on the discriminator's last hidden layer f:
mean over features of (mean_batch f(x_unlabelled) - mean_batch f(G(z)))^2, the paper code's
form (its squared norm divided by the number of features).

One step updates the discriminator on (labelled, unlabelled, fake) batches, then the generator
against the updated discriminator with fresh latents, Gaussian-noise layers active in both, as
the paper's code does. Evaluation classifies with the discriminator in inference mode (no
noise), optionally with a moving average of its weights. The average's horizon follows the
budget: its decay is 1 - 1 / (model.ema_horizon * L), L the run's length in steps (the learning
rate schedule's, `schedule_steps`), so that it spans the same fraction of any run: the shipped
1/18 is the paper code's 0.9999 at its 180,000 steps, and a short run averages only its last
steps rather than its first, untrained, ones (`model.ema_decay` > 0 fixes the decay instead).
Where the state keeps an average, `eval_step` also scores the raw weights (`loss_raw`,
`accuracy_raw`, `error_raw` beside the averaged weights' `loss`, `accuracy`, `error`).

Training batches are genjax.data.labelled's semi-supervised ones: {"image" (unlabelled),
"labelled_image", "labelled_label"}; evaluation batches are {"image", "label"}.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from genjax import rng
from genjax.nn.ssgan import SSGANDiscriminator, SSGANGenerator
from genjax.parallel import pmean_if
from genjax.state import ModelState, init_variables

# The stream init_from_data folds into create_state's key (which create_state splits for the
# networks' initial weights).
_INIT_STREAM = 1


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section of a semi-supervised GAN config (the paper's MNIST values), every
  switch present (so each can be overridden)."""
  c = ml_collections.ConfigDict({
      "num_classes": 10,  # K, the real classes
      "z_dim": 100,  # uniform latents in [0, 1)
      "g_hidden": (500, 500),
      "d_hidden": (1000, 500, 250, 250, 250),
      "input_noise": 0.3,  # sd of the Gaussian noise on the discriminator's input ...
      "hidden_noise": 0.5,  # ... and after each of its hidden layers
      # 0.5: the paper code's loss_unl is half the unsupervised loss of the module docstring,
      # at its unlabeled_weight of 1; the paper's equation weighs the two losses alike (1).
      "unsupervised_weight": 0.5,
      "data_init": True,  # data-dependent initialisation of the weight-normalised layers
      "data_init_examples": 500,  # training images it reads (the paper's 500)
      # Evaluate a moving average of D's weights whose time constant is this fraction of the
      # run (1 / 18: the paper code's decay 0.9999 at its 180,000 steps); 0: the raw weights.
      "ema_horizon": 1 / 18,
      "ema_decay": 0.0,  # > 0: a fixed decay instead of the horizon's (set one of the two)
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no semi-supervised GAN model field {name!r}")
    c[name] = value
  return c


@dataclasses.dataclass(frozen=True)
class SSGANHParams:
  """Hyper-parameters the step closes over (static: part of the compiled program)."""

  z_dim: int
  num_classes: int
  unsupervised_weight: float = 0.5
  ema_decay: float = 0.0
  data_init: bool = True
  data_init_examples: int = 500


@struct.dataclass
class SSGANState:
  """The generator's and the discriminator's states, a moving average of the discriminator's
  weights (None without one) and the step count."""

  step: jax.Array
  generator: ModelState
  discriminator: ModelState
  discriminator_ema: Any  # zeros-initialised EMA of discriminator.params (debiased on use)
  hparams: SSGANHParams = struct.field(pytree_node=False)


def ema_decay(config: ml_collections.ConfigDict) -> float:
  """The decay of the discriminator's weight average: `model.ema_decay` where positive (fixed),
  else 1 - 1 / (model.ema_horizon * schedule_steps(config)), a time constant of that fraction of
  the run; 0 (no average: the raw weights) where both are 0 or the horizon is under one step."""
  m = config.model
  fixed, horizon = m.get("ema_decay", 0.0), m.get("ema_horizon", 0.0)
  if not 0.0 <= fixed < 1.0:
    raise ValueError(f"need 0 <= model.ema_decay < 1, got {fixed}")
  if horizon < 0.0:
    raise ValueError(f"model.ema_horizon must be >= 0, got {horizon}")
  if fixed > 0.0 and horizon > 0.0:
    raise ValueError(f"set one of model.ema_decay ({fixed}) and model.ema_horizon ({horizon}), "
                     "and the other to 0")
  if fixed > 0.0 or horizon == 0.0:
    return fixed
  return max(0.0, 1.0 - 1.0 / (horizon * schedule_steps(config)))


def _hparams(config: ml_collections.ConfigDict) -> SSGANHParams:
  m = config.model
  hp = SSGANHParams(z_dim=m.z_dim, num_classes=m.num_classes,
                    unsupervised_weight=m.unsupervised_weight, ema_decay=ema_decay(config),
                    data_init=m.get("data_init", True),
                    data_init_examples=m.get("data_init_examples", 500))
  if hp.num_classes < 2:
    raise ValueError(f"model.num_classes must be at least 2, got {hp.num_classes}")
  return hp


def build_models(config: ml_collections.ConfigDict) -> tuple[SSGANGenerator, SSGANDiscriminator]:
  """The generator and discriminator modules a config describes."""
  m = config.model
  return (SSGANGenerator(hidden=tuple(m.g_hidden), image_shape=tuple(config.data.image_shape)),
          SSGANDiscriminator(num_classes=m.num_classes, hidden=tuple(m.d_hidden),
                             input_noise=m.input_noise, hidden_noise=m.hidden_noise))


def schedule_steps(config: ml_collections.ConfigDict) -> int:
  """The length the learning rate's decay and the weight average's horizon are placed in:
  `optim.decay_steps` if positive, else `train.num_steps` (the family sees only the config, so
  it cannot turn epochs into steps)."""
  if config.optim.get("decay_steps", -1) > 0:
    return config.optim.decay_steps
  if config.train.num_steps > 0:
    return config.train.num_steps
  raise ValueError("a positive optim.decay_fraction or model.ema_horizon needs a length: set "
                   "train.num_steps or optim.decay_steps")


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """`optim.learning_rate`, constant, then decaying linearly to 0 over the last
  `optim.decay_fraction` of `schedule_steps`; constant throughout when decay_fraction is 0."""
  o = config.optim
  lr, fraction = o.learning_rate, o.get("decay_fraction", 0.0)
  if not 0.0 <= fraction <= 1.0:
    raise ValueError(f"optim.decay_fraction must be in [0, 1], got {fraction}")
  if fraction == 0.0:
    return optax.constant_schedule(lr)
  n = schedule_steps(config)
  decay = max(int(round(fraction * n)), 1)
  return optax.join_schedules([optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay)],
                              [n - decay])


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam on `learning_rate_schedule`, with the section's betas, `eps` (added to the root of the
  second moment) and `eps_root` (added under it: the paper's Adam has eps 0, eps_root 1e-8)."""
  o = config.optim
  return optax.adam(learning_rate_schedule(config), b1=o.b1, b2=o.b2, eps=o.get("eps", 1e-8),
                    eps_root=o.get("eps_root", 0.0))


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> SSGANState:
  """Initialise both networks and their optimisers from `config` (the discriminator's
  data-dependent initialisation is init_from_data's)."""
  hp = _hparams(config)
  generator, discriminator = build_models(config)
  k_g, k_d = jax.random.split(key)
  z = jnp.zeros((2, hp.z_dim), jnp.float32)
  x = jnp.zeros((2, *config.data.image_shape), jnp.float32)
  tx = make_optimizer(config)
  g = ModelState.create(generator, init_variables(generator, k_g, z, train=False), tx)
  d = ModelState.create(discriminator, init_variables(discriminator, k_d, x), tx)
  ema = jax.tree.map(jnp.zeros_like, d.params) if hp.ema_decay > 0 else None
  return SSGANState(step=jnp.zeros((), jnp.int32), generator=g, discriminator=d,
                    discriminator_ema=ema, hparams=hp)


# ----------------------------------------------------------------------------- networks


def _discriminate(d: ModelState, params: Any, x: jax.Array,
                  noise: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(logits [B, K], last hidden features [B, F]): with `noise` (standard normal draws [B, N],
  see SSGANDiscriminator), in training mode; without, in inference mode."""
  return d.module.apply({"params": params}, x, noise)


def discriminator_noise(module: SSGANDiscriminator, key: jax.Array, x: jax.Array,
                        axis_name: str | None = None) -> jax.Array:
  """The discriminator's training-mode noise for the batch `x` [B, H, W, C]: standard normal
  draws [B, N] from the examples' indices in the global batch (genjax.rng.quantised_normal), so
  a run on N devices draws the noise of a one-device run."""
  width = module.noise_width(int(np.prod(x.shape[1:])))
  return rng.quantised_normal(key, x.shape[0], width, axis_name)


def _discriminate_batches(d: ModelState, params: Any, batches: list[tuple[jax.Array, jax.Array]],
                          axis_name: str | None) -> list[tuple[jax.Array, jax.Array]]:
  """Training-mode (logits, features) of several batches, each (images, key), in one pass.

  Each batch's noise is drawn from its own key (discriminator_noise), so the result does not
  depend on the number of devices; the discriminator has no batch-dependent layer, so one pass
  equals one pass per batch."""
  images = jnp.concatenate([x for x, _ in batches])
  noise = jnp.concatenate([discriminator_noise(d.module, k, x, axis_name) for x, k in batches])
  logits, features = _discriminate(d, params, images, noise)
  bounds = np.cumsum([x.shape[0] for x, _ in batches])[:-1]
  return list(zip(jnp.split(logits, bounds), jnp.split(features, bounds), strict=True))


def _generate(g: ModelState, params: Any, z: jax.Array, axis_name: str | None,
              train: bool) -> tuple[jax.Array, Any]:
  """Generator images and, in training mode, its updated batch statistics (averaged over
  `axis_name`)."""
  variables = {"params": params, "batch_stats": g.batch_stats}
  if not train:
    return g.module.apply(variables, z, train=False), g.batch_stats
  module = g.module.clone(bn_axis_name=axis_name)
  x, updates = module.apply(variables, z, train=True, mutable=["batch_stats"])
  return x, updates["batch_stats"]


def latents(key: jax.Array, num: int, z_dim: int, axis_name: str | None = None) -> jax.Array:
  """Uniform [0, 1) latents, drawn per example by global index (genjax.rng.uniform)."""
  return rng.uniform(key, num, (z_dim,), axis_name)


# --------------------------------------------------------------------------------- losses


def log_d_real(logits_BxK: jax.Array) -> jax.Array:
  """log D(x) = log Z / (Z + 1) = lse - softplus(lse), lse = logsumexp of the K logits."""
  lse_B = jax.nn.logsumexp(logits_BxK, axis=-1)
  return lse_B - jax.nn.softplus(lse_B)


def log_d_fake(logits_BxK: jax.Array) -> jax.Array:
  """log(1 - D(x)) = log 1 / (Z + 1) = -softplus(lse)."""
  return -jax.nn.softplus(jax.nn.logsumexp(logits_BxK, axis=-1))


def d_real(logits_BxK: jax.Array) -> jax.Array:
  """D(x) = Z / (Z + 1), the probability of the K real classes against the fake one."""
  return jax.nn.sigmoid(jax.nn.logsumexp(logits_BxK, axis=-1))


def supervised_loss(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Mean cross-entropy of integer labels under softmax over the K real classes."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxK, labels_B))


def unsupervised_loss(real_logits_BxK: jax.Array, fake_logits_BxK: jax.Array) -> jax.Array:
  """-mean log D(x) over unlabelled real images - mean log(1 - D(G(z))) over fakes."""
  return -jnp.mean(log_d_real(real_logits_BxK)) - jnp.mean(log_d_fake(fake_logits_BxK))


def feature_matching_loss(real_features_BxF: jax.Array, fake_features_BxF: jax.Array,
                          axis_name: str | None = None) -> jax.Array:
  """Mean over the features of (mean_batch f(real) - mean_batch f(fake))^2, the batch means over
  the global batch (averaged over `axis_name`, so every device holds the global loss; with the
  step's gradients then averaged over the devices, this is the global loss's gradient)."""
  real_F = pmean_if(jnp.mean(real_features_BxF, axis=0), axis_name)
  fake_F = pmean_if(jnp.mean(fake_features_BxF, axis=0), axis_name)
  return jnp.mean(jnp.square(real_F - fake_F))


def accuracy(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Fraction of examples whose largest real-class logit is at their label."""
  return jnp.mean(jnp.argmax(logits_BxK, axis=-1) == labels_B)


# ---------------------------------------------------------------------------------- steps


def train_step(state: SSGANState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[SSGANState, dict]:
  """One discriminator update, then one generator update against the updated discriminator.

  Args:
    state: the semi-supervised GAN state.
    batch: {"image": unlabelled float (B, H, W, C), "labelled_image": float (L, H, W, C),
      "labelled_label": int32 (L,)}; under data parallelism, this device's slices.
    key: the run's base training key; the step's key is folded from `state.step`, and every
      latent and noise draw from an example's index in the global batch, so a run on N
      devices draws what a one-device run draws.
    axis_name: the device axis to average gradients, metrics and batch statistics over.
  Returns:
    The new state and scalar metrics (averaged over devices): loss_d, loss_supervised,
    loss_unsupervised, loss_g, labelled_accuracy (the labelled batch, noise on), d_real and
    d_fake (mean D on the unlabelled and generated batches).
  """
  hp = state.hparams
  unlabelled, images, labels = batch["image"], batch["labelled_image"], batch["labelled_label"]
  b = unlabelled.shape[0]
  k_z, k_lab, k_unl, k_fake, k_gz, k_greal, k_gfake = jax.random.split(
      rng.step_key(key, state.step), 7)
  g, d = state.generator, state.discriminator

  # Discriminator, on the labelled, unlabelled and generated batches.
  fake, g_stats = _generate(g, g.params, latents(k_z, b, hp.z_dim, axis_name), axis_name, True)
  g = g.replace(batch_stats=g_stats)
  batches = [(images, k_lab), (unlabelled, k_unl), (jax.lax.stop_gradient(fake), k_fake)]

  def d_loss_fn(params):
    (lab_logits, _), (unl_logits, _), (fake_logits, _) = _discriminate_batches(
        d, params, batches, axis_name)
    sup = supervised_loss(lab_logits, labels)
    unsup = unsupervised_loss(unl_logits, fake_logits)
    metrics = {"loss_supervised": sup, "loss_unsupervised": unsup,
               "labelled_accuracy": accuracy(lab_logits, labels),
               "d_real": jnp.mean(d_real(unl_logits)), "d_fake": jnp.mean(d_real(fake_logits))}
    return sup + hp.unsupervised_weight * unsup, metrics

  (loss_d, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d.params)
  d = d.apply_gradients(pmean_if(d_grads, axis_name))

  # Generator: feature matching against the updated discriminator, fresh latents, noise on.
  z = latents(k_gz, b, hp.z_dim, axis_name)

  def g_loss_fn(params):
    x, stats = _generate(g, params, z, axis_name, True)
    (_, real_features), (_, fake_features) = _discriminate_batches(
        d, d.params, [(unlabelled, k_greal), (x, k_gfake)], axis_name)
    loss = feature_matching_loss(jax.lax.stop_gradient(real_features), fake_features, axis_name)
    return loss, stats

  (loss_g, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
  g = g.apply_gradients(pmean_if(g_grads, axis_name), batch_stats=g_stats)

  ema = state.discriminator_ema
  if ema is not None:
    ema = ema_update(ema, d.params, hp.ema_decay)
  metrics = {"loss_d": loss_d, "loss_g": loss_g, **d_metrics}
  new_state = state.replace(step=state.step + 1, generator=g, discriminator=d,
                            discriminator_ema=ema)
  return new_state, pmean_if(metrics, axis_name)


def ema_update(ema: Any, params: Any, decay: float) -> Any:
  """One step of the zeros-initialised moving average: ema + (1 - decay) (params - ema), the
  paper code's a <- a + 0.0001 (p - a)."""
  rate = jnp.float32(1.0 - decay)
  return jax.tree.map(lambda e, p: e + rate * (p - e), ema, params)


def ema_average(ema: Any, params: Any, decay: float, step: jax.Array) -> Any:
  """The debiased average ema / (1 - decay^step) after `step` updates (`params` at step 0).

  1 - decay^step is computed as -expm1(step * log1p(-rate)) with rate = 1 - decay rounded as
  ema_update rounds it: accurate in float32 for a decay near 1, and equal to the total weight
  the average gave the steps, so that the average of a constant is that constant."""
  rate = jnp.float32(1.0 - decay)
  started = step > 0
  correction = jnp.where(started, -jnp.expm1(step.astype(jnp.float32) * jnp.log1p(-rate)), 1.0)
  return jax.tree.map(lambda e, p: jnp.where(started, e / correction, p), ema, params)


def classifier_params(state: SSGANState) -> Any:
  """The discriminator weights evaluation classifies with: the debiased moving average where
  the state keeps one (ema_average), else the raw weights."""
  d, ema = state.discriminator, state.discriminator_ema
  if ema is None:
    return d.params
  return ema_average(ema, d.params, state.hparams.ema_decay, state.step)


def logits(state: SSGANState, images: jax.Array) -> jax.Array:
  """The K real classes' logits [B, K] in inference mode (no noise), with classifier_params."""
  return _discriminate(state.discriminator, classifier_params(state), images)[0]


def log_proba(state: SSGANState, batch: dict) -> jax.Array:
  """log P(class | image) [B, K] over the K real classes, in inference mode (the classification
  evaluator's hook)."""
  return jax.nn.log_softmax(logits(state, batch["image"]), axis=-1)


def eval_step(state: SSGANState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Cross-entropy over the K real classes, accuracy, error and mean D(x) on an evaluation batch
  {"image", "label"}, in inference mode, with classifier_params; where the state keeps a weight
  average, also `loss_raw`, `accuracy_raw` and `error_raw` of the raw weights. `key` is unused
  (inference is deterministic)."""
  del key
  out = logits(state, batch["image"])
  acc = accuracy(out, batch["label"])
  metrics = {"loss": supervised_loss(out, batch["label"]), "accuracy": acc, "error": 1.0 - acc,
             "d_real": jnp.mean(d_real(out))}
  if state.discriminator_ema is not None:
    raw = _discriminate(state.discriminator, state.discriminator.params, batch["image"])[0]
    raw_acc = accuracy(raw, batch["label"])
    metrics.update({"loss_raw": supervised_loss(raw, batch["label"]), "accuracy_raw": raw_acc,
                    "error_raw": 1.0 - raw_acc})
  return pmean_if(metrics, axis_name)


def init_from_data(state: SSGANState, train, key: jax.Array) -> SSGANState:
  """The discriminator's data-dependent initialisation (the paper's): on
  `data_init_examples` random training images, layer by layer with the noise on, each
  weight-normalised layer's g and b are set so that its pre-activations have mean 0 and
  standard deviation 1 per unit. `key` is create_state's; a no-op with model.data_init off."""
  hp = state.hparams
  if not hp.data_init:
    return state
  k_idx, k_pre, k_noise = jax.random.split(jax.random.fold_in(key, _INIT_STREAM), 3)
  n = min(hp.data_init_examples, len(train))
  idx = jax.device_get(jax.random.permutation(k_idx, len(train))[:n])
  rows = {k: jnp.asarray(v[idx]) for k, v in train.arrays.items()}
  images = jax.jit(train.preprocess)(rows, k_pre)["image"]
  d = state.discriminator

  @jax.jit
  def initialise(params):
    _, updated = d.module.apply({"params": params}, images,
                                discriminator_noise(d.module, k_noise, images), data_init=True,
                                mutable=["params"])
    return updated["params"]

  return state.replace(discriminator=d.replace(params=initialise(d.params)))


def sample(state: SSGANState, key: jax.Array, num: int) -> jax.Array:
  """`num` generated images in [0, 1] (inference mode: batch norm's running averages), a pure
  function of `key`."""
  g = state.generator
  return _generate(g, g.params, latents(key, num, state.hparams.z_dim), None, False)[0]


# ------------------------------------------------------------------ evaluation hooks

# The family's own metrics, the classification scores of the discriminator's K classes, and the
# final sample grid; experiments/evaluate.py adds the evaluation grids. (sample_quality works
# too, but costs minutes: name it in the config's evals to have it.)
DEFAULT_EVALS = {
    "metrics": {},
    "classification": {},
    "grids": {},
    "sample_grids": {"on_train_end": False},
}


# ---------------------------------------------------------------------------------- config

DATASETS = ("mnist", "fashion_mnist")


def parse_arg(arg: str | None) -> tuple[str, int, bool]:
  """(dataset, number of labels, smoke) from the config argument (see experiment_config)."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  datasets = [p for p in parts if p in DATASETS]
  numbers = [p for p in parts if p.isdigit() or p == "all"]
  unknown = [p for p in parts if p not in DATASETS and p not in numbers and p != "smoke"]
  if unknown or len(datasets) > 1 or len(numbers) > 1 or parts.count("smoke") > 1:
    raise ValueError(f"unknown config argument {arg!r}; expected a number of labels, a dataset "
                     f"from {DATASETS} and 'smoke', comma-separated, each at most once")
  num_labels = -1 if numbers == ["all"] else int(numbers[0]) if numbers else 100
  if num_labels == 0:
    raise ValueError(f"the number of labels must be positive, got {num_labels}")
  return (datasets[0] if datasets else "mnist"), num_labels, "smoke" in parts


def experiment_config(arg: str | None = None, *, num_epochs: int = 300,
                      learning_rate: float = 3e-3, batch_size: int = 100,
                      labelled_batch_size: int = 100) -> ml_collections.ConfigDict:
  """The config of a semi-supervised GAN (genjax.config's idiom): pixels in [0, 1], each step
  an unlabelled batch of `batch_size` (the whole training split) and a labelled one of
  `labelled_batch_size`, the paper's networks (model_config), Adam at `learning_rate` (b1 0.5,
  eps 1e-8 under the root) decaying linearly to 0 over the last third of `num_epochs`; logs
  every epoch, checkpoints, grids and test errors every 10. `arg` (parse_arg): the number of
  labels (default 100; `all`: every label), a dataset (`mnist`, the default, or
  `fashion_mnist`) and `smoke` (40 steps of 32 unlabelled and 16 labelled images),
  comma-separated in any order."""
  from genjax import config as gconfig
  dataset, num_labels, smoke = parse_arg(arg)
  steps_per_epoch = 60_000 // batch_size  # the training images of MNIST and Fashion-MNIST
  if smoke:
    batch_size, labelled_batch_size = 32, 16
  data = gconfig.few_labels(gconfig.image_data(dataset, preprocess="unit", batch_size=batch_size),
                            num_labels, semi_supervised=True,
                            labelled_batch_size=labelled_batch_size)
  optim = ml_collections.ConfigDict({
      "learning_rate": learning_rate, "b1": 0.5, "b2": 0.999,
      "eps": 0.0, "eps_root": 1e-8,  # the paper's Adam: g / sqrt(v + 1e-8)
      "decay_fraction": 1 / 3,  # linear decay to 0 over the last third (epochs 200 to 300)
      "decay_steps": -1,  # <= 0: the decay is placed in train.num_steps
  })
  train = gconfig.train_schedule(-1, log_every=steps_per_epoch,
                                 checkpoint_every=10 * steps_per_epoch,
                                 sample_every=10 * steps_per_epoch, sample_grid=10)
  train.num_steps = num_epochs * steps_per_epoch  # the schedule needs the length in steps
  train.eval_every = 10 * steps_per_epoch  # test error in metrics.jsonl (nothing selected)
  c = gconfig.step_config("ssgan", data, model_config(), optim, train)
  return gconfig.apply_variant(c, "smoke" if smoke else None)
