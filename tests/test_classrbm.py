"""Classification RBM against brute-force enumeration of (x, y, h) on a model small enough to
enumerate, its train step against the exact SGD update, and every config variant's smoke run."""

import itertools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import evals
from genjax.families import classrbm
from genjax.structured import classrbm as core

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "experiments" / "configs" / "classrbm_mnist.py"
D, H, C = 4, 3, 3


def _params(d: int = D, h: int = H, c: int = C, seed: int = 0,
            scale: float = 1.0) -> core.ClassRBMParams:
  r = np.random.default_rng(seed)

  def normal(*shape):
    return jnp.asarray(scale * r.normal(size=shape), jnp.float32)

  return core.ClassRBMParams(w=normal(d, h), u=normal(c, h), b=normal(d), c=normal(h),
                             d=normal(c))


def _states(n: int, xp=np):
  return xp.asarray(list(itertools.product([0.0, 1.0], repeat=n)))


def _table(params: core.ClassRBMParams, xp=np):
  """-E(x, y, h) of every joint state: an (X, C, K) table over the 2^D visible states, the C
  labels and the 2^H hidden states (float64 NumPy, or float32 jax.numpy for gradients)."""
  dtype = np.float64 if xp is np else jnp.float32
  w, u, b, c, d = (xp.asarray(a, dtype) for a in (params.w, params.u, params.b, params.c,
                                                   params.d))
  xs, hs = _states(w.shape[0], xp).astype(dtype), _states(w.shape[1], xp).astype(dtype)
  return ((xs @ b)[:, None, None] + d[None, :, None] + (hs @ c)[None, None, :]
          + (xs @ w @ hs.T)[:, None, :] + (u @ hs.T)[None, :, :])


def _logsumexp(a, axis=None):
  m = np.max(a, axis=axis, keepdims=True)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _one_hot(labels, num=C):
  return jax.nn.one_hot(jnp.asarray(labels), num, dtype=jnp.float32)


XS = jnp.asarray(_states(D), jnp.float32)  # every visible state, in the tables' order
LABELS = np.arange(len(XS)) % C  # a label for each


# ------------------------------------------------------------------------------ the core


def test_free_energy_and_p_y_given_x_match_enumeration():
  params = _params(seed=1)
  table = _table(params)
  log_px_y = _logsumexp(table, axis=2)  # -F(x, y): (X, C)
  fe = np.stack([np.asarray(core.free_energy(params, XS, _one_hot(np.full(len(XS), y))))
                 for y in range(C)], axis=1)
  # float32 sums of a few terms of size <= 10: relative error ~ 1e-6
  np.testing.assert_allclose(fe, -log_px_y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(core.class_scores(params, XS)), log_px_y, rtol=1e-5,
                             atol=1e-5)
  exact = log_px_y - _logsumexp(log_px_y, axis=1)[:, None]
  np.testing.assert_allclose(np.asarray(core.log_p_y_given_x(params, XS)), exact, atol=1e-5)
  # ... and the joint: log p(x, y) = -F(x, y) - log Z sums to 1 over all (x, y)
  log_z = float(core.exact_log_partition(params))
  np.testing.assert_allclose(log_z, _logsumexp(table), rtol=1e-6)
  np.testing.assert_allclose(np.sum(np.exp(-fe - log_z)), 1.0, rtol=1e-5)


def test_hidden_log_weight_sums_out_x_and_y():
  params = _params(seed=2)
  table = _table(params)
  hs = jnp.asarray(_states(H), jnp.float32)
  np.testing.assert_allclose(np.asarray(core.hidden_log_weight(params, hs)),
                             _logsumexp(table, axis=(0, 1)), rtol=1e-5, atol=1e-5)


def test_exact_log_partition_refuses_too_many_hidden_units():
  with pytest.raises(ValueError, match="use AIS"):
    core.exact_log_partition(_params(h=core.MAX_ENUMERATED_HIDDEN + 1))


