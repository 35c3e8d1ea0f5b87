"""VAE family: state, and pure train/eval/sample steps for the ELBO and the IWAE objective.

One step covers Burda, Grosse & Salakhutdinov's (2016) VAE and IWAE with one or two stochastic
layers, the 784-400-20 MLP VAE, the convolutional VAE, beta-VAE, the conditional VAE, and
Bernoulli or Gaussian decoders:
  * `elbo`: E_q[log p(x | z)] - beta * KL(q(z | x) || p(z)), averaged over k samples; the KL
    is analytic where it exists (the top layer's, given its parent) and Monte Carlo below;
  * `iwae`: log (1/k) sum_j p(x, z_j) / q(z_j | x), z_j ~ q (reparameterised), k a config value.
Noise is drawn per example from the step key (genjax.rng.example_keys), so a run on N devices
draws what a one-device run with the same global batch draws.
"""

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from genjax import latent, optimizers, rng
from genjax.latent import interpolate_latents, sample_labels  # noqa: F401 (vae.*, as before)
from genjax.metrics import likelihood
from genjax.nn.vae import VAENet
from genjax.parallel import pmean_if
from genjax.state import ModelState, init_variables

OBJECTIVES = ("elbo", "iwae")
SCHEDULES = ("constant", "burda")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# genjax.evals: eval_step means and the final grid at train end; experiments/evaluate.py adds
# the latent figures and active units, and the k = 5000 importance-sampled test NLL (minutes).
DEFAULT_EVALS = {
    "metrics": {},
    "grids": {},
    "latents": {"on_train_end": False},
    "nll": {"on_train_end": False, "nll_k": 5000, "nll_examples": -1, "nll_batch": 20,
            "nll_chunk": 1000},
}


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section of a VAE config, every switch present (so each can be overridden).

  The defaults are Burda et al.'s one-stochastic-layer VAE.
  """
  c = ml_collections.ConfigDict({
      "arch": "mlp",  # mlp | conv
      "z_dims": (50,),  # latent sizes, bottom first: (100, 50) for two stochastic layers
      "hidden": ((200, 200),),  # encoder hidden widths per layer (decoders mirror them)
      "activation": "tanh",  # tanh | relu | leaky_relu
      "likelihood": "bernoulli",  # bernoulli | gaussian (continuous data in [0, 1])
      "min_std": 0.01,  # gaussian decoder: smallest pixel standard deviation
      "conv_hidden": (16, 64),  # conv encoder and decoder widths (the course's VAE lab)
      "conv_impl": "auto",  # conv arch convolutions: matmul | xla | auto (matmul on CPU, else xla)
      "num_classes": 0,  # > 0: conditional VAE (class one-hot into encoder and decoder)
      "objective": "elbo",  # elbo | iwae
      "k": 1,  # samples per example in the objective
      "beta": 1.0,  # KL weight (beta-VAE; elbo only)
      "analytic_kl": True,  # elbo: closed-form KL where it exists
      "eval_k": 50,  # eval_step's samples for the IWAE bound (>= k)
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no VAE model field {name!r}")
    c[name] = value
  return c


def optim_config(learning_rate: float = 1e-3, eps: float = 1e-4, schedule: str = "constant",
                 stage_epochs=(), steps_per_epoch: int = -1) -> ml_collections.ConfigDict:
  """The `optim` section: Adam, and a constant or Burda et al.'s staged learning rate.

  `burda`: stage i lasts stage_epochs[i] epochs at learning_rate * 10^(-i/7) (the paper:
  3^i epochs, i = 0..7).
  """
  return ml_collections.ConfigDict({
      "learning_rate": learning_rate, "b1": 0.9, "b2": 0.999, "eps": eps,
      "schedule": schedule, "stage_epochs": tuple(stage_epochs),
      "steps_per_epoch": steps_per_epoch})


@dataclasses.dataclass(frozen=True)
class VAEHParams:
  """Hyper-parameters the step closes over (static: part of the compiled program)."""

  z_dims: tuple[int, ...]
  likelihood: str = "bernoulli"
  num_classes: int = 0
  objective: str = "elbo"
  k: int = 1
  beta: float = 1.0
  analytic_kl: bool = True
  eval_k: int = 50


@struct.dataclass
class VAEState:
  """The network's state (encoders and decoders together) and the step count."""

  step: jax.Array
  model: ModelState
  hparams: VAEHParams = struct.field(pytree_node=False)


