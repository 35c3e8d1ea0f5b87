"""GAN family: state, and pure train/eval/sample steps (generator vs discriminator)."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from genjax import losses, rng
from genjax.nn.mlp import MLPDiscriminator, MLPGenerator
from genjax.state import ModelState


@dataclasses.dataclass(frozen=True)
class GANHParams:
  """Hyper-parameters the step closes over (static: part of the compiled program)."""

  z_dim: int
  generator_loss: str = "non_saturating"
  real_label: float = 1.0  # < 1 gives one-sided label smoothing


@struct.dataclass
class GANState:
  """A generator state, a discriminator state and one step count."""

  step: jax.Array
  generator: ModelState
  discriminator: ModelState
  hparams: GANHParams = struct.field(pytree_node=False)


def build_models(config: ml_collections.ConfigDict):
  """The generator and discriminator modules a config describes."""
  m = config.model
  if m.arch != "mlp":
    raise ValueError(f"unknown GAN architecture {m.arch!r}; expected 'mlp'")
  h = m.hidden_dim
  image_shape = tuple(config.data.image_shape)
  generator = MLPGenerator(hidden=(h, 2 * h, 4 * h, 8 * h), image_shape=image_shape)
  discriminator = MLPDiscriminator(hidden=(4 * h, 2 * h, h))
  return generator, discriminator


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with the config's learning rate and betas."""
  return optax.adam(optim.learning_rate, b1=optim.b1, b2=optim.b2)


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> GANState:
  """Initialise both networks and their optimisers from `config`."""
  if config.model.generator_loss not in losses.GENERATOR_LOSSES:
    raise ValueError(f"unknown model.generator_loss {config.model.generator_loss!r}; "
                     f"expected one of {sorted(losses.GENERATOR_LOSSES)}")
  generator, discriminator = build_models(config)
  hparams = GANHParams(z_dim=config.model.z_dim, generator_loss=config.model.generator_loss,
                       real_label=config.model.get("real_label", 1.0))
  k_g, k_d = jax.random.split(key)
  z = jnp.zeros((2, hparams.z_dim), jnp.float32)
  x = jnp.zeros((2, *config.data.image_shape), jnp.float32)
  g_vars = generator.init(k_g, z, train=False)
  d_vars = discriminator.init(k_d, x, train=False)
  tx = make_optimizer(config.optim)
  return GANState(step=jnp.zeros((), jnp.int32),
                  generator=ModelState.create(generator, g_vars, tx),
                  discriminator=ModelState.create(discriminator, d_vars, tx),
                  hparams=hparams)


def _generate(g: ModelState, z: jax.Array, params: Any, axis_name: str | None, train: bool):
  """Run the generator; in training mode also return its updated batch statistics."""
  module = g.module.clone(bn_axis_name=axis_name)
  variables = {"params": params, "batch_stats": g.batch_stats}
  if not train:
    return module.apply(variables, z, train=False), g.batch_stats
  x, updates = module.apply(variables, z, train=True, mutable=["batch_stats"])
  return x, updates["batch_stats"]


def _discriminate(d: ModelState, params: Any, x: jax.Array) -> jax.Array:
  return d.module.apply({"params": params}, x)


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def train_step(state: GANState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[GANState, dict]:
  """One discriminator update then one generator update, each with fresh noise.

  Args:
    state: the GAN state.
    batch: {"image": float (B, H, W, C)}; under data parallelism, this device's slice.
    key: the run's base training key; the step's key is folded from `state.step`.
    axis_name: the device axis to average gradients, metrics and batch statistics over.
  Returns:
    The new state and a dict of scalar metrics (averaged over devices).
  """
  hp = state.hparams
  real = batch["image"]
  b = real.shape[0]
  k_d, k_g = jax.random.split(rng.step_key(key, state.step))
  g, d = state.generator, state.discriminator

  # Discriminator: real and fake through one forward pass (no batch-dependent layers in D).
  fake, g_stats = _generate(g, rng.normal(k_d, b, (hp.z_dim,), axis_name), g.params,
                            axis_name, train=True)
  fake = jax.lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    logits = _discriminate(d, d_params, jnp.concatenate([real, fake]))
    real_logits, fake_logits = logits[:b], logits[b:]
    loss = losses.gan_discriminator_bce(real_logits, fake_logits, hp.real_label)
    return loss, (real_logits, fake_logits)

  (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(d.params)
  d = d.apply_gradients(_pmean(d_grads, axis_name))
  g = g.replace(batch_stats=g_stats)

  # Generator, against the updated discriminator.
  generator_loss = losses.GENERATOR_LOSSES[hp.generator_loss]
  z = rng.normal(k_g, b, (hp.z_dim,), axis_name)

  def g_loss_fn(g_params):
    x, stats = _generate(g, z, g_params, axis_name, train=True)
    return generator_loss(_discriminate(d, d.params, x)), stats

  (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
  g = g.apply_gradients(_pmean(g_grads, axis_name), batch_stats=g_stats)

  metrics = {
      "d_loss": d_loss,
      "g_loss": g_loss,
      "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
      "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
  }
  new_state = state.replace(step=state.step + 1, generator=g, discriminator=d)
  return new_state, _pmean(metrics, axis_name)


def eval_step(state: GANState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Losses and discriminator accuracy on a held-out batch, networks in inference mode."""
  hp = state.hparams
  real = batch["image"]
  b = real.shape[0]
  z = rng.normal(key, b, (hp.z_dim,), axis_name)
  fake, _ = _generate(state.generator, z, state.generator.params, axis_name, train=False)
  d = state.discriminator
  real_logits = _discriminate(d, d.params, real)
  fake_logits = _discriminate(d, d.params, fake)
  metrics = {
      "d_loss": losses.gan_discriminator_bce(real_logits, fake_logits),
      "g_loss": losses.GENERATOR_LOSSES[hp.generator_loss](fake_logits),
      "d_accuracy": 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits <= 0)),
      "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
      "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
  }
  return _pmean(metrics, axis_name)


def sample(state: GANState, key: jax.Array, num: int) -> jax.Array:
  """`num` images in [0, 1] from the generator in inference mode; a pure function of `key`."""
  z = rng.normal(key, num, (state.hparams.z_dim,))
  x, _ = _generate(state.generator, z, state.generator.params, None, train=False)
  return x