def test_gibbs_conditionals_match_enumeration():
  params = _params(seed=3)
  table = _table(params)
  joint = np.exp(table - _logsumexp(table))  # p(x, y, h): (X, C, K)
  hs = _states(H)
  # p(h_j = 1 | x, y): the hidden marginal of the enumerated conditional
  p_h = joint / joint.sum(2, keepdims=True)
  for y in range(C):
    np.testing.assert_allclose(
        np.asarray(core.hidden_probs(params, XS, _one_hot(np.full(len(XS), y)))),
        p_h[:, y] @ hs, rtol=1e-5, atol=1e-6)
  # p(x_i = 1 | h) and p(y | h): marginals of p(x, y | h)
  given_h = joint / joint.sum((0, 1), keepdims=True)
  h32 = jnp.asarray(hs, jnp.float32)
  np.testing.assert_allclose(np.asarray(core.visible_probs(params, h32)),
                             given_h.sum(1).T @ _states(D), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.exp(np.asarray(core.label_log_probs(params, h32))),
                             given_h.sum(0).T, rtol=1e-5, atol=1e-6)


def test_gibbs_chains_reach_the_joint_distribution():
  params = _params(seed=4, scale=0.7)
  table = _table(params)
  p_xy = np.exp(_logsumexp(table, axis=2) - _logsumexp(table)).reshape(-1)  # (X * C,)
  n = 20_000
  x0, y0 = jnp.zeros((n, D), jnp.float32), _one_hot(np.zeros(n, np.int32))
  chain = jax.jit(core.gibbs_chain, static_argnums=(4, 5, 6))
  x, y, _ = chain(params, x0, y0, jax.random.key(0), 30)
  codes = (np.asarray(x, np.int64) @ (2 ** np.arange(D - 1, -1, -1))) * C + np.argmax(y, -1)
  freq = np.bincount(codes, minlength=len(p_xy)) / n
  # 20,000 draws: standard error <= 0.0036 per state, so 0.015 is over 4 standard errors
  np.testing.assert_allclose(freq, p_xy, atol=0.015)
  # with the label clamped, the chain samples p(x | y) and never moves y
  x, y, _ = chain(params, x0, _one_hot(np.full(n, 2)), jax.random.key(1), 30, None, True)
  assert np.all(np.argmax(y, -1) == 2)
  p_x_given_y = np.exp(_logsumexp(table[:, 2], axis=1) - _logsumexp(table[:, 2]))
  codes = np.asarray(x, np.int64) @ (2 ** np.arange(D - 1, -1, -1))
  np.testing.assert_allclose(np.bincount(codes, minlength=2 ** D) / n, p_x_given_y, atol=0.015)


def _enumerated_log_p_y_given_x(params: core.ClassRBMParams) -> jax.Array:
  """mean_b log p(LABELS_b | XS_b) by summing the enumerated table (jax, differentiable)."""
  table = _table(params, jnp)
  log_px_y = jax.nn.logsumexp(table, axis=2)
  log_p = log_px_y - jax.nn.logsumexp(log_px_y, axis=1, keepdims=True)
  return jnp.mean(log_p[jnp.arange(len(XS)), LABELS])


def _assert_trees_close(a, b, atol):
  for name, x, y in zip(("w", "u", "b", "c", "d"), jax.tree.leaves(a), jax.tree.leaves(b),
                        strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, err_msg=name)


def test_discriminative_gradient_is_the_gradient_of_the_enumerated_conditional():
  params = _params(seed=5)
  grad = core.discriminative_gradient(params, XS, _one_hot(LABELS))
  # Gradients of size <= 1 from float32 sums of 48 terms: 1e-5 is tens of float32 ulps.
  _assert_trees_close(grad, jax.grad(_enumerated_log_p_y_given_x)(params), atol=1e-5)
  _assert_trees_close(grad, jax.grad(lambda p: jnp.mean(jnp.sum(
      core.log_p_y_given_x(p, XS) * _one_hot(LABELS), -1)))(params), atol=1e-5)
  # log p(y | x) does not depend on b: its part is x (1 - sum_y p(y | x)), float32 rounding
  assert float(jnp.max(jnp.abs(grad.b))) < 1e-6


