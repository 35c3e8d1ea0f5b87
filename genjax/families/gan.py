"""GAN family: state, and pure train/eval/sample steps (generator vs discriminator or critic).

One step covers the course's GANs and the usual modern switches:
  * losses: `bce` (original GAN; non-saturating or minimax generator, one-sided
    label smoothing), `wasserstein` (WGAN; with `gp_weight` > 0, WGAN-GP), `hinge`,
    `least_squares`;
  * `n_critic` discriminator updates per generator update, inside the one compiled
    step (a `lax.scan`), each with fresh noise and the same real batch, as the course;
  * penalties: the gradient penalty on random interpolates and R1 on real data;
  * class conditioning (`num_classes` > 0): a one-hot class joins z, and broadcast
    as image planes joins the discriminator's input;
  * an exponential moving average of the generator's weights, sampled beside the
    raw generator;
  * spectral normalisation and the critic's normalisation are module switches.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from genjax import latent, losses, optimizers, rng
from genjax.latent import sample_labels  # noqa: F401 (gan.sample_labels, as before)
from genjax.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genjax.nn.mlp import MLPDiscriminator, MLPGenerator
from genjax.parallel import pmean_if
from genjax.state import ModelState, init_variables, standing_batch_stats

ARCHS = ("mlp", "dcgan")
LOSSES = ("bce", "wasserstein", "hinge", "least_squares")


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section of a GAN config, every switch present (so each can be overridden)."""
  c = ml_collections.ConfigDict({
      "arch": "mlp",  # mlp | dcgan
      "z_dim": 64,
      "hidden_dim": 128,  # generator width
      "d_hidden_dim": -1,  # discriminator width; -1: the architecture's default
      "d_norm": "batch",  # dcgan discriminator: batch | layer | none
      "spectral_norm": False,  # on every discriminator layer
      "conv_impl": "auto",  # dcgan convolutions: matmul | xla | auto (matmul on CPU, else xla)
      "num_classes": 0,  # > 0: class-conditional GAN
      "loss": "bce",  # bce | wasserstein | hinge | least_squares
      "generator_loss": "non_saturating",  # with bce: non_saturating | minimax
      "real_label": 1.0,  # < 1 for one-sided label smoothing (bce)
      "gp_weight": 0.0,  # lambda of the gradient penalty (10 in WGAN-GP)
      "r1_weight": 0.0,  # gamma of the R1 penalty gamma/2 E||grad D(x)||^2
      "n_critic": 1,  # discriminator updates per generator update
      "fresh_generator_noise": True,  # False: the generator step reuses the critic's last z
      "ema_decay": 0.0,  # > 0: keep an EMA of the generator weights
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no GAN model field {name!r}")
    c[name] = value
  return c


def experiment_config(arg: str | None = None, *, model: ml_collections.ConfigDict,
                      optim: ml_collections.ConfigDict, num_epochs: int, dataset: str = "mnist",
                      preprocess: str = "symmetric", batch_size: int = 128,
                      sample_every: int = 500, sample_grid: int = 5,
                      smoke_steps: int = 40) -> ml_collections.ConfigDict:
  """The config of a GAN experiment (genjax.config's idiom): the `model` section (model_config)
  and `optim` (genjax.config.adam) on `dataset` in batches of `batch_size` for `num_epochs`,
  pixels `preprocess`ed (`symmetric`: [-1, 1], a tanh generator's range; `unit`: [0, 1]), a
  `sample_grid` x `sample_grid` grid every `sample_every` steps. `arg`: None, or `smoke`
  (`smoke_steps` steps, genjax.config.apply_variant)."""
  from genjax import config as gconfig
  c = gconfig.step_config(
      "gan", gconfig.image_data(dataset, preprocess=preprocess, batch_size=batch_size), model,
      optim, gconfig.train_schedule(num_epochs, sample_every=sample_every,
                                    sample_grid=sample_grid))
  return gconfig.apply_variant(c, arg, smoke_steps=smoke_steps)


@dataclasses.dataclass(frozen=True)
class GANHParams:
  """Hyper-parameters the step closes over (static: part of the compiled program)."""

  z_dim: int
  num_classes: int = 0
  loss: str = "bce"
  generator_loss: str = "non_saturating"
  real_label: float = 1.0
  gp_weight: float = 0.0
  r1_weight: float = 0.0
  n_critic: int = 1
  fresh_generator_noise: bool = True
  ema_decay: float = 0.0
  # With batch-dependent layers in D, real and fake images go through separate passes
  # (the course's semantics); without, through one concatenated pass (the same values).
  d_batch_norm: bool = False


@struct.dataclass
class GANState:
  """A generator state, a discriminator state, the generator's EMA weights and a step count."""

  step: jax.Array
  generator: ModelState
  discriminator: ModelState
  generator_ema: Any  # a copy of generator.params, or None without EMA
  hparams: GANHParams = struct.field(pytree_node=False)


def _hparams(m: ml_collections.ConfigDict) -> GANHParams:
  get = m.get
  hp = GANHParams(z_dim=m.z_dim, num_classes=get("num_classes", 0), loss=get("loss", "bce"),
                  generator_loss=get("generator_loss", "non_saturating"),
                  real_label=get("real_label", 1.0), gp_weight=get("gp_weight", 0.0),
                  r1_weight=get("r1_weight", 0.0), n_critic=get("n_critic", 1),
                  fresh_generator_noise=get("fresh_generator_noise", True),
                  ema_decay=get("ema_decay", 0.0),
                  d_batch_norm=m.arch == "dcgan" and get("d_norm", "batch") == "batch")
  if hp.loss not in LOSSES:
    raise ValueError(f"unknown model.loss {hp.loss!r}; expected one of {LOSSES}")
  if hp.generator_loss not in losses.GENERATOR_LOSSES:
    raise ValueError(f"unknown model.generator_loss {hp.generator_loss!r}; "
                     f"expected one of {sorted(losses.GENERATOR_LOSSES)}")
  if hp.real_label != 1.0 and hp.loss != "bce":
    raise ValueError("model.real_label (label smoothing) applies to the bce loss only")
  if hp.n_critic < 1 or not 0.0 <= hp.ema_decay < 1.0:
    raise ValueError(f"need model.n_critic >= 1 and 0 <= model.ema_decay < 1, got "
                     f"{hp.n_critic} and {hp.ema_decay}")
  return hp


def build_models(config: ml_collections.ConfigDict):
  """The generator and discriminator modules a config describes."""
  m = config.model
  h, d_h = m.hidden_dim, m.get("d_hidden_dim", -1)
  image_shape = tuple(config.data.image_shape)
  spectral_norm = m.get("spectral_norm", False)
  if m.arch == "mlp":
    d_h = h if d_h < 0 else d_h
    return (MLPGenerator(hidden=(h, 2 * h, 4 * h, 8 * h), image_shape=image_shape),
            MLPDiscriminator(hidden=(4 * d_h, 2 * d_h, d_h), spectral_norm=spectral_norm))
  if m.arch == "dcgan":
    if image_shape[:2] != (28, 28):
      raise ValueError(f"the dcgan architecture makes 28x28 images, not {image_shape}")
    conv_impl = m.get("conv_impl", "auto")
    return (DCGANGenerator(hidden=h, channels=image_shape[2], conv_impl=conv_impl),
            DCGANDiscriminator(hidden=16 if d_h < 0 else d_h, norm=m.get("d_norm", "batch"),
                               spectral_norm=spectral_norm, conv_impl=conv_impl))
  raise ValueError(f"unknown GAN architecture {m.arch!r}; expected one of {ARCHS}")


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with the config's learning rate and betas."""
  return optimizers.adam(optim)


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> GANState:
  """Initialise both networks and their optimisers from `config`."""
  hp = _hparams(config.model)
  generator, discriminator = build_models(config)
  k_g, k_d = jax.random.split(key)
  h, w, c = config.data.image_shape
  z = jnp.zeros((2, hp.z_dim + hp.num_classes), jnp.float32)
  x = jnp.zeros((2, h, w, c + hp.num_classes), jnp.float32)
  g_vars = init_variables(generator, k_g, z, train=False)
  d_vars = init_variables(discriminator, k_d, x, train=False)
  tx = make_optimizer(config.optim)
  g = ModelState.create(generator, g_vars, tx)
  return GANState(step=jnp.zeros((), jnp.int32), generator=g,
                  discriminator=ModelState.create(discriminator, d_vars, tx),
                  # A copy: the loop donates the state, and one buffer cannot be donated twice.
                  generator_ema=jax.tree.map(jnp.copy, g.params) if hp.ema_decay > 0 else None,
                  hparams=hp)


# ----------------------------------------------------------------------------- networks


def _with_axis(module, axis_name: str | None):
  """The module with its batch norm averaging over `axis_name`, where it has batch norm."""
  if "bn_axis_name" in {f.name for f in dataclasses.fields(module)}:
    return module.clone(bn_axis_name=axis_name)
  return module


def _apply(net: ModelState, params: Any, stats: Any, x: jax.Array, axis_name: str | None,
           train: bool) -> tuple[jax.Array, Any]:
  """One network's output and, in training mode, its updated batch statistics."""
  module = _with_axis(net.module, axis_name)
  variables = {"params": params, "batch_stats": stats} if stats else {"params": params}
  if train and stats:
    y, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    return y, updates["batch_stats"]
  return module.apply(variables, x, train=train), stats


def generator_input(hp: GANHParams, z: jax.Array, labels: jax.Array | None) -> jax.Array:
  """z, with the one-hot class appended for a conditional GAN (64 + 10 = 74 in the course)."""
  if not hp.num_classes:
    return z
  return jnp.concatenate([z, jax.nn.one_hot(labels, hp.num_classes, dtype=z.dtype)], -1)


def discriminator_input(hp: GANHParams, x: jax.Array, labels: jax.Array | None) -> jax.Array:
  """Images, with the one-hot class broadcast as extra planes for a conditional GAN."""
  if not hp.num_classes:
    return x
  planes = jax.nn.one_hot(labels, hp.num_classes, dtype=x.dtype)[:, None, None, :]
  return jnp.concatenate([x, jnp.broadcast_to(planes, (*x.shape[:3], hp.num_classes))], -1)


# --------------------------------------------------------------------------------- losses


def discriminator_loss(hp: GANHParams, real_scores: jax.Array,
                       fake_scores: jax.Array) -> jax.Array:
  """The discriminator's (critic's) loss before penalties."""
  if hp.loss == "bce":
    return losses.gan_discriminator_bce(real_scores, fake_scores, hp.real_label)
  if hp.loss == "wasserstein":
    return losses.wasserstein_critic(real_scores, fake_scores)
  if hp.loss == "hinge":
    return losses.hinge_discriminator(real_scores, fake_scores)
  return losses.least_squares_discriminator(real_scores, fake_scores)


def generator_loss(hp: GANHParams, fake_scores: jax.Array) -> jax.Array:
  """The generator's loss for the discriminator's scores of its images."""
  if hp.loss == "bce":
    return losses.GENERATOR_LOSSES[hp.generator_loss](fake_scores)
  if hp.loss == "least_squares":
    return losses.least_squares_generator(fake_scores)
  return losses.wasserstein_generator(fake_scores)  # WGAN, and the hinge GAN's generator


def _score_metrics(hp: GANHParams, real_scores: jax.Array, fake_scores: jax.Array) -> dict:
  if hp.loss == "bce":  # probabilities are what the course plots
    return {"d_real": jnp.mean(jax.nn.sigmoid(real_scores)),
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_scores))}
  return {"real_score": jnp.mean(real_scores), "fake_score": jnp.mean(fake_scores)}


