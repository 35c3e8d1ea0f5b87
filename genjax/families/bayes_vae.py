"""Deep Bayes classifier: a class-conditional VAE that classifies by Bayes' rule.

The generative model is p(y) p(z) p(x | y, z), the conditional VAE of genjax.families.vae
(`model.num_classes` = K > 0); its networks, bounds and samplers are that family's. How the
class enters the networks is `model.conditioning` (genjax.nn.vae.VAENet):
  * `latent` (the default): the decoder reads z' = mu_y + s_y * z (a learned mean and scale
    per class) and the encoder does not see the class: from its m(x), sd(x),
    q(z | x, y) = N((m(x) - mu_y) / s_y, (sd(x) / s_y)^2). The model is a mixture of K
    Gaussians N(mu_y, s_y^2) over the input z' of one decoder p(x | z'). A noise draw decodes
    to the same image under every class, so ELBO(x, y) - ELBO(x, y') is the difference of two
    closed-form KLs from q(z' | x) to the classes' Gaussians: the classes compete for where
    the code of x lies, with no reconstruction noise in the comparison (and the conditional
    term of the dial below trains the encoder and the class parameters, not the decoder,
    whose gradient cancels across the classes).
  * `concat`: the one-hot class appended to the encoder's and the decoder's inputs (runs
    recorded before the field existed).
Why `latent`: under `concat` the class is worth at most log K nats of the bound (2.3 for ten
digits), and the 20-dimensional z, which sees the class through the encoder, carries the digit
for about as much: the decoder learns to use y, but not for the digit. At 100 labels and 1,000
steps the classes' bounds of a test image differ (2.7 nats between the best two, 15 between
the best and the worst), yet 70.6 % of the test images are misclassified and no relabelling of
the predicted classes does better (the best one-to-one relabelling: 70.6 % too). Under
`latent` the classes are places in z' that the unlabelled bound clusters the codes around:
29.3 % at the same 1,000 steps (experiments/configs/bayes_vae_mnist.py has the measurements).

The classifier is

  log p(y | x) = log p(y) + log p(x | y) - logsumexp_y' (log p(y') + log p(x | y')),

with log p(x | y) estimated for every class by the importance-weighted bound with
`model.classify_k` samples (Burda et al., 2016; exact as k grows).

Class prior (`model.class_prior`): `uniform` (log p(y) = -log K), or `empirical`: the
frequencies of the labelled training examples (all of them, or the `data.num_labels` subset
of genjax.data.labelled), add-one smoothed so that no class has probability zero, set once
from the training split by `init_from_data` and kept in the state (and its checkpoints). The
prior is fixed: it adds a constant to the objective and nothing to its gradient.

Training (per-example means; `model.objective` elbo | iwae with `model.k` samples, as the VAE):
  * supervised batches {"image", "label"} (all labels, or `data.semi_supervised = False`): the
    bound on log p(x, y) = log p(y) + log p(x | y) >= log p(y) + ELBO(x, y); the step is
    vae.train_step's (the same noise, the same update);
  * semi-supervised batches {"image", "labelled_image", "labelled_label"}
    (`data.semi_supervised = True`): the labelled batch's bound above, plus
    `model.unlabelled_weight` (default 1) times the unlabelled batch's bound on
    log p(x) = log sum_y p(y) p(x | y) >= logsumexp_y (log p(y) + ELBO(x, y)),
    every class of every unlabelled image in one batched pass of the networks (the K
    classes of an image share its noise). The bound holds for each y because ELBO(x, y) <=
    log p(x | y); it is Kingma et al.'s (2014) M2 bound with its best q(y | x), which is this
    family's own posterior softmax_y(log p(y) + ELBO(x, y)). With k-sample estimates in place
    of the ELBOs, the IWAE objective (and the ELBO's Monte Carlo KL form) keep it a lower bound
    in expectation (Jensen); the analytic-KL ELBO estimate is a consistent estimate of it
    whose Monte Carlo noise, passed through the convex logsumexp, biases it up by O(1/k).

The generative / discriminative dial (`model.joint_weight` = lambda in [0, 1], default 1): on
the labelled examples the objective is
  lambda * (bound on log p(x, y)) + (1 - lambda) * log p(y | x),
log p(y | x) the family's own Bayes-rule posterior log_softmax_y(log p(y) + bound(x, y)) with
the bound of every class from one batched pass (the labelled images join the unlabelled ones
in the pass the semi-supervised term makes; the K classes of an image share its noise). The
unlabelled term is unchanged. lambda = 1 is the generative model above (the same step, bit for
bit); lambda = 0 trains the same networks purely discriminatively through Bayes' rule (the
convex blend of Bouchard & Triggs, 2004, and Bishop & Lasserre, 2007). The conditional term
is a difference of bounds, not a bound: a better bound on the wrong classes lowers it.

Classification (`log_proba`, the classification evaluator's hook) takes no key: row i of a
batch draws its samples from fold_in(jax.random.key(CLASSIFY_KEY_SEED), i), so predictions
are a deterministic function of the state and the batch (an image's estimate depends on its
row, not on the other rows). The K classes of one image use the same standard normal
noise (common random numbers: z = mean_y + std_y * eps), so much of the estimates' noise is
shared by the classes and cancels in their comparison. `model.classify_k` samples are drawn
`model.classify_chunk` at a time (genjax.metrics.likelihood.importance_log_likelihood, the
chunked running log-mean-exp of the k = 5000 test NLL), so k = 5000 fits in memory too.

Inputs. Images are dynamically binarised for training (`data.preprocess = binarize_dynamic`).
`log_proba` scores the images of the batch it is given: the Bernoulli log-likelihood
sum_d x_d log p_d + (1 - x_d) log(1 - p_d) is defined for any x in [0, 1] (for grey levels it
is the negative cross-entropy rather than a normalised density). The classification evaluator
passes test batches through the split's preprocessing, which for `binarize_dynamic` draws one
Bernoulli(intensity) image per test image from the evaluation key: a stochastically binarised
test set, fixed for a run (as genjax.evals.likelihood.binarized fixes the likelihood figures',
there from a NumPy seed).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct

from genjax import rng
from genjax.data import labelled
from genjax.families import vae
from genjax.metrics import likelihood
from genjax.parallel import pmean_if

CLASS_PRIORS = ("uniform", "empirical")
CLASSIFY_KEY_SEED = 0  # log_proba's fixed key: jax.random.key(CLASSIFY_KEY_SEED)
_UNLABELLED_STREAM = 1  # folded into a training step's key for the unlabelled batch's noise
_CLASSIFY_STREAM = 1  # folded into eval_step's key for the classification samples

# The family's own metrics (the bound of (x, y) and a small-k posterior's accuracy), the
# classification scores of the classify_k posterior (batches of 100 images: 100 * K * chunk
# samples at a time), the final sample grid (one row per class), and, on demand
# (experiments/evaluate.py), the k = 5000 importance-sampled test NLL -log p(x | y).
DEFAULT_EVALS = {
    "metrics": {},
    "classification": {"batch_size": 100},
    "grids": {},
    "nll": dict(vae.DEFAULT_EVALS["nll"]),
}


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The `model` section: vae.model_config's fields (a conditional VAE of 10 classes by
  default) and the classifier's.

  Fields beyond the VAE's:
    class_prior: `uniform` or `empirical` (the labelled training frequencies, add-one
      smoothed).
    unlabelled_weight: the weight of the unlabelled bound in semi-supervised training.
    classify_k: importance samples per class of log_proba's estimate of log p(x | y).
    classify_chunk: samples drawn at a time (its gcd with classify_k is used).
    eval_classify_k: samples per class of eval_step's posterior (accuracy, error, log_loss).
    joint_weight: lambda in [0, 1], the labelled examples' weight of the bound on log p(x, y)
      against log p(y | x) (1: generative, 0: discriminative through Bayes' rule).
    conditioning: how the class enters the networks (genjax.nn.vae.VAENet): `latent` (the
      default: a Gaussian mixture over the decoder's input, the encoder blind to the class)
      or `concat` (the one-hot class appended to the encoder's and the decoder's inputs;
      runs recorded before this field existed).
  """
  c = vae.model_config(num_classes=10)
  c.conditioning = "latent"
  c.joint_weight = 1.0
  c.class_prior = "empirical"
  c.unlabelled_weight = 1.0
  c.classify_k = 100
  c.classify_chunk = 100
  c.eval_classify_k = 10
  for name, value in overrides.items():
    if name not in c:
      raise KeyError(f"no bayes_vae model field {name!r}")
    c[name] = value
  return c