def _model_statistics_weights(params):
  """(every visible state, X * p(x, y)): `statistics` of these is the exact model expectation
  (its batch mean over the X states of sum_y q_y S(x, y) is sum_{x, y} p(x, y) S(x, y))."""
  table = _table(params)
  p_xy = np.exp(_logsumexp(table, axis=2) - _logsumexp(table))
  return XS, jnp.asarray(len(XS) * p_xy, jnp.float32)


def test_cd_gradient_with_the_exact_model_expectation_is_the_likelihood_gradient():
  params = _params(seed=6, scale=0.5)
  x0 = XS[jnp.asarray([1, 5, 6, 9, 15])]
  y0 = _one_hot([0, 2, 1, 1, 2])
  xs, q_model = _model_statistics_weights(params)
  grad = core.cd_gradient(params, x0, y0, xs, q_model)
  exact = jax.grad(lambda p: jnp.mean(-core.free_energy(p, x0, y0))
                   - jax.nn.logsumexp(_table(p, jnp)))(params)
  _assert_trees_close(grad, exact, atol=1e-5)
  # log p(x): the data's label distribution is p(y | x), the model's is the same joint
  p_y = jnp.exp(core.log_p_y_given_x(params, x0))
  grad = core.cd_gradient(params, x0, p_y, xs, q_model)
  exact = jax.grad(lambda p: jnp.mean(jax.nn.logsumexp(core.class_scores(p, x0), -1))
                   - jax.nn.logsumexp(_table(p, jnp)))(params)
  _assert_trees_close(grad, exact, atol=1e-5)


# ------------------------------------------------------------------------------ the family


def _tiny_config(joint_weight: float = 0.0, method: str = "cd", semi: bool = False,
                 **model) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.family = "classrbm"
  c.seed = 0
  c.data = ml_collections.ConfigDict({
      "image_shape": (2, 2, 1), "batch_size": 8, "num_labels": 20 if semi else -1,
      "semi_supervised": semi, "labelled_batch_size": 4})
  c.model = classrbm.model_config(num_hidden=H, num_classes=C, joint_weight=joint_weight,
                                  method=method, cd_k=2, init_scale=0.5,
                                  visible_bias_init="zero", **model)
  c.optim = classrbm.optim_config(learning_rate=0.1, decay_start=1.0)
  c.train = ml_collections.ConfigDict({"num_steps": 10})
  return c


def _state(config):
  state = classrbm.create_state(jax.random.key(0), config)
  p = _params(seed=7)  # nonzero biases too
  return state.replace(params=p.replace(w=state.params.w, u=state.params.u))


def _batch(n: int = 8, seed: int = 0, semi: bool = False) -> dict:
  r = np.random.default_rng(seed)
  images = jnp.asarray(r.integers(0, 2, (n, 2, 2, 1)), jnp.float32)
  labels = jnp.asarray(r.integers(0, C, n), jnp.int32)
  if not semi:
    return {"image": images, "label": labels}
  return {"image": images, "labelled_image": images[:4], "labelled_label": labels[:4]}


