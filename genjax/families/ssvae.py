"""Semi-supervised VAEs (Kingma, Rezende, Mohamed & Welling 2014): M2 and M1+M2, one step family.

M2 is the generative model p(y) p(z) p(x | y, z), p(y) uniform over K classes, p(z) = N(0, I),
with recognition networks q(y | x) (a classifier) and q(z | x, y) (genjax.nn.ssvae.SSVAENet).
Per example,
  labelled:    L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) - KL(q(z | x, y) || p(z)),
  unlabelled:  U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)),
L from one reparameterised sample of z and the analytic Gaussian KL; U evaluates L(x, y) for
all K classes in one pass over x repeated K times, the K classes of an example sharing its
noise (which lowers the variance of the differences between classes that q(y | x) learns
from). Each step draws an unlabelled batch and a labelled batch (genjax.data.labelled) and
minimises
  loss = -mean_labelled L(x, y) - mean_unlabelled U(x) + alpha * mean_labelled [-log q(y | x)].
Scaling: the paper minimises the sum of -L over the N_l labelled and of -U over the N_u
unlabelled examples plus alpha' E_labelled[-log q(y | x)], alpha' = 0.1 N (N = N_l + N_u).
Averaging each batch instead weighs the labelled set as if it held N examples, N / N_l times
the paper's weight; scaling the classification term by the same factor keeps the paper's ratio
of a labelled example's ELBO to its classification loss: alpha = 0.1 N / N_l (`paper_alpha`:
60 for 100 of MNIST's 60,000 labels), the config's `model.alpha`.

M1+M2 (`model.kind = "m1m2"`) first trains M1, a plain VAE q(z1 | x), p(x | z1) (Bernoulli),
on the training images without labels (`init_from_data`: `model.m1_steps` Adam steps), then
freezes it: M2 runs on M1's codes with a Gaussian p(z1 | y, z2). Training codes are samples
z1 ~ q(z1 | x), drawn afresh each step (as Kingma et al. did); classification uses the
posterior mean. The frozen M1 parameters are part of the state, so checkpoints carry them and
a resumed run never trains M1 again.

Inputs are dynamically binarised images (data.preprocess "binarize_dynamic"); test images are
binarised once, from the evaluation key. Noise is drawn per example (genjax.rng), so a run on N
devices draws what a one-device run with the same global batches draws.
"""

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from genjax import latent, optimizers, rng
from genjax.data import images as image_data
from genjax.data import splits
from genjax.families import vae
from genjax.families.neural_classifier import accuracy, cross_entropy
from genjax.nn.ssvae import SSVAENet
from genjax.parallel import pmean_if
from genjax.state import ModelState, init_variables

KINDS = ("m2", "m1m2")
DATASETS = splits.IMAGES  # the prepared image sets
NUM_TRAIN = 60_000  # training images of MNIST and Fashion-MNIST
PAPER_CLASSIFICATION_WEIGHT = 0.1  # alpha' = 0.1 N in the paper's summed objective

# Noise streams folded into a step's (or an evaluation batch's) key.
_Z_UNLABELLED, _Z_LABELLED, _M1_UNLABELLED, _M1_LABELLED, _M1_EVAL, _M1_ELBO = range(6)
# Streams of init_from_data's key that train M1: epoch orders, binarisation, z noise.
_M1_ORDER, _M1_DATA, _M1_NOISE = 10, 11, 12

# eval_step's means, q(y | x)'s accuracy, log-loss and calibration, the final sample grid (one
# class per row); experiments/evaluate.py adds the evaluation grids (one row per class).
DEFAULT_EVALS = {
    "metrics": {},
    "classification": {},
    "grids": {},
    "sample_grids": {"on_train_end": False},
}


