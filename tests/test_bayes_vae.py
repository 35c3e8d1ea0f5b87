"""Tests of the deep Bayes classifier (genjax.families.bayes_vae): a normalised posterior, the
posterior of a tiny model against dense quadrature (both conditionings), the unlabelled bound
against per-class ELBOs, the training steps, the latent conditioning's closed-form class
comparison, the class prior, the config's arguments and the smoke runs."""

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data.splits import ArraySplit
from genjax.families import bayes_vae, vae
from genjax.metrics import likelihood
from genjax.nn.vae import VAENet

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "experiments" / "configs" / "bayes_vae_mnist.py"
NUM_CLASSES = 3


def logsumexp(a: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
  """log sum exp along `axis`, float64-stable (NumPy's pairwise logaddexp)."""
  return np.logaddexp.reduce(a, axis=axis, keepdims=keepdims)


def tiny_config(**model):
  """A conditional VAE of 3 classes on 2x2 images: z (1,), one tanh hidden layer of 8."""
  m = bayes_vae.model_config(z_dims=(1,), hidden=((8,),), num_classes=NUM_CLASSES,
                             classify_k=16, classify_chunk=8, eval_classify_k=4, eval_k=4)
  for name, value in model.items():
    m[name] = value
  c = vae.experiment_config(model=m, optim=vae.optim_config(1e-2), preprocess="binarize_fixed",
                            batch_size=4, num_epochs=1)
  c.family = "bayes_vae"
  c.data.image_shape = (2, 2, 1)
  return c


def tiny_state(seed: int = 0, **model) -> bayes_vae.BayesVAEState:
  return bayes_vae.create_state(jax.random.key(seed), tiny_config(**model))


@pytest.fixture(scope="module")
def state() -> bayes_vae.BayesVAEState:
  """The tiny model: the ELBO with one sample, a uniform prior until init_from_data."""
  return tiny_state()


def binary_images(b: int, seed: int = 0) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).integers(0, 2, (b, 2, 2, 1)), jnp.float32)


def with_params(state, fn):
  """`state` with its parameters replaced by fn(params)."""
  return state.replace(model=state.model.replace(params=fn(state.model.params)))


# ------------------------------------------------------------------------ posterior


def test_posterior_is_normalised_and_deterministic(state):
  log_proba = jax.jit(bayes_vae.log_proba)
  log_p = log_proba(state, {"image": binary_images(5)})
  assert log_p.shape == (5, NUM_CLASSES)
  np.testing.assert_allclose(np.exp(np.asarray(log_p, np.float64)).sum(-1), 1.0, atol=1e-5)
  # No key: the same batch gives the same rows.
  np.testing.assert_array_equal(log_p, log_proba(state, {"image": binary_images(5)}))


def _quadrature_log_likelihood(params: dict, x_BxD: np.ndarray,
                                conditioning: str) -> np.ndarray:
  """log p(x | y) = log integral N(z; 0, 1) p(x | y, z) dz of a 1-d latent, float64, by the
  rectangle rule on 24,001 points of [-12, 12] (the integrand is smooth and below 1e-30 at
  the ends): (B, K). The decoder reads [z, one-hot y] (`concat`) or mu_y + s_y z (`latent`)."""
  d = {name: {p: np.asarray(v, np.float64) for p, v in layer.items()}
       for name, layer in params["decoders_0"].items()}
  z = np.linspace(-12.0, 12.0, 24_001)
  log_prior_z = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) + math.log(z[1] - z[0])
  out = np.empty((len(x_BxD), NUM_CLASSES))
  for y in range(NUM_CLASSES):
    if conditioning == "concat":
      h = np.concatenate([z[:, None], np.broadcast_to(np.eye(NUM_CLASSES)[y],
                                                      (len(z), NUM_CLASSES))], 1)
    else:
      mean = np.asarray(params["class_mean"], np.float64)[y]
      scale = np.exp(np.asarray(params["class_log_scale"], np.float64)[y])
      h = mean + scale * z[:, None]
    h = np.tanh(h @ d["Dense_0"]["kernel"] + d["Dense_0"]["bias"])
    logits = h @ d["Dense_1"]["kernel"] + d["Dense_1"]["bias"]  # (Z, D)
    log_px_z = x_BxD @ logits.T - np.logaddexp(0.0, logits).sum(-1)  # (B, Z)
    out[:, y] = logsumexp(log_px_z + log_prior_z, axis=-1)
  return out