@dataclasses.dataclass(frozen=True)
class BayesHParams:
  """The classifier's hyper-parameters (static), beside the VAE's VAEHParams."""

  class_prior: str = "empirical"
  unlabelled_weight: float = 1.0
  classify_k: int = 100
  classify_chunk: int = 100
  eval_classify_k: int = 10
  joint_weight: float = 1.0  # lambda: lambda log p(x, y) + (1 - lambda) log p(y | x)
  num_labels: int = -1  # data.num_labels: the labelled subset the empirical prior counts
  label_seed: int = 0  # the subset's seed (genjax.data.labelled.label_seed)


@struct.dataclass
class BayesVAEState(vae.VAEState):
  """The conditional VAE's state (so every genjax.families.vae function takes it), the log
  class prior (K,), and the classifier's hyper-parameters."""

  log_prior_K: jax.Array
  bayes: BayesHParams = struct.field(pytree_node=False)


def _bayes_hparams(config: ml_collections.ConfigDict) -> BayesHParams:
  m, d = config.model, config.data
  default = BayesHParams()
  bp = BayesHParams(class_prior=m.get("class_prior", default.class_prior),
                    unlabelled_weight=float(m.get("unlabelled_weight", default.unlabelled_weight)),
                    classify_k=m.get("classify_k", default.classify_k),
                    classify_chunk=m.get("classify_chunk", default.classify_chunk),
                    eval_classify_k=m.get("eval_classify_k", default.eval_classify_k),
                    joint_weight=float(m.get("joint_weight", default.joint_weight)),
                    num_labels=labelled.num_labels(d), label_seed=labelled.label_seed(config))
  if bp.class_prior not in CLASS_PRIORS:
    raise ValueError(f"unknown model.class_prior {bp.class_prior!r}; expected one of "
                     f"{CLASS_PRIORS}")
  if not 0.0 <= bp.joint_weight <= 1.0:  # NaN fails too
    raise ValueError(f"model.joint_weight must be in [0, 1] (1: log p(x, y), 0: log p(y | x)), "
                     f"got {bp.joint_weight}")
  if bp.unlabelled_weight < 0:
    raise ValueError(f"model.unlabelled_weight must be >= 0, got {bp.unlabelled_weight}")
  for name in ("classify_k", "classify_chunk", "eval_classify_k"):
    if getattr(bp, name) < 1:
      raise ValueError(f"model.{name} must be >= 1, got {getattr(bp, name)}")
  return bp