def test_discriminative_step_is_the_sgd_step_on_the_exact_gradient():
  config = _tiny_config(joint_weight=0.0, sparsity=0.03)
  state = _state(config)
  batch = _batch()
  new, metrics = jax.jit(classrbm.train_step)(state, batch, jax.random.key(1))
  x = batch["image"].reshape(8, D)
  y = _one_hot(batch["label"])
  grad = jax.grad(lambda p: jnp.mean(jnp.sum(core.log_p_y_given_x(p, x) * y, -1)))(state.params)
  want = jax.tree.map(lambda p, g: p + 0.1 * g, state.params, grad)
  want = want.replace(c=want.c - 0.03)  # the sparsity pull on the hidden biases
  _assert_trees_close(new.params, want, atol=1e-6)
  np.testing.assert_allclose(float(metrics["loss"]), -float(jnp.mean(jnp.sum(
      core.log_p_y_given_x(state.params, x) * y, -1))), rtol=1e-6)
  assert int(new.step) == 1


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_the_step_is_the_joint_weight_blend_of_the_two_gradients(method):
  # Same key, same chains: the update of lambda is lambda * (generative update) + (1 - lambda) *
  # (discriminative update), exactly in real arithmetic.
  batch, key = _batch(seed=2), jax.random.key(3)
  deltas = {}
  for lam in (0.0, 0.3, 1.0):
    state = _state(_tiny_config(joint_weight=lam, method=method))
    new, _ = jax.jit(classrbm.train_step)(state, batch, key)
    deltas[lam] = jax.tree.map(jnp.subtract, new.params, state.params)
  blend = jax.tree.map(lambda a, b: 0.3 * b + 0.7 * a, deltas[0.0], deltas[1.0])
  _assert_trees_close(deltas[0.3], blend, atol=1e-6)
  assert float(jnp.max(jnp.abs(deltas[1.0].w))) > 1e-3  # the CD term moved the weights