def _standard_errors(state, x_BxD: jax.Array, k: int) -> np.ndarray:
  """The standard error of the k-sample estimate of log p(x | y) (delta method:
  std(w) / (mean(w) sqrt(k))) from an independent draw of k weights: (B, K)."""
  fn = vae.log_weight_fn(state, labels_known=True)
  x_N = bayes_vae.with_class_column(x_BxD, NUM_CLASSES)
  log_w = np.asarray(fn(x_N, jax.random.split(jax.random.key(1), len(x_N)), k), np.float64)
  w = np.exp(log_w - log_w.max(-1, keepdims=True))
  return (w.std(-1) / w.mean(-1) / math.sqrt(k)).reshape(len(x_BxD), NUM_CLASSES)


@pytest.fixture(scope="module", params=["concat", "latent"])
def quadrature_model(request):
  """A tiny model whose classes differ (decoder weights x3; `latent`: class means -1.5, 0, 1.5
  and scales 0.7, 1, 0.8 of the decoder's input) and whose proposal has bounded importance
  weights: the encoder's standard deviation is 1.5, so q(z | x, y) = N(mean(x, y), sd_y^2)
  with sd_y = 1.5 (`concat`) or 1.5 / s_y >= 1.5 (`latent`), wider than the prior; then
  p(z) / q(z) <= sd_y exp(mean^2 / (2 (sd_y^2 - 1))) and p(x | z) <= 1. The weights' variance
  is finite and the estimator's standard error (from the weights) is reliable."""
  k = 20_000
  conditioning = request.param

  def adjust(params):
    params = dict(params)
    params["decoders_0"] = jax.tree.map(lambda a: 3.0 * a, params["decoders_0"])
    enc = dict(params["encoders_0"])
    enc["log_std"] = {"kernel": jnp.zeros_like(enc["log_std"]["kernel"]),
                      "bias": jnp.full_like(enc["log_std"]["bias"], math.log(1.5))}
    params["encoders_0"] = enc
    if conditioning == "latent":
      params["class_mean"] = jnp.asarray([[-1.5], [0.0], [1.5]], jnp.float32)
      params["class_log_scale"] = jnp.log(jnp.asarray([[0.7], [1.0], [0.8]], jnp.float32))
    return params

  state = with_params(tiny_state(classify_k=k, classify_chunk=2000, conditioning=conditioning),
                      adjust)
  x = jnp.asarray([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], jnp.float32)
  exact = _quadrature_log_likelihood(state.model.params, np.asarray(x, np.float64), conditioning)
  return state, x, exact, _standard_errors(state, x, k)


def test_log_proba_matches_the_exact_posterior_by_quadrature(quadrature_model):
  state, x, log_lik, se = quadrature_model
  joint = log_lik + np.asarray(state.log_prior_K, np.float64)
  exact = joint - logsumexp(joint, axis=-1, keepdims=True)
  assert np.exp(exact).max() > 0.5 and np.exp(exact).min() < 0.15  # the classes differ
  log_p = np.asarray(bayes_vae.log_proba(state, {"image": x.reshape(4, 2, 2, 1)}), np.float64)
  # log p(y | x) = delta_y - sum_y' p(y' | x) delta_y' (to first order) for the errors delta of
  # the log-likelihood estimates: |error| <= 4 (se_y + max se) is a 4-sigma bound (the IWAE's
  # bias, about se^2 / 2, is far smaller); 1e-4 covers float32 rounding.
  tol = 4.0 * (se + se.max(-1, keepdims=True)) + 1e-4
  assert tol.max() < 0.2  # against log-probabilities more than 1.2 nats apart
  assert np.all(np.abs(log_p - exact) <= tol), (log_p - exact, tol)


def test_marginal_log_weights_estimate_log_px(quadrature_model):
  state, x, log_lik, se = quadrature_model
  exact = logsumexp(log_lik + np.asarray(state.log_prior_K, np.float64), axis=-1)
  fn = bayes_vae.log_weight_fn(state, labels_known=False)
  keys = jax.random.split(jax.random.key(2), len(x))
  estimate = np.asarray(jax.jit(likelihood.importance_log_likelihood, static_argnums=(0, 3, 4))(
      fn, x, keys, 20_000, 2000))
  # log sum_y p(y) p_hat_y: a p(y | x)-weighted mix of the per-class errors.
  np.testing.assert_array_less(np.abs(estimate - exact), 4.0 * se.max(-1) + 1e-4)