def create_state(key: jax.Array, config: ml_collections.ConfigDict) -> BayesVAEState:
  """The conditional VAE of `config.model` (vae.create_state) and a uniform class prior
  (`init_from_data` sets the empirical one)."""
  if config.model.num_classes < 2:
    raise ValueError(f"the Bayes classifier needs model.num_classes >= 2, got "
                     f"{config.model.num_classes}")
  bp = _bayes_hparams(config)
  s = vae.create_state(key, config)
  k = s.hparams.num_classes
  return BayesVAEState(step=s.step, model=s.model, hparams=s.hparams,
                       log_prior_K=jnp.full((k,), -math.log(k), jnp.float32), bayes=bp)


def empirical_log_prior(labels_N: np.ndarray, n_classes: int) -> np.ndarray:
  """log of the add-one smoothed class frequencies (count + 1) / (N + K): (K,) float32."""
  counts = np.bincount(np.asarray(labels_N), minlength=n_classes)[:n_classes]
  return np.log((counts + 1.0) / (counts.sum() + n_classes)).astype(np.float32)


def init_from_data(state: BayesVAEState, train, key: jax.Array) -> BayesVAEState:
  """The empirical class prior from the labelled training examples (`class_prior` =
  empirical): the whole split's labels, or those of the `data.num_labels` subset."""
  del key
  bp = state.bayes
  if bp.class_prior != "empirical":
    return state
  labels = np.asarray(train.arrays["label"])
  if bp.num_labels > 0:
    labels = labels[labelled.balanced_subset(labels, bp.num_labels, bp.label_seed)]
  return state.replace(log_prior_K=jnp.asarray(
      empirical_log_prior(labels, state.hparams.num_classes)))