@pytest.mark.parametrize("method", ["cd", "pcd"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_the_step_is_the_composition_of_the_core_gradients(method, lam):
  # The step shares one forward pass between p(y | x), the statistics and CD's first sweep; here
  # the same update composed plainly: lambda (core.cd_gradient against a core.gibbs_chain from
  # the same key) + (1 - lambda) jax.grad of the exact mean log p(y | x), times the rate 0.1.
  config = _tiny_config(joint_weight=lam, method=method)
  state, batch, key = _state(config), _batch(seed=9), jax.random.key(10)
  new, _ = jax.jit(classrbm.train_step)(state, batch, key)
  params, x, y = state.params, batch["image"].reshape(8, D), _one_hot(batch["label"])
  k_chain = jax.random.split(jax.random.fold_in(key, 0), 3)[0]  # the step's chain key
  start = (x, y) if method == "cd" else (state.chains_x, state.chains_y)
  xk, yk, _ = core.gibbs_chain(params, *start, k_chain, 2)
  cd = core.cd_gradient(params, x, y, xk, yk)
  disc = jax.grad(lambda p: jnp.mean(jnp.sum(core.log_p_y_given_x(p, x) * y, -1)))(params)
  want = jax.tree.map(lambda g, d: 0.1 * (lam * g + (1.0 - lam) * d), cd, disc)
  # float32 error: each gradient entry is a mean of B = 8 terms no larger than 2 (|x| <= 1,
  # |y - p| <= 1, sigmoids <= 1), summed along two orders (at most 2 B roundings of 2 eps), and
  # the probabilities come from hidden inputs |z| <= z_max through differently rounded sigmoid
  # and softplus (a few eps each; the scores sum H of them, p(y | x) moves by at most twice the
  # scores' error): 2 (2 B + 2 H z_max) eps per entry, times the rate; then the update rounds to
  # the parameters' ulp and the delta new - old to it once more.
  eps = float(np.finfo(np.float32).eps)
  z_max = float(jnp.max(jnp.abs(x @ params.w + params.c)) + jnp.max(jnp.abs(params.u)))
  p_max = max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(params))
  atol = 0.1 * 2 * (2 * 8 + 2 * H * z_max) * eps + 2 * p_max * eps
  got = jax.tree.map(jnp.subtract, new.params, params)
  _assert_trees_close(got, want, atol=atol)
  # Both terms are far above the tolerance, so dropping or misweighting either fails.
  assert float(jnp.max(jnp.abs(cd.w - disc.w))) * 0.1 * 0.3 > 100 * atol


@pytest.mark.parametrize("method,semi", [("cd", False), ("pcd", False), ("cd", True),
                                         ("pcd", True)])
def test_four_devices_take_the_step_of_one(method, semi):
  # The step under a 4-way named axis (jax.vmap stands in for pmap: the same collectives) on
  # quarters of the batch equals the one-device step on the whole batch.
  config = _tiny_config(joint_weight=0.5, method=method, semi=semi, unlabelled_weight=0.7 * semi)
  state = _state(config)
  batch, key = _batch(seed=4, semi=semi), jax.random.key(5)
  one, m_one = jax.jit(classrbm.train_step)(state, batch, key)

  def quarter(x):
    return x.reshape(4, x.shape[0] // 4, *x.shape[1:])

  many, m_many = jax.jit(jax.vmap(lambda b: classrbm.train_step(state, b, key, axis_name="i"),
                                  axis_name="i"))(jax.tree.map(quarter, batch))
  for i in range(4):
    _assert_trees_close(jax.tree.map(lambda a, i=i: a[i], many.params), one.params, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(many.chains_x[i]), np.asarray(one.chains_x))
  np.testing.assert_allclose(float(m_many["loss"][0]), float(m_one["loss"]), rtol=1e-6)


def test_semi_supervised_step_adds_the_unlabelled_term():
  batch, key = _batch(seed=6, semi=True), jax.random.key(7)
  deltas = {}
  for beta in (0.0, 1.0, 2.0):
    state = _state(_tiny_config(joint_weight=0.2, semi=True, unlabelled_weight=beta))
    new, _ = jax.jit(classrbm.train_step)(state, batch, key)
    deltas[beta] = jax.tree.map(jnp.subtract, new.params, state.params)
  # Linear in beta; the unlabelled chains' noise is drawn from its own key either way.
  twice = jax.tree.map(lambda a, b: 2.0 * b - a, deltas[0.0], deltas[1.0])
  _assert_trees_close(deltas[2.0], twice, atol=1e-6)
  assert float(jnp.max(jnp.abs(deltas[1.0].b - deltas[0.0].b))) > 1e-3


def test_train_step_compiles_once():
  step = jax.jit(classrbm.train_step)
  # hyper-parameters no other test compiles (they are static: each set is its own program)
  state = _state(_tiny_config(joint_weight=0.4, method="pcd"))
  before = step._cache_size()  # jit's cache is the function's: earlier tests' programs count
  for i in range(4):
    state, metrics = step(state, _batch(seed=i), jax.random.key(0))
  assert int(state.step) == 4
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert step._cache_size() == before + 1


def test_discriminative_training_fits_the_enumerated_conditional():
  # Labels drawn from a random model's p(y | x): the exact conditional log-likelihood rises.
  teacher = _params(seed=8, scale=2.0)
  r = np.random.default_rng(0)
  idx = r.integers(0, len(XS), 256)
  p = np.exp(np.asarray(core.log_p_y_given_x(teacher, XS)))[idx]
  labels = np.array([r.choice(C, p=q / q.sum()) for q in p])
  images = np.asarray(XS)[idx].reshape(256, 2, 2, 1)
  config = _tiny_config(joint_weight=0.0)
  config.optim.learning_rate = 0.5
  state = classrbm.create_state(jax.random.key(0), config)
  x, y = jnp.asarray(images.reshape(256, D)), _one_hot(labels)

  def ll(params):
    return float(jnp.mean(jnp.sum(core.log_p_y_given_x(params, x) * y, -1)))

  before, step = ll(state.params), jax.jit(classrbm.train_step)
  for i in range(200):
    sl = slice(8 * (i % 32), 8 * (i % 32) + 8)
    state, _ = step(state, {"image": jnp.asarray(images[sl]), "label": jnp.asarray(labels[sl])},
                    jax.random.key(1))
  assert ll(state.params) > before + 0.1, (before, ll(state.params))


def test_class_conditional_samples_and_the_evaluation_hooks():
  state = _state(_tiny_config())
  images = jax.jit(classrbm.sample, static_argnums=(2, 3))(state, jax.random.key(0), 6, 5)
  assert images.shape == (6, 2, 2, 1)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
  assert classrbm.num_classes(state) == C
  batch = _batch()
  log_p = classrbm.log_proba(state, batch)
  np.testing.assert_allclose(np.asarray(jnp.sum(jnp.exp(log_p), -1)), 1.0, rtol=1e-6)
  metrics = classrbm.eval_step(state, batch, jax.random.key(0))
  acc = float(jnp.mean(jnp.argmax(log_p, -1) == batch["label"]))
  assert float(metrics["accuracy"]) == acc and float(metrics["error"]) == 1.0 - acc


@pytest.mark.parametrize("field,value,match", [
    ("model.joint_weight", -0.1, "model.joint_weight must be in"),
    ("model.joint_weight", 1.5, "model.joint_weight must be in"),
    ("model.unlabelled_weight", 0.1, "model.unlabelled_weight 0.1 needs unlabelled"),
    ("data.semi_supervised", True, "data.semi_supervised needs unlabelled data"),
    ("model.sparsity", -1e-3, "model.sparsity must be"),
    ("model.method", "gibbs", "model.method"),
])
def test_bad_hyper_parameters_fail_in_one_line_before_compiling(field, value, match):
  config = _tiny_config()
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match) as info:
    classrbm.create_state(jax.random.key(0), config)
  assert "\n" not in str(info.value)


@pytest.mark.parametrize("arg", ["", "smoke", "hybrid,0", "hybrid,smoke,smoke", "100,hybrid",
                                 "hybrid,discriminative", "hybrid,ten"])
def test_bad_config_arguments_fail_in_one_line(arg):
  with pytest.raises(ValueError, match="VARIANT") as info:
    gconfig.load(f"{CONFIG}:{arg}" if arg else str(CONFIG))
  assert "\n" not in str(info.value)


def test_config_variants_follow_the_paper():
  hidden = {v: gconfig.load(f"{CONFIG}:{v}").model.num_hidden for v in
            ("generative", "discriminative", "hybrid", "sparse_hybrid")}
  assert hidden == {"generative": 6000, "discriminative": 500, "hybrid": 1500,
                    "sparse_hybrid": 3000}
  hybrid = gconfig.load(f"{CONFIG}:hybrid,100")
  assert hybrid.model.joint_weight == pytest.approx(0.01 / 1.01)
  assert hybrid.data.num_labels == 100 and hybrid.data.semi_supervised
  assert hybrid.model.unlabelled_weight > 0
  assert gconfig.load(f"{CONFIG}:sparse_hybrid").model.sparsity > 0


# ------------------------------------------------------------------------------ the loop

SMOKE_ARGS = ["generative,smoke", "discriminative,smoke", "hybrid,smoke", "sparse_hybrid,smoke",
              "hybrid,100,smoke"]


@pytest.fixture(scope="module")
def remembered_splits():
  """MNIST read once for the module's smoke runs (the variants share it)."""
  from conftest import remembering_split_loader

  from genjax.data import splits
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(splits, "load", remembering_split_loader(splits.load))
    yield


@pytest.mark.parametrize("arg", SMOKE_ARGS)
def test_smoke_variant_trains_and_evaluates(arg, tmp_path, experiment_script, tfds_data_dir,
                                            remembered_splits):
  from genjax import train
  del tfds_data_dir, remembered_splits
  config = gconfig.load(f"{CONFIG}:{arg}")
  config.unlock()
  config.train.progress = False
  config.train.tensorboard = False
  trained = train.train_and_evaluate(config, str(tmp_path))
  assert trained["joint_weight"] == pytest.approx(config.model.joint_weight)
  for split in ("test", "validation"):
    scores = trained[split]
    # a smoke run scores the first examples of each 10,000-image split (evals.SMOKE_OPTIONS)
    assert scores["num_examples"] == evals.SMOKE_OPTIONS["classification"]["num_examples"]
    assert 0.0 <= scores["error"] <= 1.0 and math.isfinite(scores["log_loss"])
    assert scores["error"] == pytest.approx(1.0 - scores["accuracy"])
  assert list((tmp_path / "samples").glob("*.png"))
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [10, 20]
  # experiments/evaluate.py scores the checkpoint as the loop did
  scored = experiment_script("evaluate").evaluate(str(tmp_path))
  for k in ("accuracy", "log_loss", "ece"):
    assert scored["test"][k] == pytest.approx(trained["test"][k], rel=1e-5, abs=1e-7), k