# ------------------------------------------------------------------------ training bounds


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_unlabelled_bound_is_logsumexp_of_per_class_bounds(state, objective):
  hp = dataclasses.replace(state.hparams, objective=objective, k=3)
  m = state.model
  x = binary_images(5, seed=1)
  eps = vae.draw_noise(jax.random.key(3), 5, hp.k, hp.z_dims)
  prior = np.asarray([0.5, 0.3, 0.2])

  @jax.jit
  def batched_and_per_class(params):
    objectives = bayes_vae.class_objectives(m.module, params, hp, x, eps)
    per_class = [vae.log_weights(m.module, params, x, jnp.full((5,), y, jnp.int32), eps)
                 for y in range(NUM_CLASSES)]  # one class at a time
    per_class = [vae.iwae(t) if objective == "iwae" else vae.elbo(t) for t in per_class]
    return (bayes_vae.unlabelled_bound(jnp.log(jnp.asarray(prior, jnp.float32)), objectives),
            jnp.stack(per_class, -1))

  batched, per_class = (np.asarray(a, np.float64) for a in batched_and_per_class(m.params))
  np.testing.assert_allclose(batched, logsumexp(np.log(prior) + per_class, axis=-1), rtol=1e-5)


def test_semi_supervised_step_adds_the_weighted_unlabelled_bound(state):
  state = state.replace(bayes=dataclasses.replace(state.bayes, unlabelled_weight=0.5))
  hp, m = state.hparams, state.model
  x_u, x_l = binary_images(6, seed=2), binary_images(4, seed=3)
  y_l = jnp.asarray([0, 2, 1, 2], jnp.int32)
  batch = {"image": x_u, "labelled_image": x_l, "labelled_label": y_l}
  key = jax.random.key(4)
  new, metrics = jax.jit(bayes_vae.train_step)(state, batch, key)
  # The noise the step documents: the labelled batch's from the step key (as vae.train_step),
  # the unlabelled batch's from fold_in(step key, 1).
  step_key = jax.random.fold_in(key, state.step)

  @jax.jit
  def bounds(params):
    eps_u = vae.draw_noise(jax.random.fold_in(step_key, 1), 6, hp.k, hp.z_dims)
    eps_l = vae.draw_noise(step_key, 4, hp.k, hp.z_dims)
    return (bayes_vae.unlabelled_bound(
        state.log_prior_K, bayes_vae.class_objectives(m.module, params, hp, x_u, eps_u)),
            vae.elbo(vae.log_weights(m.module, params, x_l, y_l, eps_l)))

  bound, labelled = bounds(m.params)
  np.testing.assert_allclose(metrics["unlabelled_bound"], jnp.mean(bound), rtol=1e-5)
  np.testing.assert_allclose(metrics["elbo"], jnp.mean(labelled), rtol=1e-5)
  np.testing.assert_allclose(
      metrics["loss"], -(jnp.mean(labelled) - math.log(3) + 0.5 * jnp.mean(bound)), rtol=1e-5)
  assert int(new.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_supervised_step_is_the_conditional_vae_step(state):
  batch = {"image": binary_images(4, seed=5), "label": jnp.asarray([0, 1, 2, 0], jnp.int32)}
  key = jax.random.key(6)
  ours, metrics = jax.jit(bayes_vae.train_step)(state, batch, key)
  theirs, vae_metrics = jax.jit(vae.train_step)(state, batch, key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               ours.model.params, theirs.model.params)
  # The loss is the joint bound: the conditional one minus log p(y) (uniform: log 3).
  np.testing.assert_allclose(metrics["loss"], vae_metrics["loss"] + math.log(3), rtol=1e-6)


def _reference_loss(state, params, lam: float, x_l, y_l, eps_l, x_u=None, eps_u=None):
  """The blended loss written out class by class: -(lam * A + (1 - lam) * B + w * U), with
  A = mean log p(y) + ELBO(x, y) (the label's own pass), B = mean log p(y | x) = A minus
  logsumexp_y' (log p(y') + ELBO(x, y')), U = the unlabelled bound."""
  m, k = state.model, NUM_CLASSES

  def per_class(x, eps):
    return jnp.stack([vae.elbo(vae.log_weights(m.module, params, x, jnp.full((x.shape[0],), y),
                                               eps)) for y in range(k)], -1)

  log_prior = state.log_prior_K
  joint = log_prior[y_l] + vae.elbo(vae.log_weights(m.module, params, x_l, y_l, eps_l))
  conditional = joint - jax.nn.logsumexp(log_prior + per_class(x_l, eps_l), -1)
  objective = lam * jnp.mean(joint) + (1.0 - lam) * jnp.mean(conditional)
  if x_u is not None:
    objective += state.bayes.unlabelled_weight * jnp.mean(
        jax.nn.logsumexp(log_prior + per_class(x_u, eps_u), -1))
  return -objective


@pytest.mark.parametrize("semi", [False, True])
@pytest.mark.parametrize("lam", [1.0, 0.3, 0.0])
def test_blended_step_is_lambda_joint_plus_one_minus_lambda_conditional(lam, semi):
  # `concat`: under `latent` the conditional term's decoder gradient cancels exactly (a sample
  # decodes to the same image under every class), and its float32 residue has no gradient
  # scale to be compared with (the Adam bound below).
  state = tiny_state(conditioning="concat")
  prior = jnp.log(jnp.asarray([0.5, 0.3, 0.2], jnp.float32))  # not uniform: log p(y) matters
  state = state.replace(log_prior_K=prior, bayes=dataclasses.replace(
      state.bayes, joint_weight=lam, unlabelled_weight=0.7))
  hp, m = state.hparams, state.model
  x_l, y_l = binary_images(4, seed=9), jnp.asarray([2, 0, 1, 2], jnp.int32)
  key = jax.random.key(10)
  step_key = jax.random.fold_in(key, state.step)
  eps_l = vae.draw_noise(step_key, 4, hp.k, hp.z_dims)  # the noise train_step documents
  if semi:
    x_u = binary_images(6, seed=11)
    eps_u = vae.draw_noise(jax.random.fold_in(step_key, 1), 6, hp.k, hp.z_dims)
    batch = {"image": x_u, "labelled_image": x_l, "labelled_label": y_l}
  else:
    x_u = eps_u = None
    batch = {"image": x_l, "label": y_l}
  new, metrics = jax.jit(bayes_vae.train_step)(state, batch, key)
  loss, grads = jax.jit(jax.value_and_grad(
      lambda p: _reference_loss(state, p, lam, x_l, y_l, eps_l, x_u, eps_u)))(m.params)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
  assert ("log_posterior" in metrics) == (lam < 1.0)
  # Adam's first update is -lr g / (|g| + eps): float32 error delta in g moves it by at most
  # lr * delta / eps; delta <= 1e-5 of the leaf's largest |g| (sums of a few hundred terms).
  expected = m.apply_gradients(grads).params
  lr, adam_eps = 1e-2, 1e-4
  for (path, ours), theirs, g in zip(jax.tree_util.tree_leaves_with_path(new.model.params),
                                     jax.tree.leaves(expected), jax.tree.leaves(grads),
                                     strict=True):
    atol = lr * 1e-5 * float(jnp.max(jnp.abs(g))) / adam_eps + 1e-7
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol,
                               err_msg=jax.tree_util.keystr(path))