# ------------------------------------------------------------------------------ bounds


def example_objective(hp: vae.VAEHParams, terms: dict) -> jax.Array:
  """The per-example training bound on log p(x | y) of vae.log_weights' terms: the IWAE bound
  or the (beta-)ELBO, as `model.objective` says: (B,)."""
  if hp.objective == "iwae":
    return vae.iwae(terms)
  return vae.elbo(terms, hp.beta, hp.analytic_kl)


def all_classes(x: jax.Array, n_classes: int) -> tuple[jax.Array, jax.Array]:
  """Every (image, class) pair, example-major: images (B*K, ...) and classes (B*K,)."""
  return (jnp.repeat(x, n_classes, axis=0),
          jnp.tile(jnp.arange(n_classes, dtype=jnp.int32), x.shape[0]))


def with_class_column(x_BxD: jax.Array, n_classes: int) -> jax.Array:
  """Every (flat image, class) pair as vae.log_weight_fn(labels_known=True) reads them: the
  class as a last column, example-major, (B*K, D+1)."""
  flat, y_N = all_classes(x_BxD, n_classes)
  return jnp.concatenate([flat, y_N[:, None].astype(flat.dtype)], axis=1)


def class_terms(net, params, x: jax.Array, eps: list[jax.Array], n_classes: int) -> dict:
  """vae.log_weights' terms of every (image, class) pair in one pass of the networks: each
  (B*K, k), example-major (row i*K + y is image i under class y).

  Args:
    net, params: the conditional VAE's network and parameters.
    x: images (B, H, W, C).
    eps: per stochastic layer, standard normal noise (B, k, z_l), shared by the K classes of
      an image.
    n_classes: K.
  """
  x_N, y_N = all_classes(x, n_classes)
  eps_N = [jnp.repeat(e, n_classes, axis=0) for e in eps]
  return vae.log_weights(net, params, x_N, y_N, eps_N)


def class_objectives(net, params, hp: vae.VAEHParams, x: jax.Array,
                     eps: list[jax.Array]) -> jax.Array:
  """The training bound of (x, y) for every class y, in one pass of the networks: (B, K).

  Args:
    net, params: the conditional VAE's network and parameters.
    hp: its hyper-parameters (objective, beta, analytic_kl, num_classes).
    x: images (B, H, W, C).
    eps: per stochastic layer, standard normal noise (B, k, z_l), shared by the K classes of
      an image.
  """
  terms = class_terms(net, params, x, eps, hp.num_classes)
  return example_objective(hp, terms).reshape(x.shape[0], hp.num_classes)


def unlabelled_bound(log_prior_K: jax.Array, objectives_BxK: jax.Array) -> jax.Array:
  """The lower bound on log p(x) = log sum_y p(y) p(x | y) of per-class bounds on
  log p(x | y): logsumexp_y (log p(y) + bound(x, y)), (B,)."""
  return jax.nn.logsumexp(log_prior_K + objectives_BxK, axis=-1)


def posterior(log_prior_K: jax.Array, log_lik_BxK: jax.Array) -> jax.Array:
  """Bayes' rule: log p(y | x) = log p(y) + log p(x | y) - log p(x), (B, K)."""
  return jax.nn.log_softmax(log_prior_K + log_lik_BxK, axis=-1)


def class_log_likelihoods(state: BayesVAEState, x: jax.Array, keys_B: jax.Array, k: int,
                          chunk: int) -> jax.Array:
  """Importance-sampled log p(x | y) of every image and class, k samples each: (B, K).

  The B * K (image, class) pairs are the examples of
  genjax.metrics.likelihood.importance_log_likelihood, with the VAE's log_weight_fn
  (labels known); the classes of image i all draw from keys_B[i] (common random numbers).
  Samples are drawn gcd(k, chunk) at a time.
  """
  b = x.shape[0]
  n_classes = state.hparams.num_classes
  x_N = with_class_column(x.reshape(b, -1), n_classes)
  keys_N = jnp.repeat(keys_B, n_classes, axis=0)
  fn = vae.log_weight_fn(state, labels_known=True)
  log_px = likelihood.importance_log_likelihood(fn, x_N, keys_N, k, math.gcd(k, chunk))
  return log_px.reshape(b, n_classes)


