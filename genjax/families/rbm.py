"""Bernoulli-Bernoulli restricted Boltzmann machine: CD-k and persistent CD as a genjax family.

The model (energy, conditionals, Gibbs sampling, the CD gradient) is genjax.structured.rbm's,
re-exported here. Training follows Hinton's practical guide (2010): the CD-k (or persistent CD)
estimate of the log-likelihood gradient with hidden probabilities in the statistics, sampled hidden
states driving the chains, SGD with momentum (0.5, then 0.9), L2 weight decay on W, and a learning
rate that decays linearly to zero over the last part of the run. Persistent chains live in the
state. The step is pure: its noise is folded from the run key and `state.step`, and under data
parallelism every device draws the global batch's noise and takes its own slice, so a run on N
devices takes the same steps as one device with the same global batch.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from genjax import rng
from genjax.parallel import device_index, pmean_if

# The model (re-exported: the family's users read the model through it, as before).
from genjax.structured.rbm import (  # noqa: F401
    RBMParams,
    _bernoulli,
    cd_gradient,
    chain_grid,
    energy,
    exact_log_partition,
    free_energy,
    gibbs_chain,
    gibbs_step,
    hidden_probs,
    pseudo_log_likelihood,
    visible_probs,
)

METHODS = ("cd", "pcd")


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section of an RBM config, every field present (so each can be overridden)."""
  c = ml_collections.ConfigDict({
      "num_hidden": 500,
      "method": "cd",  # cd | pcd (persistent chains in the state)
      "cd_k": 1,  # Gibbs steps per update
      "init_scale": 0.01,  # W ~ N(0, init_scale^2)
      "visible_bias_init": "data",  # data: log(p / (1 - p)) of the training pixels | zero
      "sample_gibbs_steps": 1000,  # block Gibbs steps behind each sample grid
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no RBM model field {name!r}")
    c[name] = value
  return c


def optim_config(**overrides) -> ml_collections.ConfigDict:
  """The `optim` section: SGD with momentum and weight decay, as in Hinton's guide."""
  c = ml_collections.ConfigDict({
      "learning_rate": 0.05,
      "initial_momentum": 0.5,
      "final_momentum": 0.9,
      "momentum_switch_step": 3000,  # 5 epochs of 600 batches of 100
      "weight_decay": 2e-4,  # L2 on W (not the biases)
      "decay_start": 0.5,  # the learning rate decays linearly to 0 from this fraction of the run
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no RBM optim field {name!r}")
    c[name] = value
  return c


def ais_config(**overrides) -> ml_collections.ConfigDict:
  """The `ais` section: the annealed importance sampling behind the test log-likelihood
  (experiments/evaluate.py, experiments/rbm_ais.py), Salakhutdinov & Murray (2008)'s schedule."""
  c = ml_collections.ConfigDict({
      "num_betas": 14_500,  # 500 in [0, 0.5], 4,000 in [0.5, 0.9], 10,000 in [0.9, 1] (S&M 2008)
      "num_runs": 100,  # importance weights per log Z estimate
      "num_repeats": 5,  # independent estimates, for the spread of log Z
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no AIS field {name!r}")
    c[name] = value
  return c


NUM_TRAIN = 60_000  # MNIST's training images
VARIANTS = ("budget", "pcd", "smoke")


def experiment_config(arg: str | None = None, *, model: ml_collections.ConfigDict,
                      optim: ml_collections.ConfigDict, num_epochs: int = 200,
                      batch_size: int = 100) -> ml_collections.ConfigDict:
  """The config of an RBM on dynamically binarised MNIST (genjax.config's idiom): `model`
  (model_config) and `optim` (optim_config) in batches of `batch_size` for `num_epochs`, logged
  every 200 steps, checkpointed and sampled (10 x 10 grids) every 10 epochs, with the `ais`
  section. `arg`: None; `budget` (the same for 15 epochs, checkpoints every 2 and grids every 5);
  `pcd` (persistent CD-1 at learning rate 0.02 for 50 epochs); `smoke` (40 steps of a 32-unit
  CD-2 RBM and a short AIS, seconds)."""
  from genjax import config as gconfig
  if arg not in (None, *VARIANTS):
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS} or nothing")
  steps_per_epoch = NUM_TRAIN // batch_size
  train = gconfig.train_schedule(-1, log_every=200, checkpoint_every=10 * steps_per_epoch,
                                 sample_every=10 * steps_per_epoch, sample_grid=10)
  train.num_steps = num_epochs * steps_per_epoch
  c = gconfig.step_config(
      "rbm", gconfig.image_data("mnist", preprocess="binarize_dynamic", batch_size=batch_size),
      model, optim, train)
  c.ais = ais_config()
  if arg == "budget":
    c.train.num_steps = 15 * steps_per_epoch
    c.train.checkpoint_every = 2 * steps_per_epoch
    c.train.sample_every = 5 * steps_per_epoch
  elif arg == "pcd":
    c.model.method = "pcd"
    c.model.cd_k = 1
    c.optim.learning_rate = 0.02
    c.train.num_steps = 50 * steps_per_epoch
    c.train.checkpoint_every = 10 * steps_per_epoch
  elif arg == "smoke":
    c.model.num_hidden = 32
    c.model.cd_k = 2
    c.model.sample_gibbs_steps = 20
    c.optim.momentum_switch_step = 10
    c.train.num_steps = 40
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.train.sample_every = 20
    c.train.sample_grid = 4
    c.ais.num_betas = 200
    c.ais.num_runs = 16
    c.ais.num_repeats = 2
    gconfig.set_smoke_evals(c)
  return c


@struct.dataclass
class RBMHParams:
  """What the step closes over (static: part of the compiled program)."""

  method: str = struct.field(pytree_node=False, default="cd")
  cd_k: int = struct.field(pytree_node=False, default=1)
  learning_rate: float = struct.field(pytree_node=False, default=0.05)
  initial_momentum: float = struct.field(pytree_node=False, default=0.5)
  final_momentum: float = struct.field(pytree_node=False, default=0.9)
  momentum_switch_step: int = struct.field(pytree_node=False, default=0)
  weight_decay: float = struct.field(pytree_node=False, default=0.0)
  decay_start_step: int = struct.field(pytree_node=False, default=-1)  # < 0: constant rate
  num_steps: int = struct.field(pytree_node=False, default=1)
  sample_gibbs_steps: int = struct.field(pytree_node=False, default=1000)
  image_shape: tuple = struct.field(pytree_node=False, default=(28, 28, 1))
  visible_bias_init: str = struct.field(pytree_node=False, default="data")


@struct.dataclass
class RBMState:
  """Parameters, their momentum velocities, the persistent chains and the step count."""

  step: jax.Array
  params: RBMParams
  velocity: RBMParams
  chains: jax.Array  # (batch, D) persistent fantasy particles (pcd); unused for cd
  hparams: RBMHParams = struct.field(pytree_node=False)




def _hparams(config: ml_collections.ConfigDict) -> RBMHParams:
  m, o, t = config.model, config.optim, config.train
  if m.method not in METHODS:
    raise ValueError(f"unknown model.method {m.method!r}; expected one of {METHODS}")
  if m.cd_k < 1:
    raise ValueError(f"model.cd_k must be >= 1, got {m.cd_k}")
  num_steps = t.num_steps
  decay_start = -1
  if o.decay_start < 1.0:
    if num_steps <= 0:
      # The family sees only the config, not the data, so it cannot turn epochs into steps.
      raise ValueError("a decaying learning rate (optim.decay_start < 1) needs train.num_steps")
    decay_start = int(o.decay_start * num_steps)
  return RBMHParams(method=m.method, cd_k=m.cd_k, learning_rate=o.learning_rate,
                    initial_momentum=o.initial_momentum, final_momentum=o.final_momentum,
                    momentum_switch_step=o.momentum_switch_step, weight_decay=o.weight_decay,
                    decay_start_step=decay_start, num_steps=max(num_steps, 1),
                    sample_gibbs_steps=m.sample_gibbs_steps,
                    image_shape=tuple(config.data.image_shape),
                    visible_bias_init=config.model.visible_bias_init)


def data_visible_bias(pixel_means_D: np.ndarray, eps: float = 1e-3) -> np.ndarray:
  """log(p / (1 - p)) of per-pixel on-probabilities, clipped to [eps, 1 - eps]."""
  p = np.clip(np.asarray(pixel_means_D, np.float64), eps, 1.0 - eps)
  return np.log(p / (1.0 - p)).astype(np.float32)


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> RBMState:
  """Small random weights, zero hidden and visible biases, zero velocities, and persistent
  chains started at the visible biases' marginals. With `model.visible_bias_init == "data"`
  the loop then calls `init_from_data`, which sets the visible biases from the training split
  (Hinton's guide)."""
  hp = _hparams(config)
  if config.model.visible_bias_init not in ("data", "zero"):
    raise ValueError(f"unknown model.visible_bias_init {config.model.visible_bias_init!r}; "
                     "expected 'data' or 'zero'")
  d, h = int(np.prod(config.data.image_shape)), config.model.num_hidden
  k_w, k_chain = jax.random.split(key)
  w = config.model.init_scale * jax.random.normal(k_w, (d, h), jnp.float32)
  params = RBMParams(w=w, b=jnp.zeros((d,), jnp.float32), c=jnp.zeros((h,), jnp.float32))
  return RBMState(step=jnp.zeros((), jnp.int32), params=params,
                  velocity=jax.tree.map(jnp.zeros_like, params),
                  chains=_chains(k_chain, params.b, config.data.batch_size), hparams=hp)


def _chains(key: jax.Array, b_D: jax.Array, num: int) -> jax.Array:
  return jax.random.bernoulli(key, jax.nn.sigmoid(b_D), (num, b_D.shape[0])).astype(jnp.float32)


def pixel_means(train) -> np.ndarray:
  """Mean intensity in [0, 1] of each pixel over a split (the on-probability of a dynamically
  binarised pixel)."""
  x = train.arrays["image"]
  return x.reshape(len(x), -1).astype(np.float64).mean(0) / 255.0


def init_from_data(state: RBMState, train, key: jax.Array) -> RBMState:
  """Visible biases at the log-odds of the training pixels' means, and the persistent chains
  redrawn from them (`key` is create_state's, so the chains are drawn with the same key)."""
  if state.hparams.visible_bias_init != "data":
    return state
  b = jnp.asarray(data_visible_bias(pixel_means(train)))
  _, k_chain = jax.random.split(key)
  return state.replace(params=state.params.replace(b=b),
                      chains=_chains(k_chain, b, state.chains.shape[0]))


def learning_rate(hp: RBMHParams, step: jax.Array) -> jax.Array:
  """The base rate, decaying linearly to 0 between decay_start_step and num_steps."""
  if hp.decay_start_step < 0:
    return jnp.asarray(hp.learning_rate, jnp.float32)
  span = max(hp.num_steps - hp.decay_start_step, 1)
  frac = jnp.clip((hp.num_steps - step) / span, 0.0, 1.0)
  return hp.learning_rate * frac.astype(jnp.float32)


def momentum(hp: RBMHParams, step: jax.Array) -> jax.Array:
  return jnp.where(step < hp.momentum_switch_step, hp.initial_momentum, hp.final_momentum)


def _flat(batch: dict) -> jax.Array:
  x = batch["image"]
  return x.reshape(x.shape[0], -1).astype(jnp.float32)


def train_step(state: RBMState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[RBMState, dict]:
  """One CD-k or PCD-k update on `batch`.

  Args:
    state: the RBM state.
    batch: {"image": binary float (B, H, W, C), ...}; under data parallelism this device's
      slice (the persistent chains are global: each device advances its slice, then gathers).
    key: the run's base training key; the step's key is folded from `state.step`.
    axis_name: the device axis to average gradients and metrics over.
  Returns:
    The new state and {"reconstruction_error" (squared error per image of p(v | h ~ p(h |
    v))), "free_energy" (mean over the batch), "learning_rate"}.
  """
  hp, params = state.hparams, state.params
  k_recon, k_chain = jax.random.split(rng.step_key(key, state.step))
  v0 = _flat(batch)
  local = v0.shape[0]
  if hp.method == "pcd":
    start = jax.lax.dynamic_slice_in_dim(state.chains, device_index(axis_name) * local, local)
  else:
    start = v0
  vk, _ = gibbs_chain(params, start, k_chain, hp.cd_k, axis_name)
  grad = pmean_if(cd_gradient(params, v0, vk), axis_name)

  step = state.step
  lr, mom = learning_rate(hp, step), momentum(hp, step)
  grad = grad.replace(w=grad.w - hp.weight_decay * params.w)
  velocity = jax.tree.map(lambda u, g: mom * u + lr * g, state.velocity, grad)
  new_params = jax.tree.map(jnp.add, params, velocity)

  chains = state.chains
  if hp.method == "pcd":
    chains = vk if axis_name is None else jax.lax.all_gather(vk, axis_name, tiled=True)
  _, pv1, _ = gibbs_step(params, v0, k_recon, axis_name)
  metrics = {"reconstruction_error": jnp.mean(jnp.sum((v0 - pv1) ** 2, -1)),
             "free_energy": jnp.mean(free_energy(params, v0)),
             "learning_rate": lr}
  new_state = state.replace(step=step + 1, params=new_params, velocity=velocity, chains=chains)
  return new_state, pmean_if(metrics, axis_name)


def eval_step(state: RBMState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """Reconstruction error, mean free energy and stochastic pseudo-log-likelihood per image.

  (The test log-likelihood needs log Z: genjax.structured.ais and experiments/rbm_ais.py.)
  """
  params = state.params
  v = _flat(batch)
  k_recon, k_pl = jax.random.split(key)
  _, pv1, _ = gibbs_step(params, v, k_recon, axis_name)
  metrics = {"reconstruction_error": jnp.mean(jnp.sum((v - pv1) ** 2, -1)),
             "free_energy": jnp.mean(free_energy(params, v)),
             "pseudo_log_likelihood": jnp.mean(pseudo_log_likelihood(params, v, k_pl))}
  return pmean_if(metrics, axis_name)


def sample(state: RBMState, key: jax.Array, num: int, num_steps: int | None = None) -> jax.Array:
  """`num` images: p(v | h) after block Gibbs sweeps (`hparams.sample_gibbs_steps` unless
  `num_steps` is given) from random binary images; shape (num, *image_shape) in [0, 1]."""
  hp, params = state.hparams, state.params
  k0, k_chain = jax.random.split(key)
  v0 = jax.random.bernoulli(k0, 0.5, (num, params.w.shape[0])).astype(jnp.float32)
  _, pv = gibbs_chain(params, v0, k_chain, hp.sample_gibbs_steps if num_steps is None
                      else num_steps)
  return pv.reshape(num, *hp.image_shape)


# genjax.evals: eval_step means and the final grid at train end; experiments/evaluate.py adds
# the AIS test log-likelihood (options from the config's `ais` section; minutes to hours).
DEFAULT_EVALS = {"metrics": {}, "grids": {}, "ais": {"on_train_end": False}}