def test_joint_weight_one_is_the_generative_step_exactly(state):
  batch = {"image": binary_images(4, seed=12), "label": jnp.asarray([1, 1, 0, 2], jnp.int32)}
  explicit = state.replace(bayes=dataclasses.replace(state.bayes, joint_weight=1.0))
  assert tiny_config().model.joint_weight == 1.0  # the default
  key = jax.random.key(13)
  ours, metrics = jax.jit(bayes_vae.train_step)(explicit, batch, key)
  theirs, vae_metrics = jax.jit(vae.train_step)(state, batch, key)
  jax.tree.map(np.testing.assert_array_equal, ours.model.params, theirs.model.params)
  assert "log_posterior" not in metrics


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_joint_weight_outside_the_unit_interval_fails_in_one_line(bad):
  with pytest.raises(ValueError, match=r"model\.joint_weight must be in \[0, 1\]") as e:
    tiny_state(joint_weight=bad)
  assert "\n" not in str(e.value)


def test_eval_step_metrics_are_finite(state):
  batch = {"image": binary_images(8, seed=7), "label": jnp.asarray([0, 1, 2] * 2 + [0, 1])}
  metrics = jax.jit(bayes_vae.eval_step)(state, batch, jax.random.key(8))
  assert {"loss", "elbo", "iwae", "nll_iwae", "log_prior", "accuracy", "error",
          "log_loss"} <= set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert 0.0 <= float(metrics["accuracy"]) <= 1.0
  np.testing.assert_allclose(metrics["accuracy"] + metrics["error"], 1.0, rtol=1e-6)