def classify_keys(batch_size: int) -> jax.Array:
  """log_proba's keys: fold_in(jax.random.key(CLASSIFY_KEY_SEED), i) for row i."""
  return rng.example_keys(jax.random.key(CLASSIFY_KEY_SEED), batch_size)


def blended_loss(state: BayesVAEState, params, x_L: jax.Array, y_L: jax.Array,
                 eps_L: list[jax.Array], x_U: jax.Array | None = None,
                 eps_U: list[jax.Array] | None = None) -> tuple[jax.Array, dict]:
  """The negative training objective at `joint_weight` = lambda: the labelled examples'
  lambda * (log p(y) + bound(x, y)) + (1 - lambda) * log p(y | x), plus unlabelled_weight times
  the unlabelled bound when x_U is given (per-example means).

  Args:
    state: the family's state (its network, prior and hyper-parameters; params replace the
      state's).
    params: the conditional VAE's parameters.
    x_L, y_L: labelled images (B, H, W, C) and their classes (B,).
    eps_L: their noise, per stochastic layer (B, k, z_l).
    x_U, eps_U: unlabelled images (U, H, W, C) and their noise, or None.
  Returns:
    The loss and {"terms" (vae.log_weights' terms of the labelled (x, y), each (B, k)),
    "log_posterior" (mean log p(y | x) of the labels), "unlabelled_bound" (with x_U)}.
  """
  hp, bp = state.hparams, state.bayes
  n_classes, b = hp.num_classes, x_L.shape[0]
  x, eps = x_L, eps_L
  if x_U is not None:  # every class of both batches in one pass of the networks
    x = jnp.concatenate([x_L, x_U])
    eps = [jnp.concatenate(pair) for pair in zip(eps_L, eps_U, strict=True)]
  terms_N = class_terms(state.model.module, params, x, eps, n_classes)
  objectives_BxK = example_objective(hp, terms_N).reshape(x.shape[0], n_classes)
  labelled_rows = jnp.arange(b) * n_classes + y_L
  log_joint_L = state.log_prior_K[y_L] + objectives_BxK[jnp.arange(b), y_L]
  log_post_LxK = posterior(state.log_prior_K, objectives_BxK[:b])
  log_cond_L = jnp.take_along_axis(log_post_LxK, y_L[:, None], -1)[:, 0]
  lam = bp.joint_weight
  objective = lam * jnp.mean(log_joint_L) + (1.0 - lam) * jnp.mean(log_cond_L)
  aux = {"terms": {name: t[labelled_rows] for name, t in terms_N.items()},
         "log_posterior": jnp.mean(log_cond_L)}
  if x_U is not None:
    aux["unlabelled_bound"] = jnp.mean(unlabelled_bound(state.log_prior_K, objectives_BxK[b:]))
    objective = objective + bp.unlabelled_weight * aux["unlabelled_bound"]
  return -objective, aux


# ------------------------------------------------------------------------------ steps