# ---------------------------------------------------------------------------------- steps


def _score_real_and_fake(hp: GANHParams, d: ModelState, params: Any, real: jax.Array,
                         fake: jax.Array, axis_name: str | None):
  """Training-mode scores of real and fake inputs, and D's updated batch statistics."""
  if hp.d_batch_norm:  # the course: fakes first, then reals, each normalised on its own
    fake_scores, stats = _apply(d, params, d.batch_stats, fake, axis_name, train=True)
    real_scores, stats = _apply(d, params, stats, real, axis_name, train=True)
    return real_scores, fake_scores, stats
  b = real.shape[0]
  scores, stats = _apply(d, params, d.batch_stats, jnp.concatenate([real, fake]), axis_name,
                         train=True)
  return scores[:b], scores[b:], stats


def _critic_update(hp: GANHParams, g: ModelState, d: ModelState, real: jax.Array,
                   labels: jax.Array | None, key: jax.Array, axis_name: str | None):
  """One discriminator update against fresh fakes; returns (g, d, z, metrics)."""
  z = rng.normal(key, real.shape[0], (hp.z_dim,), axis_name)
  fake, g_stats = _apply(g, g.params, g.batch_stats, generator_input(hp, z, labels), axis_name,
                         train=True)
  fake = jax.lax.stop_gradient(fake)
  real_in, fake_in = discriminator_input(hp, real, labels), discriminator_input(hp, fake, labels)

  def loss_fn(params):
    real_scores, fake_scores, stats = _score_real_and_fake(hp, d, params, real_in, fake_in,
                                                           axis_name)
    loss = discriminator_loss(hp, real_scores, fake_scores)
    metrics = _score_metrics(hp, real_scores, fake_scores)

    def score_fn(images):  # penalties differentiate D's score wrt the image alone
      scores, _ = _apply(d, params, stats, discriminator_input(hp, images, labels), axis_name,
                         train=True)
      return scores

    if hp.gp_weight:
      metrics["gp"] = losses.gradient_penalty(score_fn, real, fake, jax.random.fold_in(key, 1),
                                              axis_name)
      loss += hp.gp_weight * metrics["gp"]
    if hp.r1_weight:
      metrics["r1"] = losses.r1_penalty(score_fn, real)
      loss += 0.5 * hp.r1_weight * metrics["r1"]
    return loss, (metrics, stats)

  (loss, (metrics, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
  d = d.apply_gradients(pmean_if(grads, axis_name), batch_stats=stats)
  return g.replace(batch_stats=g_stats), d, z, {"d_loss": loss, **metrics}


def train_step(state: GANState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[GANState, dict]:
  """`n_critic` discriminator updates, then one generator update, each with fresh noise.

  Args:
    state: the GAN state.
    batch: {"image": float (B, H, W, C), "label": int (B,)}; under data parallelism,
      this device's slice. Labels are read only by a conditional GAN, whose fakes
      take the real batch's classes.
    key: the run's base training key; the step's key is folded from `state.step`.
    axis_name: the device axis to average gradients, metrics and batch statistics over.
  Returns:
    The new state and a dict of scalar metrics (averaged over devices, and over the
    critic updates for the discriminator's).
  """
  hp = state.hparams
  real = batch["image"]
  labels = batch["label"] if hp.num_classes else None
  k_d, k_g = jax.random.split(rng.step_key(key, state.step))
  g, d = state.generator, state.discriminator

  if hp.n_critic == 1:
    g, d, z, d_metrics = _critic_update(hp, g, d, real, labels, k_d, axis_name)
  else:
    def body(carry, k):
      g, d, z, metrics = _critic_update(hp, *carry, real, labels, k, axis_name)
      return (g, d), (z, metrics)

    (g, d), (zs, d_metrics) = jax.lax.scan(body, (g, d), jax.random.split(k_d, hp.n_critic))
    z, d_metrics = zs[-1], jax.tree.map(jnp.mean, d_metrics)

  # Generator, against the updated discriminator (whose running statistics this pass also
  # moves, as a training-mode forward pass does in the course).
  if hp.fresh_generator_noise:
    z = rng.normal(k_g, real.shape[0], (hp.z_dim,), axis_name)

  def g_loss_fn(g_params):
    x, g_stats = _apply(g, g_params, g.batch_stats, generator_input(hp, z, labels), axis_name,
                        train=True)
    scores, d_stats = _apply(d, d.params, d.batch_stats, discriminator_input(hp, x, labels),
                             axis_name, train=True)
    return generator_loss(hp, scores), (g_stats, d_stats)

  (g_loss, (g_stats, d_stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
  g = g.apply_gradients(pmean_if(g_grads, axis_name), batch_stats=g_stats)
  d = d.replace(batch_stats=d_stats)
  ema = state.generator_ema
  if ema is not None:
    ema = jax.tree.map(lambda e, p: hp.ema_decay * e + (1.0 - hp.ema_decay) * p, ema, g.params)

  metrics = {**d_metrics, "g_loss": g_loss}
  new_state = state.replace(step=state.step + 1, generator=g, discriminator=d,
                            generator_ema=ema)
  return new_state, pmean_if(metrics, axis_name)


def generate(state: GANState, z: jax.Array, labels: jax.Array | None = None,
             ema: bool = False) -> jax.Array:
  """Generator outputs (the data's range) for latents `z`, in inference mode.

  `labels` (int, (B,)) are required by a conditional GAN; `ema` uses the moving
  average of the generator's weights.
  """
  g = state.generator
  params = state.generator_ema if ema else g.params
  if params is None:
    raise ValueError("this GAN keeps no EMA generator (model.ema_decay = 0)")
  if state.hparams.num_classes and labels is None:
    raise ValueError("a conditional GAN needs labels to generate")
  stats = ema_batch_stats(state) if ema and g.batch_stats else g.batch_stats
  x, _ = _apply(g, params, stats, generator_input(state.hparams, z, labels), None, train=False)
  return x


# The EMA generator's batch-norm statistics: EMA_STATS_BATCHES batches of EMA_STATS_BATCH_SIZE
# latents from a fixed key, so that they are a pure function of the weights.
EMA_STATS_BATCHES, EMA_STATS_BATCH_SIZE, EMA_STATS_SEED = 16, 256, 0


def ema_batch_stats(state: GANState) -> Any:
  """Batch-norm statistics recomputed for the EMA generator's weights (the standard practice:
  the running statistics tracked in training belong to the raw generator's weights), as
  genjax.state.standing_batch_stats over EMA_STATS_BATCHES batches of prior latents (and
  uniform classes for a conditional GAN)."""
  hp, g = state.hparams, state.generator
  n, b = EMA_STATS_BATCHES, EMA_STATS_BATCH_SIZE
  k_z, k_y = jax.random.split(jax.random.key(EMA_STATS_SEED))
  z = jax.random.normal(k_z, (n, b, hp.z_dim))
  labels = (jax.random.randint(k_y, (n, b), 0, hp.num_classes) if hp.num_classes
            else jnp.zeros((n, b), jnp.int32))
  inputs = jax.vmap(lambda z, y: generator_input(hp, z, y if hp.num_classes else None))(z, labels)

  def apply_train(stats, x):
    return _apply(g, state.generator_ema, stats, x, None, train=True)[1]

  return standing_batch_stats(apply_train, g.batch_stats, inputs)


def eval_step(state: GANState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Losses and discriminator accuracy on a held-out batch, networks in inference mode."""
  hp = state.hparams
  real = batch["image"]
  labels = batch["label"] if hp.num_classes else None
  z = rng.normal(key, real.shape[0], (hp.z_dim,), axis_name)
  fake, _ = _apply(state.generator, state.generator.params, state.generator.batch_stats,
                   generator_input(hp, z, labels), axis_name, train=False)
  d = state.discriminator

  def scores(x):
    return _apply(d, d.params, d.batch_stats, discriminator_input(hp, x, labels), axis_name,
                  train=False)[0]

  real_scores, fake_scores = scores(real), scores(fake)
  metrics = {
      "d_loss": discriminator_loss(hp, real_scores, fake_scores),
      "g_loss": generator_loss(hp, fake_scores),
      **_score_metrics(hp, real_scores, fake_scores),
  }
  if hp.loss == "bce":
    metrics["d_accuracy"] = 0.5 * (jnp.mean(real_scores > 0) + jnp.mean(fake_scores <= 0))
  return pmean_if(metrics, axis_name)


def sample(state: GANState, key: jax.Array, num: int, ema: bool = False) -> jax.Array:
  """`num` generated images (the data's range), a pure function of `key`.

  A conditional GAN draws its classes with `sample_labels` (one grid row per class).
  """
  z = rng.normal(key, num, (state.hparams.z_dim,))
  return generate(state, z, latent.grid_labels(num, state.hparams.num_classes), ema)


def interpolate(state: GANState, key: jax.Array, rows: int, steps: int,
                ema: bool = False) -> jax.Array:
  """rows * steps images: row r walks in `steps` equal steps from one latent to another.

  Laid out with `steps` columns, each row is one straight line in z space; a
  conditional GAN keeps one class per row (`sample_labels(rows, num_classes)`).
  """
  z, labels = latent.interpolation_grid(key, rows, steps, state.hparams.z_dim,
                                       state.hparams.num_classes)
  return generate(state, z, labels, ema)


# ------------------------------------------------------------------ evaluation hooks

# genjax.evals: the final grid and eval_step means at train end; experiments/evaluate.py adds
# the evaluation grids and the domain-classifier sample quality (10,000 samples, minutes).
DEFAULT_EVALS = {
    "metrics": {},
    "grids": {},
    "sample_grids": {"on_train_end": False},
    "sample_quality": {"on_train_end": False, "num_samples": 10_000},
}


def sample_variants(state: GANState) -> dict[str, dict]:
  """Evaluation hook: grid-name suffix -> `sample` arguments of every generator (the EMA
  copy as `_ema` where there is one)."""
  return {"": {}, "_ema": {"ema": True}} if state.generator_ema is not None else {"": {}}


def num_classes(state: GANState) -> int:
  """Evaluation hook: the classes the generator is conditioned on (0: unconditional)."""
  return state.hparams.num_classes