def paper_alpha(num_labels: int, num_train: int = NUM_TRAIN) -> float:
  """The classification weight of a loss averaged per batch: 0.1 N / N_l (module docstring)."""
  return PAPER_CLASSIFICATION_WEIGHT * num_train / num_labels


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section, every switch present (so each can be overridden); the defaults are
  Kingma et al.'s MNIST networks with 100 labels."""
  c = ml_collections.ConfigDict({
      "kind": "m2",  # m2 | m1m2
      "num_classes": 10,
      "z_dim": 50,  # M2's z
      "hidden": (500,),  # hidden widths of q(y | x) and q(z | x, y); p(x | y, z) mirrors them
      "activation": "softplus",  # softplus | tanh | relu | leaky_relu (every network)
      "init_std": 0.001,  # M2's initial weights N(0, init_std^2), as the paper (<= 0: LeCun)
      # Weight of the labelled batch's mean -log q(y | x); None: paper_alpha of data.num_labels
      # (derived, so that --config.data.num_labels=N moves it too).
      "alpha": ml_collections.config_dict.placeholder(float),
      # M1 (kind m1m2 only): a VAE trained by init_from_data, then frozen.
      "m1_z_dim": 50,
      "m1_hidden": (600, 600),
      # M1's initial weights: <= 0 is flax's LeCun normal, as genjax.families.vae's networks.
      # (From N(0, 0.001^2) M1 learnt far slower: a test ELBO of -196 against -125 nats after
      # 1,500 steps, the KL near 2 nats.)
      "m1_init_std": 0.0,
      "m1_steps": 120_000,
      "m1_batch_size": 100,
      "m1_learning_rate": 3e-4,
  })
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no semi-supervised VAE model field {name!r}")
    c[name] = value
  return c


def optim_config(learning_rate: float = 3e-4) -> ml_collections.ConfigDict:
  """The `optim` section: Adam with b1 0.9, b2 0.999 (the paper's first and second moment decay
  rates 0.1 and 0.001, written as 1 - b), constant learning rate 3e-4."""
  return ml_collections.ConfigDict({"learning_rate": learning_rate, "b1": 0.9, "b2": 0.999})