def train_step(state: BayesVAEState, batch: dict, key: jax.Array,
               axis_name: str | None = None) -> tuple[BayesVAEState, dict]:
  """One Adam step on the negative objective of a supervised or semi-supervised batch: the
  bound (joint_weight 1) or the blend of blended_loss (joint_weight < 1).

  Args:
    state: the family's state.
    batch: {"image", "label"} (supervised), or {"image" (unlabelled), "labelled_image",
      "labelled_label"} (semi-supervised, genjax.data.labelled); this device's slices.
    key: the run's training key. The labelled images' noise is vae.train_step's,
      from step_key = fold_in(key, state.step); the unlabelled images' from
      fold_in(step_key, 1); one key per example of the global batch.
    axis_name: the device axis to average gradients and metrics over.
  Returns:
    The new state and {"loss" (the negative objective), "elbo", "recon", "kl" (of the
    labelled (x, y)), "log_prior" (mean log p(y) of the labels)} (and "iwae" for the IWAE
    objective, "unlabelled_bound" for semi-supervised batches, "log_posterior" (the labels'
    mean log p(y | x) from the training bounds) for joint_weight < 1), averaged over devices.
  """
  hp, bp, m = state.hparams, state.bayes, state.model
  semi = "labelled_image" in batch
  x_L = batch["labelled_image"] if semi else batch["image"]
  y_L = batch["labelled_label"] if semi else batch["label"]
  step_key = rng.step_key(key, state.step)
  eps_L = vae.draw_noise(step_key, x_L.shape[0], hp.k, hp.z_dims, axis_name)
  log_py_L = state.log_prior_K[y_L]
  x_U = eps_U = None
  if semi:
    x_U = batch["image"]
    eps_U = vae.draw_noise(jax.random.fold_in(step_key, _UNLABELLED_STREAM), x_U.shape[0],
                           hp.k, hp.z_dims, axis_name)

  def loss_fn(params):
    if bp.joint_weight < 1.0:
      return blended_loss(state, params, x_L, y_L, eps_L, x_U, eps_U)
    terms = vae.log_weights(m.module, params, x_L, y_L, eps_L)
    objective = jnp.mean(log_py_L + example_objective(hp, terms))
    aux = {"terms": terms}
    if semi:
      bound_U = unlabelled_bound(state.log_prior_K,
                                 class_objectives(m.module, params, hp, x_U, eps_U))
      aux["unlabelled_bound"] = jnp.mean(bound_U)
      objective = objective + bp.unlabelled_weight * aux["unlabelled_bound"]
    return -objective, aux

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(m.params)
  model = m.apply_gradients(pmean_if(grads, axis_name))
  terms = aux["terms"]
  kl = terms["kl"] if hp.analytic_kl else terms["kl_mc"]
  metrics = {"loss": loss, "elbo": jnp.mean(vae.elbo(terms, 1.0, hp.analytic_kl)),
             "recon": -jnp.mean(terms["log_px"]), "kl": jnp.mean(kl),
             "log_prior": jnp.mean(log_py_L)}
  if hp.objective == "iwae":
    metrics["iwae"] = jnp.mean(vae.iwae(terms))
  for name in ("unlabelled_bound", "log_posterior"):
    if name in aux:
      metrics[name] = aux[name]
  return state.replace(step=state.step + 1, model=model), pmean_if(metrics, axis_name)


def eval_step(state: BayesVAEState, batch: dict, key: jax.Array,
              axis_name: str | None = None) -> dict:
  """vae.eval_step's bounds of (x, y) and a small-k posterior's classification scores.

  Returns {"loss" (the negative training bound on log p(x, y): -log p(y) - objective at k),
  "elbo", "recon", "kl", "iwae", "nll_iwae" (vae.eval_step's, of log p(x | y), eval_k
  samples), "log_prior", and "accuracy", "error", "log_loss" of the posterior with
  `eval_classify_k` samples per class (the classification evaluator's whole-split scores,
  with classify_k, replace them in results.json)}, averaged over devices.
  """
  x, y = batch["image"], batch["label"]
  metrics = vae.eval_step(state, batch, key, axis_name)
  keys = rng.example_keys(jax.random.fold_in(key, _CLASSIFY_STREAM), x.shape[0], axis_name)
  k = state.bayes.eval_classify_k
  log_post = posterior(state.log_prior_K, class_log_likelihoods(state, x, keys, k, k))
  accuracy = jnp.mean((jnp.argmax(log_post, -1) == y).astype(jnp.float32))
  extra = pmean_if({
      "log_prior": jnp.mean(state.log_prior_K[y]), "accuracy": accuracy,
      "error": 1.0 - accuracy,
      "log_loss": -jnp.mean(jnp.take_along_axis(log_post, y[:, None], -1))}, axis_name)
  return {**metrics, **extra, "loss": metrics["loss"] - extra["log_prior"]}


# ------------------------------------------------------------------------------ hooks


def log_proba(state: BayesVAEState, batch: dict) -> jax.Array:
  """log p(y | x) (B, K) by Bayes' rule, log p(x | y) from `classify_k` importance samples per
  class (the classification evaluator's hook; deterministic: see the module docstring)."""
  x = batch["image"]
  bp = state.bayes
  log_lik = class_log_likelihoods(state, x, classify_keys(x.shape[0]), bp.classify_k,
                                  bp.classify_chunk)
  return posterior(state.log_prior_K, log_lik)