# ------------------------------------------------------------------------ latent conditioning


def test_latent_conditioning_compares_classes_by_a_closed_form_kl():
  """`latent`: one noise draw decodes to the same image under every class, so the bounds of
  (x, y) differ only by KL(N(m(x), sd(x)^2) || N(mu_y, s_y^2)), here in closed form from the
  encoder's m(x), sd(x) (which do not see y) and the class parameters."""
  scales = jnp.log(jnp.asarray([[0.5], [1.0], [2.0]], jnp.float32))
  state = with_params(tiny_state(conditioning="latent"),
                      lambda p: {**p, "class_log_scale": scales})
  m, b, k = state.model, 5, 3
  x = binary_images(b, seed=20)
  eps = vae.draw_noise(jax.random.key(21), b, k, state.hparams.z_dims)
  terms = jax.jit(lambda p: bayes_vae.class_terms(m.module, p, x, eps, NUM_CLASSES))(m.params)
  log_px = np.asarray(terms["log_px"]).reshape(b, NUM_CLASSES, k)
  np.testing.assert_allclose(log_px, np.broadcast_to(log_px[:, :1], log_px.shape), rtol=1e-5)
  mean, log_std = (np.asarray(a, np.float64)[:, None] for a in
                   m.module.apply(m.variables, x, 0, None, method=VAENet.encode))
  mu = np.asarray(m.params["class_mean"], np.float64)
  log_s = np.asarray(m.params["class_log_scale"], np.float64)
  kl = np.sum(log_s - log_std + (np.exp(2.0 * log_std) + (mean - mu)**2) / (2.0 * np.exp(2.0 * log_s))
              - 0.5, -1)  # (B, K)
  # float32: a few roundings of terms of order one.
  np.testing.assert_allclose(np.asarray(terms["kl"]).reshape(b, NUM_CLASSES, k),
                             np.broadcast_to(kl[..., None], (b, NUM_CLASSES, k)), rtol=1e-5,
                             atol=1e-5)
  assert np.ptp(kl, -1).min() > 0.1  # the classes' bounds differ


def test_latent_conditioning_trains_the_labelled_classes_components_only():
  """The class reaches the networks through its own row of class_mean and class_log_scale:
  a batch of classes 0 and 2 leaves row 1's gradient exactly zero, and moves rows 0 and 2."""
  state = tiny_state(conditioning="latent")
  m = state.model
  x, y = binary_images(4, seed=22), jnp.asarray([0, 2, 0, 2], jnp.int32)
  eps = vae.draw_noise(jax.random.key(23), 4, 1, state.hparams.z_dims)
  grads = jax.jit(jax.grad(
      lambda p: -jnp.mean(vae.elbo(vae.log_weights(m.module, p, x, y, eps)))))(m.params)
  for name in ("class_mean", "class_log_scale"):
    g = np.asarray(grads[name])
    np.testing.assert_array_equal(g[1], 0.0)
    assert np.all(np.abs(g[[0, 2]]) > 0.0), (name, g)


def test_old_workdirs_meant_concat_conditioning():
  """A workdir recorded before model.conditioning existed meant `concat` (the one-hot class
  at every input): continuing it with that value changes nothing; with `latent` it would."""
  from genjax import workdir
  new = tiny_config(conditioning="concat").to_dict()
  old = {**new, "model": {k: v for k, v in new["model"].items() if k != "conditioning"}}
  assert workdir.diff(old, new) == {}
  assert "model.conditioning" in workdir.diff(old, tiny_config().to_dict())
  assert tiny_config().model.conditioning == "latent"  # the default


# ------------------------------------------------------------------------ class prior