def parse_arg(arg: str | None) -> tuple[str, int, bool]:
  """(dataset, num_labels, smoke) of a config argument: `100`, `mnist,100`, `smoke`,
  `100,smoke`, `fashion_mnist,1000,smoke`, `all` (every label: num_labels -1), ... (defaults:
  mnist, 100 labels)."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  datasets = [p for p in parts if p in DATASETS]
  numbers = [p for p in parts if p.isdigit() or p == "all"]
  unknown = [p for p in parts if p not in DATASETS and p not in numbers and p != "smoke"]
  if unknown or len(datasets) > 1 or len(numbers) > 1 or parts.count("smoke") > 1 or (
      numbers and numbers[0] != "all" and int(numbers[0]) <= 0):
    raise ValueError(f"unknown config argument {arg!r}; expected [DATASET,][NUM_LABELS,][smoke] "
                     f"with DATASET one of {DATASETS} and NUM_LABELS a positive number")
  count = numbers[0] if numbers else "100"
  return (datasets[0] if datasets else "mnist", -1 if count == "all" else int(count),
          "smoke" in parts)


def experiment_config(arg: str | None = None, *, kind: str = "m2", num_epochs: int = 300,
                      batch_size: int = 100,
                      labelled_batch_size: int = 100) -> ml_collections.ConfigDict:
  """The config of `kind` (genjax.config's idiom) for a config argument (parse_arg):
  dynamically binarised images, `num_labels` balanced labels, each step an unlabelled batch of
  `batch_size` and a labelled one of `labelled_batch_size` (at most the labels), Adam,
  `num_epochs` passes over the unlabelled data. `smoke`: 40 steps of batches of 32 and a 20-step
  M1 (under a minute on a CPU)."""
  from genjax import config as gconfig
  if kind not in KINDS:
    raise ValueError(f"unknown model.kind {kind!r}; expected one of {KINDS}")
  dataset, num_labels, smoke = parse_arg(arg)
  if smoke:
    batch_size = labelled_batch_size = 32
  data = gconfig.few_labels(
      gconfig.image_data(dataset, "binarize_dynamic", batch_size), num_labels,
      semi_supervised=True, labelled_batch_size=(min(labelled_batch_size, num_labels)
                                                 if num_labels > 0 else labelled_batch_size))
  steps_per_epoch = NUM_TRAIN // batch_size
  # Recorded without a population field (absent means 1): workdirs of these configs exist.
  c = gconfig.step_config("ssvae", data, model_config(kind=kind), optim_config(),
                          gconfig.train_schedule(num_epochs, log_every=steps_per_epoch,
                                                 checkpoint_every=10 * steps_per_epoch,
                                                 sample_every=10 * steps_per_epoch,
                                                 sample_grid=10),
                          population=False)
  if smoke:
    c.model.m1_steps = 20
    c.model.m1_batch_size = 32
  return gconfig.apply_variant(c, "smoke" if smoke else None)


# ------------------------------------------------------------------------------- state


@dataclasses.dataclass(frozen=True)
class SSVAEHParams:
  """Hyper-parameters the steps close over (static: part of the compiled program)."""

  image_shape: tuple[int, ...]
  num_classes: int
  z_dim: int
  alpha: float
  m1_steps: int = 0
  m1_batch_size: int = 100
  m1_learning_rate: float = 3e-4


@struct.dataclass
class SSVAEState:
  """M2's networks and their optimiser, M1's frozen parameters (M1+M2; else {}), the step."""

  step: jax.Array
  model: ModelState
  m1_params: Any
  m1_net: SSVAENet | None = struct.field(pytree_node=False)
  hparams: SSVAEHParams = struct.field(pytree_node=False)


def alpha(config: ml_collections.ConfigDict) -> float:
  """The classification weight: `model.alpha`, or (None) paper_alpha of the labels kept."""
  if config.model.get("alpha") is not None:
    return float(config.model.alpha)
  n = config.data.get("num_labels", -1)
  return paper_alpha(n if n > 0 else NUM_TRAIN)


def _hparams(config: ml_collections.ConfigDict) -> SSVAEHParams:
  m = config.model
  if m.kind not in KINDS:
    raise ValueError(f"unknown model.kind {m.kind!r}; expected one of {KINDS}")
  if m.num_classes < 2:
    raise ValueError(f"model.num_classes must be at least 2, got {m.num_classes}")
  return SSVAEHParams(image_shape=tuple(config.data.image_shape), num_classes=m.num_classes,
                      z_dim=m.z_dim, alpha=alpha(config), m1_steps=m.m1_steps,
                      m1_batch_size=m.m1_batch_size, m1_learning_rate=m.m1_learning_rate)


def build_models(config: ml_collections.ConfigDict) -> tuple[SSVAENet, SSVAENet | None]:
  """(M2's network, M1's or None) as `config.model` describes them."""
  m = config.model
  image_dim = int(np.prod(config.data.image_shape))
  m1 = None
  if m.kind == "m1m2":
    m1 = SSVAENet(features=image_dim, z_dim=m.m1_z_dim, hidden=tuple(m.m1_hidden),
                  activation=m.activation, likelihood="bernoulli", num_classes=0,
                  init_std=m.m1_init_std)
  m2 = SSVAENet(features=image_dim if m1 is None else m.m1_z_dim, z_dim=m.z_dim,
                hidden=tuple(m.hidden), activation=m.activation,
                likelihood="bernoulli" if m1 is None else "gaussian",
                num_classes=m.num_classes, init_std=m.init_std)
  return m2, m1


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> SSVAEState:
  """Initialise M2 and its optimiser (and, for M1+M2, M1's untrained parameters)."""
  hp = _hparams(config)
  net, m1_net = build_models(config)
  k_m2, k_m1 = jax.random.split(key)
  m1_params = {}
  if m1_net is not None:
    m1_params = init_variables(m1_net, k_m1, jnp.zeros((2, m1_net.features)))["params"]
  variables = init_variables(net, k_m2, jnp.zeros((2, net.features)))
  return SSVAEState(step=jnp.zeros((), jnp.int32),
                    model=ModelState.create(net, variables, optimizers.adam(config.optim)),
                    m1_params=m1_params, m1_net=m1_net, hparams=hp)


# ------------------------------------------------------------------------------ bounds


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1)


def elbo_terms(net: SSVAENet, params, x_BxD: jax.Array, y_B: jax.Array | None,
               eps_BxZ: jax.Array) -> dict:
  """The one-sample ELBO of flat inputs x with classes y (None: M1's VAE), each term (B,).

  Returns {"log_px": log p(x | y, z) at z = mean + std * eps, "kl": KL(q(z | x, y) || N(0, I))
  (analytic), "elbo": log_px + log p(y) - kl} (log p(y) = -log K; 0 without classes).
  """
  v = {"params": params}
  y = None if y_B is None else jax.nn.one_hot(y_B, net.num_classes)
  mean, log_std = net.apply(v, x_BxD, y, method=SSVAENet.encode)
  out = net.apply(v, mean + jnp.exp(log_std) * eps_BxZ, y, method=SSVAENet.decode)
  one_sample = jax.tree.map(lambda a: a[:, None], out)  # the (B, 1, D) vae.log_weights gives
  log_px = vae.observation_log_prob(x_BxD, one_sample, net.likelihood)[:, 0]
  kl = vae.gaussian_kl(mean, log_std)
  log_py = -math.log(net.num_classes) if y is not None else 0.0
  return {"log_px": log_px, "kl": kl, "elbo": log_px + log_py - kl}


def class_elbos(net: SSVAENet, params, x_BxD: jax.Array, eps_BxZ: jax.Array) -> jax.Array:
  """L(x, y) for every class y: (B, K), from one pass over x repeated K times (example-major),
  the K classes of an example with its noise eps."""
  b, k = x_BxD.shape[0], net.num_classes
  terms = elbo_terms(net, params, jnp.repeat(x_BxD, k, 0), jnp.tile(jnp.arange(k), b),
                     jnp.repeat(eps_BxZ, k, 0))
  return terms["elbo"].reshape(b, k)


def unlabelled_elbo(log_q_BxK: jax.Array, elbo_BxK: jax.Array) -> jax.Array:
  """U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)) = sum_y q(y | x) (L(x, y) - log q(y | x)): (B,)."""
  return jnp.sum(jnp.exp(log_q_BxK) * (elbo_BxK - log_q_BxK), -1)


def entropy(log_q_BxK: jax.Array) -> jax.Array:
  """H(q(y | x)) of each row: (B,)."""
  return -jnp.sum(jnp.exp(log_q_BxK) * log_q_BxK, -1)


def objective(net: SSVAENet, params, x_u_BxD: jax.Array, x_l_LxD: jax.Array, y_l_L: jax.Array,
              eps_u_BxZ: jax.Array, eps_l_LxZ: jax.Array, alpha: float) -> tuple[jax.Array, dict]:
  """M2's loss (module docstring) of an unlabelled and a labelled batch, and its parts.

  Returns the loss and {"loss", "elbo_labelled" (mean L), "elbo_unlabelled" (mean U),
  "classification_loss" (mean -log q(y | x) of the labelled batch), "accuracy" (of q(y | x) on
  the labelled batch), "entropy" (mean H(q(y | x)) of the unlabelled batch)}.
  """
  logits_u = net.apply({"params": params}, x_u_BxD, method=SSVAENet.classify)
  logits_l = net.apply({"params": params}, x_l_LxD, method=SSVAENet.classify)
  log_q_u = jax.nn.log_softmax(logits_u, -1)
  u = jnp.mean(unlabelled_elbo(log_q_u, class_elbos(net, params, x_u_BxD, eps_u_BxZ)))
  lab = jnp.mean(elbo_terms(net, params, x_l_LxD, y_l_L, eps_l_LxZ)["elbo"])
  xent = cross_entropy(logits_l, y_l_L)
  loss = -lab - u + alpha * xent
  return loss, {"loss": loss, "elbo_labelled": lab, "elbo_unlabelled": u,
                "classification_loss": xent, "accuracy": accuracy(logits_l, y_l_L),
                "entropy": jnp.mean(entropy(log_q_u))}


# ------------------------------------------------------------------------------ steps


def features(state: SSVAEState, x: jax.Array, key: jax.Array | None = None,
             axis_name: str | None = None) -> jax.Array:
  """What M2 observes of images x (B, H, W, C): the flat images (M2), or M1's code of them
  (M1+M2): a sample of q(z1 | x) drawn per example with `key`, its mean when key is None."""
  x = _flat(x)
  if state.m1_net is None:
    return x
  mean, log_std = state.m1_net.apply({"params": state.m1_params}, x, method=SSVAENet.encode)
  if key is None:
    return mean
  return mean + jnp.exp(log_std) * rng.normal(key, x.shape[0], (mean.shape[-1],), axis_name)


def _noise(key: jax.Array, stream: int, batch: int, size: int,
           axis_name: str | None) -> jax.Array:
  return rng.normal(jax.random.fold_in(key, stream), batch, (size,), axis_name)


def train_step(state: SSVAEState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[SSVAEState, dict]:
  """One Adam step on M2's loss (module docstring); M1 (M1+M2) stays frozen.

  Args:
    state: the semi-supervised VAE state.
    batch: {"image": unlabelled images (B, H, W, C), "labelled_image": (L, H, W, C),
      "labelled_label": int32 (L,)}; under data parallelism, this device's slices.
    key: the run's base training key; the step's noise comes from fold_in(key, state.step),
      one key per example of each global batch.
    axis_name: the device axis to average gradients and metrics over.
  Returns:
    The new state and the loss and its parts (see `objective`), averaged over devices.
  """
  hp, m = state.hparams, state.model
  k = rng.step_key(key, state.step)
  x_u = features(state, batch["image"], jax.random.fold_in(k, _M1_UNLABELLED), axis_name)
  x_l = features(state, batch["labelled_image"], jax.random.fold_in(k, _M1_LABELLED), axis_name)
  eps_u = _noise(k, _Z_UNLABELLED, x_u.shape[0], hp.z_dim, axis_name)
  eps_l = _noise(k, _Z_LABELLED, x_l.shape[0], hp.z_dim, axis_name)

  def loss_fn(params):
    return objective(m.module, params, x_u, x_l, batch["labelled_label"], eps_u, eps_l,
                     hp.alpha)

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
  model = m.apply_gradients(pmean_if(grads, axis_name))
  return state.replace(step=state.step + 1, model=model), pmean_if(metrics, axis_name)


def log_proba(state: SSVAEState, batch: dict) -> jax.Array:
  """log q(y | x) [B, K] (M1+M2: of M1's posterior mean): the classification evaluator's hook."""
  m = state.model
  logits = m.module.apply(m.variables, features(state, batch["image"]), method=SSVAENet.classify)
  return jax.nn.log_softmax(logits, -1)


def eval_step(state: SSVAEState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """q(y | x)'s cross-entropy ("loss"), accuracy and error, and the labelled ELBO L(x, y)
  ("elbo": of the image for M2, of M1's sampled code for M1+M2; one sample), with, for M1+M2,
  the frozen M1's ELBO of the image ("m1_elbo"), averaged over devices."""
  hp, m = state.hparams, state.model
  labels = batch["label"]
  log_q = log_proba(state, batch)
  x = features(state, batch["image"], jax.random.fold_in(key, _M1_EVAL), axis_name)
  eps = _noise(key, _Z_LABELLED, x.shape[0], hp.z_dim, axis_name)
  acc = accuracy(log_q, labels)
  metrics = {"loss": cross_entropy(log_q, labels), "accuracy": acc, "error": 1.0 - acc,
             "elbo": jnp.mean(elbo_terms(m.module, m.params, x, labels, eps)["elbo"])}
  if state.m1_net is not None:
    eps1 = _noise(key, _M1_ELBO, x.shape[0], state.m1_net.z_dim, axis_name)
    metrics["m1_elbo"] = jnp.mean(
        elbo_terms(state.m1_net, state.m1_params, _flat(batch["image"]), None, eps1)["elbo"])
  return pmean_if(metrics, axis_name)


# -------------------------------------------------------------------------- M1's training


def init_from_data(state: SSVAEState, train, key: jax.Array) -> SSVAEState:
  """M1+M2: M1 trained on the training images (labels unused), then frozen in the state; M2:
  the state unchanged. `key` is create_state's; M1's batches and noise come from its own
  streams of it, so the same run trains the same M1."""
  if state.m1_net is None:
    return state
  return state.replace(m1_params=train_m1(state.m1_net, state.m1_params, train, key,
                                          state.hparams))


def train_m1(net: SSVAENet, params, train, key: jax.Array, hp: SSVAEHParams):
  """`hp.m1_steps` Adam steps (learning rate hp.m1_learning_rate) on M1's mean negative ELBO
  over shuffled batches of `hp.m1_batch_size` images of the split `train`, preprocessed by
  its `preprocess` (dynamic binarisation); each epoch is one compiled scan. Returns the
  parameters."""
  m1 = ModelState.create(net, {"params": params}, m1_optimizer(hp.m1_learning_rate))
  sampler = image_data.DeviceSampler(len(train), hp.m1_batch_size)
  k_order, k_data, k_noise = (jax.random.fold_in(key, s) for s in (_M1_ORDER, _M1_DATA,
                                                                   _M1_NOISE))
  arrays = jax.device_put(dict(train.arrays))
  per_epoch = sampler.steps_per_epoch
  for start in range(0, hp.m1_steps, per_epoch):
    perm = _permutation(sampler, k_order, start // per_epoch)
    m1, _ = _m1_steps(m1, arrays, perm, start, k_data, k_noise, sampler=sampler,
                      preprocess=train.preprocess, num=min(per_epoch, hp.m1_steps - start))
  return m1.params


@functools.cache
def m1_optimizer(learning_rate: float) -> optax.GradientTransformation:
  """M1's Adam (one object per learning rate, so that M1's compiled steps are reused)."""
  return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnums=0)
def _permutation(sampler: image_data.DeviceSampler, key: jax.Array, epoch: int) -> jax.Array:
  return sampler.permutation(key, epoch)


@functools.partial(jax.jit, static_argnames=("sampler", "preprocess", "num"))
def _m1_steps(m1: ModelState, arrays: dict, perm: jax.Array, start: jax.Array,
              k_data: jax.Array, k_noise: jax.Array, *, sampler: image_data.DeviceSampler,
              preprocess, num: int) -> tuple[ModelState, jax.Array]:
  """M1's steps start .. start + num - 1 of one epoch (order `perm`): the state and losses."""
  net = m1.module

  def one_step(m1, step):
    rows = {name: a[sampler.indices(perm, step)] for name, a in arrays.items()}
    x = _flat(preprocess(rows, image_data.noise_key(k_data, step))["image"])
    eps = rng.normal(rng.step_key(k_noise, step), x.shape[0], (net.z_dim,))

    def loss_fn(p):
      return -jnp.mean(elbo_terms(net, p, x, None, eps)["elbo"])

    loss, grads = jax.value_and_grad(loss_fn)(m1.params)
    return m1.apply_gradients(grads), loss

  return jax.lax.scan(one_step, m1, start + jnp.arange(num))


# ------------------------------------------------------------------------------ sampling


def decode_mean(state: SSVAEState, z_NxZ: jax.Array, labels_N: jax.Array) -> jax.Array:
  """Images (N, H, W, C) in [0, 1]: the mean of p(x | y, z) (M1+M2: M1's decoder's mean at the
  mean of p(z1 | y, z2))."""
  m, hp = state.model, state.hparams
  y = jax.nn.one_hot(labels_N, hp.num_classes)
  out = m.module.apply(m.variables, z_NxZ, y, method=SSVAENet.decode)
  if state.m1_net is not None:
    out = state.m1_net.apply({"params": state.m1_params}, out[0], method=SSVAENet.decode)
  return jax.nn.sigmoid(out).reshape(z_NxZ.shape[0], *hp.image_shape)


def sample(state: SSVAEState, key: jax.Array, num: int) -> jax.Array:
  """`num` images from p(y) p(z) p(x | y, z), a pure function of `key`; the classes are
  `latent.sample_labels` (one grid row per class), z is drawn from N(0, I)."""
  hp = state.hparams
  return decode_mean(state, rng.normal(key, num, (hp.z_dim,)),
                     latent.sample_labels(num, hp.num_classes))


def num_classes(state: SSVAEState) -> int:
  """Evaluation hook: the classes samples are drawn for (one grid row each)."""
  return state.hparams.num_classes