def log_weight_fn(state: BayesVAEState, labels_known: bool = False):
  """log_weight_fn(x_bxD, keys_b, n) of genjax.metrics.likelihood.

  With `labels_known` (x carries the class as its last column): the conditional VAE's
  (b, n) log weights of p(x | y) (vae.log_weight_fn). Without: (b, K * n) weights
  log p(y) + log w_y,j of the n samples of every class (shared noise), whose log-sum-exp
  minus log n is log sum_y p(y) (1/n) sum_j w_y,j, an unbiased estimate (inside the log) of
  p(x): the Bayes classifier's marginal likelihood.
  """
  if labels_known:
    return vae.log_weight_fn(state, labels_known=True)
  conditional = vae.log_weight_fn(state, labels_known=True)
  n_classes = state.hparams.num_classes

  def fn(x_bxD, keys_b, n):
    b = x_bxD.shape[0]
    log_w = conditional(with_class_column(x_bxD, n_classes),
                        jnp.repeat(keys_b, n_classes, axis=0), n)
    return (state.log_prior_K[:, None] + log_w.reshape(b, n_classes, n)).reshape(b, -1)

  return fn


sample = vae.sample  # one grid row per class (vae.sample of a conditional VAE)
interpolate = vae.interpolate
num_classes = vae.num_classes


# ---------------------------------------------------------------------------------- config

DATASETS = ("mnist", "fashion_mnist")


def parse_arg(arg: str | None) -> tuple[str, int, bool, bool]:
  """(dataset, num_labels (-1: all), semi_supervised, smoke) of a config argument."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  datasets = [p for p in parts if p in DATASETS]
  if len(datasets) > 1:
    raise ValueError(f"unknown config argument {arg!r}: more than one dataset")
  dataset = datasets[0] if datasets else "mnist"
  parts = [p for p in parts if p not in DATASETS]
  flags = {"smoke", "supervised"}
  counts = [p for p in parts if p not in flags]
  if len(counts) > 1 or any(parts.count(f) > 1 for f in flags):
    raise ValueError(f"unknown config argument {arg!r}; expected 'all' or a number of labels, "
                     "optionally followed by ',supervised' and/or ',smoke'")
  count = counts[0] if counts else "all"
  if count == "all":
    return dataset, -1, False, "smoke" in parts
  if not count.isdigit() or int(count) <= 0:
    raise ValueError(f"unknown config argument {arg!r}: {count!r} is neither 'all' nor a "
                     "positive number of labels")
  return dataset, int(count), "supervised" not in parts, "smoke" in parts


def experiment_config(arg: str | None = None, *, model: ml_collections.ConfigDict,
                      optim: ml_collections.ConfigDict, batch_size: int = 128,
                      num_epochs: int = 20) -> ml_collections.ConfigDict:
  """The config of a deep Bayes classifier (genjax.config's idiom): `model` (model_config) and
  `optim` (vae.optim_config) on dynamically binarised images in batches of `batch_size` for
  `num_epochs` of the whole training split, as vae.experiment_config, sample grids of one row
  per class. `arg` (parse_arg): `[DATASET,][all | N[,supervised]][,smoke]`: all labels (the
  default); N balanced labels, semi-supervised (each step adds an unlabelled batch of
  `batch_size` to a labelled one of min(batch_size, N)); N,supervised: the N labelled examples
  alone, in batches of min(batch_size, N), for the all-labels run's number of updates; smoke:
  40 steps, classified with one sample per class."""
  from genjax import config as gconfig
  dataset, num_labels, semi_supervised, smoke = parse_arg(arg)
  c = vae.experiment_config(None, model=model, optim=optim, dataset=dataset,
                            preprocess="binarize_dynamic", batch_size=batch_size,
                            num_epochs=num_epochs, sample_grid=10)
  c.family = "bayes_vae"
  if num_labels > 0:
    labelled_batch = min(batch_size, num_labels)
    if not semi_supervised:
      c.data.batch_size = labelled_batch
      c.train.num_steps = num_epochs * (vae.NUM_TRAIN // batch_size)  # the all-labels updates
    gconfig.few_labels(c.data, num_labels, semi_supervised=semi_supervised,
                       labelled_batch_size=labelled_batch)
  if smoke:
    c = gconfig.apply_variant(c, "smoke")
    c.model.eval_k = c.model.k
    c.model.eval_classify_k = 1
    c.model.classify_k = c.model.classify_chunk = 1
  return c