def _hparams(m: ml_collections.ConfigDict) -> VAEHParams:
  hp = VAEHParams(z_dims=tuple(m.z_dims), likelihood=m.likelihood, num_classes=m.num_classes,
                  objective=m.objective, k=m.k, beta=m.beta, analytic_kl=m.analytic_kl,
                  eval_k=max(m.eval_k, m.k))
  if hp.objective not in OBJECTIVES:
    raise ValueError(f"unknown model.objective {hp.objective!r}; expected one of {OBJECTIVES}")
  if hp.k < 1:
    raise ValueError(f"model.k must be >= 1, got {hp.k}")
  if hp.objective == "iwae" and hp.beta != 1.0:
    raise ValueError("model.beta weights the ELBO's KL; the IWAE objective has none")
  return hp


def build_model(config: ml_collections.ConfigDict) -> VAENet:
  """The network `config.model` describes."""
  m = config.model
  return VAENet(image_shape=tuple(config.data.image_shape), z_dims=tuple(m.z_dims),
                hidden=tuple(tuple(h) for h in m.hidden), arch=m.arch, activation=m.activation,
                likelihood=m.likelihood, num_classes=m.num_classes, min_std=m.min_std,
                conv_hidden=tuple(m.conv_hidden), conv_impl=m.get("conv_impl", "auto"),
                conditioning=m.get("conditioning", "concat"))


def burda_schedule(learning_rate: float, stage_steps) -> optax.Schedule:
  """learning_rate * 10^(-i/7) during stage i, which lasts stage_steps[i] updates."""
  ends = itertools.accumulate(stage_steps[:-1])
  return optimizers.step_decay(learning_rate, ends, 10.0 ** (-1.0 / 7.0))