def test_empirical_prior_counts_the_labelled_examples(state):
  labels = np.asarray([0] * 6 + [1] * 3 + [2] * 1, np.int32)
  train = ArraySplit("train", {"image": np.zeros((10, 2, 2, 1), np.uint8), "label": labels})
  empirical = bayes_vae.init_from_data(state, train, jax.random.key(0))
  np.testing.assert_allclose(np.exp(empirical.log_prior_K), np.asarray([7, 4, 2]) / 13,
                             rtol=1e-6)  # add-one smoothed counts
  uniform = state.replace(bayes=dataclasses.replace(state.bayes, class_prior="uniform"))
  np.testing.assert_allclose(np.exp(bayes_vae.init_from_data(uniform, train, None).log_prior_K),
                             1 / 3, rtol=1e-6)
  # With data.num_labels, only the balanced subset counts (one of each class here).
  subset = state.replace(bayes=dataclasses.replace(state.bayes, num_labels=3))
  np.testing.assert_allclose(np.exp(bayes_vae.init_from_data(subset, train, None).log_prior_K),
                             1 / 3, rtol=1e-6)


def test_bad_settings_fail_clearly():
  with pytest.raises(ValueError, match="num_classes"):
    tiny_state(num_classes=0)
  with pytest.raises(ValueError, match="class_prior"):
    tiny_state(class_prior="learned")
  with pytest.raises(ValueError, match="classify_k"):
    tiny_state(classify_k=0)
  with pytest.raises(ValueError, match="conditioning"):
    tiny_state(conditioning="film")


# ------------------------------------------------------------------------ config and loop


def _config_module():
  spec = importlib.util.spec_from_file_location("bayes_vae_mnist", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_config_arguments():
  get = _config_module().get_config
  c = get(None)
  assert c.family == "bayes_vae" and c.data.batch_size == 128
  assert c.data.get("num_labels", -1) <= 0 and not c.data.get("semi_supervised", False)
  assert tuple(c.model.z_dims) == (20,) and c.model.num_classes == 10
  semi = get("100")
  assert semi.data.num_labels == 100 and semi.data.semi_supervised
  assert semi.data.labelled_batch_size == 100 and semi.data.batch_size == 128
  sup = get("100,supervised")
  assert not sup.data.semi_supervised and sup.data.batch_size == 100
  assert sup.train.num_steps == c.train.num_epochs * (60_000 // 128)
  smoke = get("100,smoke")
  assert smoke.train.num_steps == 40 and smoke.data.semi_supervised and "evals" in smoke
  assert get("fashion_mnist,100").data.name == "fashion_mnist"
  assert get("mnist,all").data.get("num_labels", -1) <= 0
  for bad in ("foo", "0", "100,200", "smoke,smoke", "mnist,fashion_mnist"):
    with pytest.raises(ValueError, match="config argument"):
      get(bad)


def _train_smoke(arg: str, workdir: Path, monkeypatch) -> dict:
  """results.json of the config's `arg` run through the generic loop, evaluated on the first
  1,000 test images (the evaluators' cost is per image)."""
  from conftest import score_on_first_test_images

  from genjax import config as gconfig
  from genjax import train
  score_on_first_test_images(monkeypatch, 1000)
  config = gconfig.load(f"{CONFIG}:{arg}")
  config.unlock()
  config.train.progress = False
  config.train.tensorboard = False
  train.train_and_evaluate(config, str(workdir))
  return json.loads((workdir / "results.json").read_text())


@pytest.mark.slow  # 20 to 40 s (reading MNIST; compiling the step and the evaluators)
def test_smoke_config_trains_and_evaluates(tmp_path, tfds_data_dir, monkeypatch):
  del tfds_data_dir  # the config reads TFDS_DATA_DIR from the environment
  results = _train_smoke("smoke", tmp_path, monkeypatch)
  test = results["test"]
  assert results["family"] == "bayes_vae" and results["step"] == 40
  assert 0.0 <= test["accuracy"] <= 1.0 and test["num_examples"] == 1000
  assert all(math.isfinite(test[k]) for k in ("log_loss", "ece", "elbo", "loss"))


@pytest.mark.slow  # 30 to 50 s: each step also bounds 128 images under all 10 classes
def test_semi_supervised_smoke_config_trains_and_evaluates(tmp_path, tfds_data_dir, monkeypatch):
  del tfds_data_dir
  results = _train_smoke("100,smoke", tmp_path, monkeypatch)
  assert 0.0 <= results["test"]["accuracy"] <= 1.0
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  logged = [r for r in records if "loss" in r]
  assert logged and all(math.isfinite(r["unlabelled_bound"]) for r in logged)