def make_optimizer(o: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with the config's betas and epsilon (Burda et al.: 1e-4) and learning rate schedule."""
  if o.schedule not in SCHEDULES:
    raise ValueError(f"unknown optim.schedule {o.schedule!r}; expected one of {SCHEDULES}")
  lr = o.learning_rate
  if o.schedule == "burda":
    if o.steps_per_epoch <= 0 or not o.stage_epochs:
      raise ValueError("optim.schedule='burda' needs optim.stage_epochs and "
                       "optim.steps_per_epoch")
    lr = burda_schedule(o.learning_rate, [e * o.steps_per_epoch for e in o.stage_epochs])
  return optimizers.adam(o, lr)


NUM_TRAIN = 60_000  # training images of MNIST and Fashion-MNIST: an epoch


def experiment_config(arg: str | None = None, *, model=None, optim=None, dataset: str = "mnist",
                      preprocess: str = "binarize_dynamic", batch_size: int = 128,
                      num_epochs: int = 20, log_every: int = 0, checkpoint_every: int = 0,
                      sample_every: int = 0, sample_grid: int = 8,
                      steps_per_dispatch: int = 1) -> ml_collections.ConfigDict:
  """The config of a VAE experiment (genjax.config's idiom): the `model` section (model_config;
  default its defaults) and `optim` (optim_config) on `dataset` in batches of `batch_size` for
  `num_epochs`, logging every epoch and checkpointing and drawing a `sample_grid` grid every
  10 epochs unless `log_every`, `checkpoint_every`, `sample_every` (> 0) say otherwise.

  `arg`: None, or `smoke` (40 steps, genjax.config.apply_variant, the test bound with only the
  training k samples per image: the bound over the whole test set is a smoke run's largest
  cost). Burda et al.'s experiments are `experiment_config(arg, **burda_settings(...))`.
  """
  from genjax import config as gconfig
  steps_per_epoch = NUM_TRAIN // batch_size
  log_every = log_every or steps_per_epoch
  checkpoint_every = checkpoint_every or 10 * steps_per_epoch
  c = gconfig.step_config(
      "vae", gconfig.image_data(dataset, preprocess=preprocess, batch_size=batch_size),
      model if model is not None else model_config(),
      optim if optim is not None else optim_config(),
      gconfig.train_schedule(num_epochs, log_every=log_every, checkpoint_every=checkpoint_every,
                             sample_every=sample_every or checkpoint_every,
                             sample_grid=sample_grid))
  c.train.steps_per_dispatch = steps_per_dispatch
  c = gconfig.apply_variant(c, arg)
  if arg == "smoke":
    c.model.eval_k = c.model.k
  return c


def burda_stage_epochs(scale: float = 1.0, stages: int = 8) -> tuple[int, ...]:
  """Epochs of each of Burda et al.'s learning-rate stages: 3^i (i = 0..7) times `scale`,
  at least one each."""
  return tuple(max(1, round(scale * 3**i)) for i in range(stages))


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> VAEState:
  """Initialise the network and its optimiser from `config`."""
  hp = _hparams(config.model)
  net = build_model(config)
  x = jnp.zeros((2, *config.data.image_shape), jnp.float32)
  y = jnp.zeros((2,), jnp.int32) if hp.num_classes else None
  variables = init_variables(net, key, x, y)
  return VAEState(step=jnp.zeros((), jnp.int32),
                  model=ModelState.create(net, variables, make_optimizer(config.optim)),
                  hparams=hp)


# ------------------------------------------------------------------------------ densities


def gaussian_kl(mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """KL(N(mean, exp(log_std)^2) || N(0, 1)) summed over the last axis."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(2.0 * log_std) - 1.0 - 2.0 * log_std, -1)


def gaussian_log_prob(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """log N(z; mean, exp(log_std)^2) summed over the last axis."""
  return jnp.sum(-0.5 * jnp.square((z - mean) * jnp.exp(-log_std)) - log_std - _HALF_LOG_2PI,
                 -1)


def observation_log_prob(x_BxD: jax.Array, out, likelihood_name: str) -> jax.Array:
  """log p(x | z) of flat images x (B, D) under decoder outputs for (B, K) samples: (B, K).

  Bernoulli: `out` are logits (B, K, D) and log p = sum x * l - softplus(l) (the negative
  binary cross-entropy, also for targets in [0, 1]); Gaussian: `out` is (mean (B, K, D),
  log std (D,)).
  """
  x = x_BxD[:, None, :]
  if likelihood_name == "bernoulli":
    return jnp.sum(x * out - jax.nn.softplus(out), -1)
  mean, log_std = out
  return gaussian_log_prob(x, mean, log_std)


# ------------------------------------------------------------------------------ objectives


def draw_noise(key: jax.Array, batch: int, k: int, z_dims: tuple[int, ...],
               axis_name: str | None = None) -> list[jax.Array]:
  """Standard normal noise (batch, k, z) for each stochastic layer, drawn per example."""
  def one(example_key):
    keys = jax.random.split(example_key, len(z_dims))
    return [jax.random.normal(kk, (k, z)) for kk, z in zip(keys, z_dims, strict=True)]
  return jax.vmap(one)(rng.example_keys(key, batch, axis_name))


def log_weights(net: VAENet, params, x: jax.Array, y_B: jax.Array | None,
                eps: list[jax.Array]) -> dict:
  """The terms of the importance weights of k reparameterised samples per example.

  Args:
    net, params: the VAE network and its parameters.
    x: images (B, H, W, C) (or flat (B, D)).
    y_B: int classes for a conditional VAE, else None.
    eps: per stochastic layer, standard normal noise (B, K, z_l).
  Returns:
    {"log_px": log p(x | z_1), "kl_mc": log q(z | x) - log p(z) (so that log_px - kl_mc is the
    log importance weight), "kl": the same with the top layer's term replaced by its analytic
    KL given its parent}, each (B, K).
  """
  v = {"params": params}
  b, k = eps[0].shape[:2]
  x_BxD = x.reshape(b, -1)
  y_N = None if y_B is None else jnp.repeat(y_B, k)  # the (B*K) rows are example-major
  mean, log_std = net.apply(v, x, 0, y_B, method=VAENet.encode)
  mean, log_std = mean[:, None], log_std[:, None]
  log_q = []
  zs = []
  for level, e in enumerate(eps):
    if level:
      mean, log_std = net.apply(v, zs[-1].reshape(b * k, -1), level, y_N, method=VAENet.encode)
      mean, log_std = mean.reshape(b, k, -1), log_std.reshape(b, k, -1)
    zs.append(mean + jnp.exp(log_std) * e)
    # log q at z = mean + std * eps, from eps itself (exact, and no division by std).
    log_q.append(jnp.sum(-0.5 * jnp.square(e) - log_std - _HALF_LOG_2PI, -1))
  log_p = lp_top = log_p_top(zs[-1])
  kl_top = jnp.broadcast_to(gaussian_kl(mean, log_std), (b, k))
  for level in range(len(eps) - 1, 0, -1):
    m, s = net.apply(v, zs[level].reshape(b * k, -1), level, y_N, method=VAENet.decode)
    log_p = log_p + gaussian_log_prob(zs[level - 1], m.reshape(b, k, -1), s.reshape(b, k, -1))
  out = net.apply(v, zs[0].reshape(b * k, -1), 0, y_N, method=VAENet.decode)
  out = out.reshape(b, k, -1) if isinstance(out, jax.Array) else (out[0].reshape(b, k, -1),
                                                                  out[1])
  log_px = observation_log_prob(x_BxD, out, net.likelihood)
  kl_mc = sum(log_q) - log_p
  return {"log_px": log_px, "kl_mc": kl_mc, "kl": kl_mc - (log_q[-1] - lp_top) + kl_top}


def log_p_top(z_BxKxZ: jax.Array) -> jax.Array:
  """log N(z; 0, I) of the top latent, summed: (B, K)."""
  return jnp.sum(-0.5 * jnp.square(z_BxKxZ) - _HALF_LOG_2PI, -1)


def elbo(terms: dict, beta: float = 1.0, analytic_kl: bool = True) -> jax.Array:
  """Per-example ELBO (or beta-weighted ELBO) averaged over the k samples: (B,)."""
  kl = terms["kl"] if analytic_kl else terms["kl_mc"]
  return jnp.mean(terms["log_px"] - beta * kl, -1)


def iwae(terms: dict) -> jax.Array:
  """Per-example IWAE bound over the k samples: (B,)."""
  return likelihood.iwae_bound(terms["log_px"] - terms["kl_mc"])


def _objective(hp: VAEHParams, terms: dict) -> jax.Array:
  if hp.objective == "iwae":
    return jnp.mean(iwae(terms))
  return jnp.mean(elbo(terms, hp.beta, hp.analytic_kl))


def _labels(hp: VAEHParams, batch: dict) -> jax.Array | None:
  return batch["label"] if hp.num_classes else None


def train_step(state: VAEState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[VAEState, dict]:
  """One Adam step on the negative objective (ELBO or IWAE bound) of `batch`.

  Args:
    state: the VAE state.
    batch: {"image": float (B, H, W, C), "label": int32 (B,)}; under data parallelism, this
      device's slice.
    key: the run's base training key; the step's noise comes from fold_in(key, state.step),
      one key per example of the global batch.
    axis_name: the device axis to average gradients and metrics over.
  Returns:
    The new state and {"loss" (the negative objective, nats per image), "elbo", "recon"
    (-E log p(x | z)), "kl"} (and "iwae" for the IWAE objective), averaged over devices.
  """
  hp = state.hparams
  m = state.model
  x = batch["image"]
  eps = draw_noise(rng.step_key(key, state.step), x.shape[0], hp.k, hp.z_dims, axis_name)
  y = _labels(hp, batch)

  def loss_fn(params):
    terms = log_weights(m.module, params, x, y, eps)
    return -_objective(hp, terms), terms

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
  model = m.apply_gradients(pmean_if(grads, axis_name))
  metrics = _metrics(hp, terms, loss)
  return state.replace(step=state.step + 1, model=model), pmean_if(metrics, axis_name)


def _metrics(hp: VAEHParams, terms: dict, loss: jax.Array) -> dict:
  kl = terms["kl"] if hp.analytic_kl else terms["kl_mc"]
  metrics = {"loss": loss, "elbo": jnp.mean(elbo(terms, 1.0, hp.analytic_kl)),
             "recon": -jnp.mean(terms["log_px"]), "kl": jnp.mean(kl)}
  if hp.objective == "iwae":
    metrics["iwae"] = jnp.mean(iwae(terms))
  return metrics


def eval_step(state: VAEState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """The objective and bounds of a batch, from `eval_k` samples per example.

  Returns {"loss" (the training objective at its k, from the first k samples), "elbo",
  "recon", "kl" (over all eval_k samples), "iwae" (the eval_k-sample bound),
  "nll_iwae" (its negative: an upper bound on the test NLL)}, averaged over devices.
  """
  hp = state.hparams
  m = state.model
  x = batch["image"]
  eps = draw_noise(key, x.shape[0], hp.eval_k, hp.z_dims, axis_name)
  terms = log_weights(m.module, m.params, x, _labels(hp, batch), eps)
  first_k = {name: t[:, :hp.k] for name, t in terms.items()}
  metrics = _metrics(dataclasses.replace(hp, objective="elbo"), terms,
                     -_objective(hp, first_k))
  metrics["iwae"] = jnp.mean(iwae(terms))
  metrics["nll_iwae"] = -metrics["iwae"]
  return pmean_if(metrics, axis_name)


# ------------------------------------------------------------------ sampling and latents


def decode_mean(state: VAEState, z_top: jax.Array, key: jax.Array | None = None,
                labels: jax.Array | None = None) -> jax.Array:
  """Images (N, H, W, C) in [0, 1]: the mean of p(x | z_1), with z_1 drawn from the
  intermediate layers p(z_l | z_{l+1}) with `key` (or their means when key is None)."""
  m, hp = state.model, state.hparams
  v = m.variables
  z = z_top
  for level in range(len(hp.z_dims) - 1, 0, -1):
    mean, log_std = m.module.apply(v, z, level, labels, method=VAENet.decode)
    z = mean
    if key is not None:
      z = mean + jnp.exp(log_std) * jax.random.normal(jax.random.fold_in(key, level), mean.shape)
  out = m.module.apply(v, z, 0, labels, method=VAENet.decode)
  x = jax.nn.sigmoid(out) if hp.likelihood == "bernoulli" else out[0]
  return x.reshape(z.shape[0], *m.module.image_shape)


def sample(state: VAEState, key: jax.Array, num: int) -> jax.Array:
  """`num` images from the prior, in [0, 1] (the decoder's mean), a pure function of `key`.

  A conditional VAE draws its classes with `sample_labels` (one grid row per class).
  """
  hp = state.hparams
  k_z, k_layers = jax.random.split(key)
  z = rng.normal(k_z, num, (hp.z_dims[-1],))
  return decode_mean(state, z, k_layers, latent.grid_labels(num, hp.num_classes))


def encode(state: VAEState, x: jax.Array, labels: jax.Array | None = None,
           key: jax.Array | None = None) -> list[jax.Array]:
  """The posterior mean of every stochastic layer, bottom first: [(N, z_l)].

  Above the first layer, q(z_{l+1} | z_l) takes a sample of z_l drawn with `key` (its mean
  when key is None); Burda et al.'s active units average it over samples.
  """
  m = state.model
  means, h = [], x
  for level in range(len(state.hparams.z_dims)):
    mean, log_std = m.module.apply(m.variables, h, level, labels, method=VAENet.encode)
    means.append(mean)
    h = mean
    if key is not None:
      h = mean + jnp.exp(log_std) * jax.random.normal(jax.random.fold_in(key, level), mean.shape)
  return means


def reconstruct(state: VAEState, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
  """Images decoded from the top posterior mean of `x` (N, H, W, C), in [0, 1]."""
  return decode_mean(state, encode(state, x, labels)[-1], None, labels)


def interpolate(state: VAEState, key: jax.Array, rows: int, steps: int) -> jax.Array:
  """rows * steps images: row r walks in `steps` equal steps between two prior draws of z."""
  hp = state.hparams
  z, labels = latent.interpolation_grid(key, rows, steps, hp.z_dims[-1], hp.num_classes)
  return decode_mean(state, z, None, labels)


def num_classes(state: VAEState) -> int:
  """Evaluation hook: the classes the model is conditioned on (0: unconditional)."""
  return state.hparams.num_classes


def log_weight_fn(state: VAEState, labels_known: bool = False):
  """log_weight_fn(x_bxD, keys_b, n) -> (b, n) log importance weights, as
  genjax.metrics.likelihood expects; with `labels_known`, x carries the class as its last
  column (a conditional VAE's likelihood is p(x | y))."""
  m, hp = state.model, state.hparams

  def fn(x_bxD, keys_b, n):
    y = None
    if labels_known:
      x_bxD, y = x_bxD[:, :-1], x_bxD[:, -1].astype(jnp.int32)
    def one(example_key):
      keys = jax.random.split(example_key, len(hp.z_dims))
      return [jax.random.normal(kk, (n, z)) for kk, z in zip(keys, hp.z_dims, strict=True)]
    eps = jax.vmap(one)(keys_b)
    x = x_bxD.reshape(x_bxD.shape[0], *m.module.image_shape)
    terms = log_weights(m.module, m.params, x, y, eps)
    return terms["log_px"] - terms["kl_mc"]

  return fn


def burda_settings(layers: int = 1, objective: str = "elbo", k: int = 1,
                   stage_scale: float = 1.0, batch_size: int = 20) -> dict:
  """experiment_config's keyword settings for Burda et al.'s MNIST experiment: 1 or 2
  stochastic layers, VAE or IWAE with k samples, dynamically binarised MNIST (all 60,000
  training images), batch 20, Adam (epsilon 1e-4) with learning rate 1e-3 * 10^(-i/7) for 3^i
  epochs (times `stage_scale`), i = 0..7. A preset of settings, so that its configs are
  `vae.experiment_config(arg, **vae.burda_settings(...))` as every other VAE config."""
  if layers not in (1, 2):
    raise ValueError(f"Burda et al.'s models have 1 or 2 stochastic layers, not {layers}")
  model = model_config(objective=objective, k=k, eval_k=max(50, k),
                       z_dims=(50,) if layers == 1 else (100, 50),
                       hidden=((200, 200),) if layers == 1 else ((200, 200), (100, 100)))
  stages = burda_stage_epochs(stage_scale)
  steps_per_epoch = NUM_TRAIN // batch_size
  log_every = min(1000, steps_per_epoch)
  # Batch-20 steps are too small to keep a device busy one call at a time: 100 per call (the
  # same run, bit for bit; genjax.train.make_multi_step).
  return {"model": model, "optim": optim_config(1e-3, 1e-4, "burda", stages, steps_per_epoch),
          "batch_size": batch_size, "num_epochs": sum(stages), "log_every": log_every,
          "checkpoint_every": 5 * log_every, "sample_every": 5 * log_every,
          "steps_per_dispatch": 100}
