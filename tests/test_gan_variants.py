"""The GAN step's variants (tiny DCGANs) against recomputations by hand and closed forms."""

import functools
import re
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import config as gconfig
from genjax import losses, rng
from genjax.families import gan

# Compiling is what costs time here (the networks are tiny), so the file compiles few programs,
# each with LLVM's optimisations off (FAST_COMPILE), and draws initial states with NumPy in
# create_state's structure instead of running the initialisers op by op. The 8-device runs take
# place in a subprocess (this file, run as a script) started when the module's first test runs,
# so that it compiles beside this process.

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
B = 16  # the global batch of the 8-device runs: every program here shares its shapes
Z = 8
H, D_H = 4, 4  # generator and discriminator widths
LR, B1 = 2e-4, 0.5  # the course's DCGAN optimiser
INIT_KEY, TRAIN_KEY = jax.random.split(jax.random.key(0))
NUM_DEVICES = 8
# Each program here runs once or twice on tiny networks: LLVM's optimisations and XLA's MLIR
# fusion emitters cost more time than they save (a one-step program compiles 3x faster without).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                "xla_cpu_use_fusion_emitters": False}


@functools.cache
def _compiler_options() -> dict:
  """FAST_COMPILE, or nothing where this XLA lacks one of those (debug) options."""
  try:
    jax.jit(lambda x: x + 1, compiler_options=FAST_COMPILE)(1.0)
  except Exception:  # an unknown option: XLA's own defaults are correct, only slower
    return {}
  return FAST_COMPILE


def _jit(fn, **kwargs):
  return jax.jit(fn, compiler_options=_compiler_options(), **kwargs)


@functools.cache
def _compiled(fn):
  """`fn` jitted with FAST_COMPILE, once (on first use: not at import, which runs no JAX)."""
  return _jit(fn)


def _config(**model) -> ml_collections.ConfigDict:
  """A GAN config on 28x28x1 images with a tiny DCGAN; `model` overrides model_config."""
  c = ml_collections.ConfigDict({"family": "gan", "seed": 0, "parallel": "none"})
  c.data = gconfig.image_data("mnist", preprocess="symmetric", batch_size=B)
  c.model = gan.model_config(**{"arch": "dcgan", "z_dim": Z, "hidden_dim": H,
                                "d_hidden_dim": D_H, **model})
  c.optim = gconfig.adam(LR, b1=B1, b2=0.999)
  c.train = gconfig.train_schedule(1)
  return c


def _initial_value(path, leaf) -> np.ndarray:
  """A leaf of a fresh GAN state: kernels N(0, 0.02) as the course, biases 0, norm scales 1,
  running mean 0 and variance 1, Adam's state 0, spectral norm's u ~ N(0, 1) and sigma 1.

  Norm scales are PyTorch's default 1, not the course's N(0, 0.02): with those the generator's
  images are ~1e-11 whatever z is, and the maths under test would hardly reach the outputs.
  Values are seeded by the leaf's name, so every variant of a network starts from the same
  weights, and the EMA copy from the generator's.
  """
  name = jax.tree_util.keystr(path).replace(".generator_ema", ".generator.params")
  draw = np.random.RandomState(zlib.crc32(name.encode()))
  if not np.issubdtype(leaf.dtype, np.floating) or ".opt_state" in name:
    return np.zeros(leaf.shape, leaf.dtype)
  for suffix, value in (("['kernel']", None), ("/u']", None), ("['scale']", 1.0),
                        ("['var']", 1.0), ("/sigma']", 1.0), ("['bias']", 0.0),
                        ("['mean']", 0.0)):
    if name.endswith(suffix):
      if value is not None:
        return np.full(leaf.shape, value, leaf.dtype)
      std = 0.02 if suffix == "['kernel']" else 1.0
      return (std * draw.standard_normal(leaf.shape)).astype(leaf.dtype)
  raise ValueError(f"no initial value for {name}")


def _draw_state(config: ml_collections.ConfigDict) -> gan.GANState:
  """create_state's state (its structure traced, not run) with _initial_value's values."""
  abstract = jax.eval_shape(lambda k: gan.create_state(k, config), INIT_KEY)
  return jax.tree.map(jnp.asarray, jax.tree_util.tree_map_with_path(_initial_value, abstract))


@functools.cache
def _state_cached(model: tuple) -> gan.GANState:
  return _draw_state(_config(**dict(model)))


def _state(**model) -> gan.GANState:
  """The initial state of `_config(**model)` (cached: states are immutable)."""
  return _state_cached(tuple(sorted(model.items())))


def _batch(seed: int = 0) -> dict:
  """Uniform images in [-1, 1] (the symmetric preprocessing's range) and random labels."""
  rs = np.random.RandomState(seed)
  return {"image": jnp.asarray(rs.uniform(-1.0, 1.0, (B, 28, 28, 1)), jnp.float32),
          "label": jnp.asarray(rs.randint(0, 10, B), jnp.int32)}


def _step_keys(step: int = 0):
  """The step's critic and generator keys, as train_step derives them."""
  return jax.random.split(rng.step_key(TRAIN_KEY, step))


def _leaves(tree) -> dict:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


# A bias in front of a batch norm has zero gradient up to rounding (the norm subtracts its batch
# mean), and Adam scales rounding up to ~lr (g / (|g| + eps), |g| ~ eps); the norm's running mean
# carries that bias. Two programs that round differently (a scan against separate calls, 8
# devices against 1) may disagree there, and only there, by up to ~2 lr per update: an Adam
# step is at most about lr (a little more when the gradient varies), either way.
PRE_NORM_LEAF = re.compile(r"\.(params|mu|nu)\['(ConvTranspose_[012]|Conv_[01])'\]\['bias'\]"
                           r"|\.batch_stats\['BatchNorm_\d'\]\['mean'\]")


def _moment(name: str) -> str | None:
  """The network and Adam moment a leaf belongs to (`[0].generator` + `mu`), else None."""
  match = re.match(r"(.*)\.opt_state\[\d+\]\.(mu|nu)\[", name)
  return match and match.group(1) + match.group(2)


def _pre_norm_atol(updates: int) -> float:
  """The tolerance of PRE_NORM_LEAF's leaves after `updates` Adam updates (see above)."""
  return 3 * LR * updates


def _assert_trees_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-6,
                        pre_norm_atol: float | None = None) -> None:
  """Same structure; float leaves within rtol/atol, others equal.

  Adam's moments are ~g and ~g^2 (1e-10 and below), so an absolute tolerance on them would
  accept anything: theirs is 1e-5 of the largest entry of the same moment of the same network
  (as tests/test_parallel.py). `pre_norm_atol`, when given, is the tolerance of the parameters
  and running means PRE_NORM_LEAF matches; their moments, rounding noise, need only be small
  (1e-3 of the scale).
  """
  actual, expected = _leaves(actual), _leaves(expected)
  assert actual.keys() == expected.keys(), what
  scale = {}
  for name, want in expected.items():
    if _moment(name):
      scale[_moment(name)] = max(scale.get(_moment(name), 0.0), float(np.max(np.abs(want))))
  for name, want in expected.items():
    got = actual[name]
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {name}"
    if not np.issubdtype(want.dtype, np.floating):
      np.testing.assert_array_equal(got, want, err_msg=f"{what}: {name}")
      continue
    tol = 1e-5 * scale[_moment(name)] if _moment(name) else atol
    if pre_norm_atol is not None and PRE_NORM_LEAF.search(name):
      tol = 1e-3 * scale[_moment(name)] if _moment(name) else pre_norm_atol
    np.testing.assert_allclose(got, want, rtol=rtol, atol=tol, err_msg=f"{what}: {name}")


# ------------------------------------------------------------------ one step of each variant

CGAN = {"num_classes": 10, "fresh_generator_noise": False}
VARIANTS = {
    "bce": {},  # the course's DCGAN: batch norm in both networks
    "bce_smoothed": {"real_label": 0.9},
    "wasserstein": {"loss": "wasserstein"},
    "hinge": {"loss": "hinge"},
    "least_squares": {"loss": "least_squares"},
    "gp": {"loss": "wasserstein", "gp_weight": 10.0},
    "r1": {"r1_weight": 3.0},  # beside the non-saturating bce loss
    "ema": {"ema_decay": 0.9},
    "layer": {"d_norm": "layer"},
    "none": {"d_norm": "none"},
    "spectral": {"d_norm": "none", "spectral_norm": True},
    "cgan": CGAN,
}


@functools.cache
def _stepped(name: str):
  """(initial state, state after one step on _batch(), metrics) of VARIANTS[name]; "ema_2":
  the EMA variant's second step, on _batch(1). One program per variant: XLA compiles a
  program of all of them more slowly than it compiles them one by one."""
  if name == "ema_2":
    state = _stepped("ema")[1]
    return (state, *_compiled(gan.train_step)(state, _batch(1), TRAIN_KEY))
  state = _state(**VARIANTS[name])
  return (state, *_compiled(gan.train_step)(state, _batch(), TRAIN_KEY))


def _train_apply(net, params, stats, x):
  """A training-mode forward pass by hand: (output, updated batch_stats)."""
  if not stats:
    return net.module.apply({"params": params}, x, train=True), stats
  y, updates = net.module.apply({"params": params, "batch_stats": stats}, x, train=True,
                                mutable=["batch_stats"])
  return y, updates["batch_stats"]


def _with_class(z, one_hot):
  """z joined with the one-hot class (conditional GAN), by hand; z itself without."""
  return z if one_hot is None else jnp.concatenate([z, one_hot], -1)


def _with_class_planes(x, one_hot):
  """Images joined with the one-hot class as constant planes, by hand; x itself without."""
  if one_hot is None:
    return x
  planes = jnp.broadcast_to(one_hot[:, None, None, :], (*x.shape[:3], one_hot.shape[-1]))
  return jnp.concatenate([x, planes], -1)


def _passes_by_hand(g, d, d_params_after, real, k_critic, k_gen, one_hot):
  """The training-mode forward passes of a one-critic-update step, by hand.

  The critic's fakes come from z ~ k_critic; D scores them, then the reals, each pass on its
  own; the generator's images come from z ~ k_gen (the generator before its update, its
  statistics after the critic's pass) and are scored by D after its update (d_params_after).
  """
  fake, g_stats = _train_apply(g, g.params, g.batch_stats,
                               _with_class(rng.normal(k_critic, B, (Z,)), one_hot))
  real_in, fake_in = _with_class_planes(real, one_hot), _with_class_planes(fake, one_hot)
  fake_s, d_stats = _train_apply(d, d.params, d.batch_stats, fake_in)
  real_s, d_stats = _train_apply(d, d.params, d_stats, real_in)
  gen, g_stats_after = _train_apply(g, g.params, g_stats,
                                   _with_class(rng.normal(k_gen, B, (Z,)), one_hot))
  gen_in = _with_class_planes(gen, one_hot)
  gen_s, d_stats_after = _train_apply(d, d_params_after, d_stats, gen_in)
  # The other order (reals first) and one pass over the concatenated batch, for contrast.
  _, swapped = _train_apply(d, d.params, d.batch_stats, real_in)
  _, swapped = _train_apply(d, d.params, swapped, fake_in)
  _, swapped = _train_apply(d, d_params_after, swapped, gen_in)
  joint_s, _ = _train_apply(d, d.params, d.batch_stats, jnp.concatenate([real_in, fake_in]))
  return {"fake": fake, "real_s": real_s, "fake_s": fake_s, "gen_s": gen_s,
          "g_stats_after": g_stats_after, "d_stats_after": d_stats_after,
          "reals_first_stats": swapped, "joint_s": joint_s}


def _net(net):
  """A network's state without its optimiser, for the hand computations: the optimiser is a
  static field whose functions differ from config to config, so it would key a compilation
  per variant where the networks' shapes key one per architecture."""
  return net.replace(opt_state=None, tx=None)


def _by_hand(name: str, k_gen=None) -> dict:
  """_passes_by_hand for a variant's first step (k_gen: the generator's noise key)."""
  state, new, _ = _stepped(name)
  k_d, k_g = _step_keys(0)
  labels = _batch()["label"]
  one_hot = jax.nn.one_hot(labels, 10) if state.hparams.num_classes else None
  return _compiled(_passes_by_hand)(_net(state.generator), _net(state.discriminator),
                                    new.discriminator.params, _batch()["image"], k_d,
                                    k_g if k_gen is None else k_gen, one_hot)


# ------------------------------------------------------------------------------- n_critic

WGAN_GP = {"loss": "wasserstein", "gp_weight": 10.0, "d_norm": "batch"}


def _n_critic_step(state, batch, key):
  """The step, compiled for the n_critic = 3 WGAN-GP state alone: one program in its cache."""
  return gan.train_step(state, batch, key)


def test_n_critic_step_equals_successive_critic_updates_then_the_generator():
  state = _state(**WGAN_GP, n_critic=3)
  hp, batch = state.hparams, _batch()
  step = _compiled(_n_critic_step)
  new, metrics = step(state, batch, TRAIN_KEY)

  # The reference: three critic updates with the split critic key, each with fresh fakes ...
  k_d, k_g = _step_keys(0)
  critic_update = _jit(lambda g, d, real, k: gan._critic_update(hp, g, d, real, None, k, None))
  g, d = state.generator, state.discriminator
  d_metrics = []
  for k in jax.random.split(k_d, 3):
    g, d, _, m = critic_update(g, d, batch["image"], k)
    d_metrics.append(m)

  # ... then the generator against the updated critic, with fresh noise from the other key.
  @_jit
  def generator_update(g, d, key):
    z = rng.normal(key, B, (Z,))

    def g_loss_fn(params):
      x, g_stats = _train_apply(g, params, g.batch_stats, z)
      scores, d_stats = _train_apply(d, d.params, d.batch_stats, x)
      return losses.wasserstein_generator(scores), (g_stats, d_stats)

    (g_loss, (g_stats, d_stats)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g.params)
    return g.apply_gradients(grads, batch_stats=g_stats), d.replace(batch_stats=d_stats), g_loss

  g, d, g_loss = generator_update(g, d, k_g)
  want_metrics = {k: np.mean([float(m[k]) for m in d_metrics]) for k in d_metrics[0]}
  want_metrics["g_loss"] = float(g_loss)

  assert set(metrics) == {"d_loss", "gp", "real_score", "fake_score", "g_loss"}
  for k, v in want_metrics.items():
    np.testing.assert_allclose(float(metrics[k]), v, rtol=1e-5, err_msg=k)
  # The average is not the last update's value: the critic moved between its updates.
  assert abs(float(d_metrics[0]["d_loss"]) - float(d_metrics[-1]["d_loss"])) > 1e-2
  _assert_trees_close(new.generator, g, "generator", pre_norm_atol=_pre_norm_atol(1))
  _assert_trees_close(new.discriminator, d, "discriminator", pre_norm_atol=_pre_norm_atol(3))
  assert int(new.step) == 1
  assert int(new.discriminator.opt_state[0].count) == 3
  assert int(new.generator.opt_state[0].count) == 1

  # A second step (another step key, another batch) reuses the one compiled program.
  two, m2 = step(new, _batch(1), TRAIN_KEY)
  assert int(two.step) == 2 and int(two.discriminator.opt_state[0].count) == 6
  assert all(np.isfinite(float(v)) for v in m2.values())
  assert step._cache_size() == 1


def _equations(jaxpr):
  """Every equation of a jaxpr and of the jaxprs nested in it (scan bodies, custom rules)."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _equations(inner)


def test_n_critic_updates_are_one_scan_not_a_python_loop():
  batch = _batch()

  def jaxpr(n):
    return jax.make_jaxpr(gan.train_step)(_state(**WGAN_GP, n_critic=n), batch, TRAIN_KEY).jaxpr

  j2, j3 = jaxpr(2), jaxpr(3)
  scans = [e for e in j3.eqns if e.primitive.name == "scan"]
  assert len(scans) == 1 and scans[0].params["length"] == 3
  # The critic update (its networks' matrix products or convolutions) is in the scan's body ...
  layers = lambda j: sum(e.primitive.name in ("dot_general", "conv_general_dilated")
                         for e in _equations(j))
  assert layers(scans[0].params["jaxpr"].jaxpr) > 0
  # ... traced once: the program does not grow with n_critic.
  assert sum(1 for _ in _equations(j2)) == sum(1 for _ in _equations(j3))


# --------------------------------------------------------------------- BatchNorm critic passes


def test_batch_norm_critic_scores_fakes_then_reals_in_separate_passes():
  state, new, metrics = _stepped("bce")
  assert state.hparams.d_batch_norm
  ref = _by_hand("bce")
  real_s, fake_s = ref["real_s"], ref["fake_s"]
  np.testing.assert_allclose(metrics["d_loss"], losses.gan_discriminator_bce(real_s, fake_s),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics["d_real"], jnp.mean(jax.nn.sigmoid(real_s)), rtol=1e-5)
  np.testing.assert_allclose(metrics["d_fake"], jnp.mean(jax.nn.sigmoid(fake_s)), rtol=1e-5)
  # One pass over the concatenated batch normalises reals and fakes together: other scores.
  joint = ref["joint_s"]
  assert np.max(np.abs(joint[:B] - real_s)) > 1e-2 * np.max(np.abs(real_s))
  assert np.max(np.abs(joint[B:] - fake_s)) > 1e-2 * np.max(np.abs(fake_s))
  # The running statistics record the order: fakes, reals, then the generator step's fakes
  # scored by the updated D (the scores alone cannot tell the order).
  _assert_trees_close(new.discriminator.batch_stats, ref["d_stats_after"], "D batch_stats")
  # The generator's: its pass for the critic's fakes, then its own.
  _assert_trees_close(new.generator.batch_stats, ref["g_stats_after"], "G batch_stats")
  mean = lambda s: np.asarray(s["BatchNorm_0"]["mean"])
  assert not np.allclose(mean(ref["reals_first_stats"]), mean(ref["d_stats_after"]), rtol=1e-3,
                         atol=1e-7)


def test_critic_without_batch_norm_scores_one_concatenated_pass_like_two():
  state = _state(d_norm="none")
  assert not state.hparams.d_batch_norm
  d, real = state.discriminator, _batch()["image"]
  fake = jnp.tanh(jax.random.normal(jax.random.key(7), (B, 28, 28, 1)))

  @_jit
  def scores(d, real, fake):
    joint = gan._score_real_and_fake(state.hparams, d, d.params, real, fake, None)
    return joint, d.module.apply({"params": d.params}, real), d.module.apply(
        {"params": d.params}, fake)

  (real_s, fake_s, stats), real_alone, fake_alone = scores(d, real, fake)
  assert stats == {}
  np.testing.assert_allclose(real_s, real_alone, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(fake_s, fake_alone, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------ losses

LOSS_CASES = {
    "bce": (losses.gan_discriminator_bce, losses.gan_generator_non_saturating),
    "bce_smoothed": (functools.partial(losses.gan_discriminator_bce, real_label=0.9),
                     losses.gan_generator_non_saturating),
    "wasserstein": (losses.wasserstein_critic, losses.wasserstein_generator),
    "hinge": (losses.hinge_discriminator, losses.wasserstein_generator),
    "least_squares": (losses.least_squares_discriminator, losses.least_squares_generator),
}


@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_step_losses_are_the_loss_functions_of_recomputed_scores(case):
  d_loss_fn, g_loss_fn = LOSS_CASES[case]
  state, _, metrics = _stepped(case)
  ref = _by_hand(case)
  real_s, fake_s = ref["real_s"], ref["fake_s"]
  np.testing.assert_allclose(metrics["d_loss"], d_loss_fn(real_s, fake_s), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(metrics["g_loss"], g_loss_fn(ref["gen_s"]), rtol=1e-5, atol=1e-7)
  if state.hparams.loss == "bce":
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    np.testing.assert_allclose(metrics["d_fake"], jnp.mean(jax.nn.sigmoid(fake_s)), rtol=1e-5)
  else:
    assert set(metrics) == {"d_loss", "g_loss", "real_score", "fake_score"}
    np.testing.assert_allclose(metrics["real_score"], jnp.mean(real_s), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics["fake_score"], jnp.mean(fake_s), rtol=1e-5, atol=1e-7)


def _apart(values: list[float]) -> bool:
  """Pairwise further apart than rounding moves these O(1) losses of a tiny float32 network:
  1e-4, ~1e3 ulps of 1 (they agree with their recomputations to 1e-5 above)."""
  return all(abs(a - b) > 1e-4 for i, a in enumerate(values) for b in values[i + 1:])


def test_losses_differ_between_variants():
  """The cases above are not one loss under five names: same networks and noise, five values."""
  metric = lambda case, k: float(_stepped(case)[2][k])
  assert _apart([metric(case, "d_loss") for case in LOSS_CASES])
  # Hinge's critic gradient is Wasserstein's while every score is in (-1, 1), as here: the same
  # critic update, so the same generator loss up to rounding (not distinct values: at 5
  # decimals they rounded alike on one CPU, apart on another). The other four differ.
  ref = _by_hand("hinge")
  assert max(np.max(np.abs(ref[s])) for s in ("real_s", "fake_s", "gen_s")) < 1
  _assert_trees_close(_stepped("hinge")[1].discriminator, _stepped("wasserstein")[1].discriminator,
                      "hinge vs Wasserstein critic", pre_norm_atol=_pre_norm_atol(1))
  # Two programs' roundings of a mean of scores |s| < 0.5: 1e-5 of their size, ~80 ulps.
  np.testing.assert_allclose(metric("hinge", "g_loss"), metric("wasserstein", "g_loss"),
                             rtol=0, atol=1e-5 * np.max(np.abs(ref["gen_s"])))
  assert _apart([metric(case, "g_loss") for case in LOSS_CASES if case != "hinge"])


def test_bad_loss_settings_raise():
  with pytest.raises(ValueError, match="real_label"):
    gan.create_state(INIT_KEY, _config(loss="hinge", real_label=0.9))
  with pytest.raises(ValueError, match="unknown model.loss 'wgan'"):
    gan.create_state(INIT_KEY, _config(loss="wgan"))
  with pytest.raises(ValueError, match="n_critic"):
    gan.create_state(INIT_KEY, _config(n_critic=0))
  with pytest.raises(ValueError, match="ema_decay"):
    gan.create_state(INIT_KEY, _config(ema_decay=1.0))
  with pytest.raises(KeyError, match="no GAN model field 'gp'"):
    gan.model_config(gp=1.0)


# --------------------------------------------------------------------------------- penalties


def _penalised_critic_losses(d, real, fake, key):
  """(loss, penalty, gradient wrt D's parameters) of the WGAN-GP and of the R1 bce critic."""

  def critic_loss(params, penalty):
    f, stats = _train_apply(d, params, d.batch_stats, fake)
    r, stats = _train_apply(d, params, stats, real)
    score = lambda x: _train_apply(d, params, stats, x)[0]  # training mode, as the step
    if penalty == "gp":
      p = losses.gradient_penalty(score, real, fake, key)
      return losses.wasserstein_critic(r, f) + 10.0 * p, p
    p = losses.r1_penalty(score, real)
    return losses.gan_discriminator_bce(r, f) + 0.5 * 3.0 * p, p

  return {penalty: jax.value_and_grad(critic_loss, has_aux=True)(d.params, penalty)
          for penalty in ("gp", "r1")}


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_penalties_are_recomputed_and_weighted_into_the_critic_loss(penalty):
  state, new, metrics = _stepped(penalty)
  k_d, _ = _step_keys(0)
  fake, real = _by_hand(penalty)["fake"], _batch()["image"]
  by_hand = _compiled(_penalised_critic_losses)
  # The interpolation weights come from the critic key folded with 1.
  (loss, value), grads = by_hand(_net(state.discriminator), real, fake,
                                 jax.random.fold_in(k_d, 1))[penalty]
  assert ({"gp", "r1"} & set(metrics)) == {penalty}
  np.testing.assert_allclose(metrics[penalty], value, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_loss"], loss, rtol=1e-5)
  assert float(value) > 1e-2  # not negligible in the loss compared above
  # The penalty is differentiated, not only reported: Adam's first moment is (1 - b1) * grad.
  _assert_trees_close(new.discriminator.opt_state[0].mu,
                      jax.tree.map(lambda g_: (1 - B1) * g_, grads), "D's Adam mu",
                      rtol=1e-4, atol=1e-5)
  if penalty == "gp":  # another key gives other interpolates, another penalty
    (_, other), _ = by_hand(_net(state.discriminator), real, fake, jax.random.fold_in(k_d, 2))["gp"]
    assert abs(float(other) - float(value)) > 1e-3 * float(value)


# ---------------------------------------------------------------------------- conditioning


def test_conditional_gan_input_widths():
  state = _state(**CGAN)
  g, d = state.generator.params, state.discriminator.params
  assert g["ConvTranspose_0"]["kernel"].shape == (3, 3, Z + 10, 4 * H)
  assert d["Conv_0"]["kernel"].shape == (4, 4, 1 + 10, D_H)
  assert state.hparams.num_classes == 10


def test_conditional_inputs_append_the_one_hot_class():
  hp = _state(**CGAN).hparams
  labels = jnp.array([3, 0, 9, 3])
  z = jax.random.normal(jax.random.key(1), (4, Z))
  gz = gan.generator_input(hp, z, labels)
  assert gz.shape == (4, Z + 10)
  np.testing.assert_array_equal(gz[:, :Z], z)
  np.testing.assert_array_equal(gz[:, Z:], np.eye(10)[[3, 0, 9, 3]])
  x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1), minval=-1, maxval=1)
  dx = gan.discriminator_input(hp, x, labels)
  assert dx.shape == (4, 28, 28, 11)
  np.testing.assert_array_equal(dx[..., :1], x)
  planes = np.broadcast_to(np.eye(10)[[3, 0, 9, 3]][:, None, None, :], (4, 28, 28, 10))
  np.testing.assert_array_equal(dx[..., 1:], planes)
  # Without classes, both are the identity.
  plain = _state().hparams
  assert gan.generator_input(plain, z, labels) is z
  assert gan.discriminator_input(plain, x, labels) is x


def test_sample_labels_one_row_per_class():
  labels = np.asarray(gan.sample_labels(100, 10))
  np.testing.assert_array_equal(labels.reshape(10, 10),
                                np.repeat(np.arange(10), 10).reshape(10, 10))
  spread = np.asarray(gan.sample_labels(25, 10))
  assert np.all(np.diff(spread) >= 0) and spread[0] == 0 and spread[-1] == 9
  assert set(np.bincount(spread, minlength=10)) <= {2, 3}
  np.testing.assert_array_equal(gan.sample_labels(10, 10), np.arange(10))


def test_conditional_generate_needs_labels_and_sample_uses_sample_labels():
  state = _state(**CGAN)
  key = jax.random.key(3)
  with pytest.raises(ValueError, match="needs labels"):
    gan.generate(state, rng.normal(key, 10, (Z,)))

  @_jit
  def images(state):
    z = rng.normal(key, 10, (Z,))
    return (gan.sample(state, key, 10), gan.generate(state, z, jnp.arange(10)),
            gan.generate(state, z, jnp.arange(10)[::-1]))

  x, by_labels, reversed_labels = images(state)
  assert x.shape == (10, 28, 28, 1)
  np.testing.assert_array_equal(x, by_labels)
  # The labels reach the images: the same z with other classes gives other images.
  assert np.max(np.abs(x - reversed_labels)) > 1e-2 * np.max(np.abs(x))


def test_conditional_generator_step_reuses_the_critic_noise_and_real_labels():
  _, _, metrics = _stepped("cgan")
  k_d, _ = _step_keys(0)
  ref = _by_hand("cgan", k_gen=k_d)  # the generator's images from the critic's z
  np.testing.assert_allclose(
      metrics["d_loss"], losses.gan_discriminator_bce(ref["real_s"], ref["fake_s"]), rtol=1e-5)
  g_loss = losses.gan_generator_non_saturating(ref["gen_s"])
  np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
  # Non-vacuous: fresh noise from the generator key would give another loss.
  fresh = losses.gan_generator_non_saturating(_by_hand("cgan")["gen_s"])
  assert abs(float(fresh) - float(g_loss)) > 1e-4


# ---------------------------------------------------------------------------------------- EMA


def test_generator_ema_is_the_moving_average_and_sample_uses_it():
  state, one, _ = _stepped("ema")
  _, two, _ = _stepped("ema_2")
  p0, p1, p2 = state.generator.params, one.generator.params, two.generator.params
  want = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, p0, p1)
  _assert_trees_close(one.generator_ema, want, "EMA after one step", rtol=1e-6, atol=1e-9)
  want = jax.tree.map(lambda e, b: 0.9 * e + 0.1 * b, one.generator_ema, p2)
  _assert_trees_close(two.generator_ema, want, "EMA after two steps", rtol=1e-6, atol=1e-9)
  # The EMA lags the raw weights.
  ema_kernel = np.asarray(one.generator_ema["ConvTranspose_0"]["kernel"])
  assert not np.allclose(ema_kernel, p1["ConvTranspose_0"]["kernel"], rtol=0, atol=1e-6)

  key = jax.random.key(4)

  @_jit
  def images(state):
    g = state.generator
    stats = gan.ema_batch_stats(state)
    by_hand = g.module.apply({"params": state.generator_ema, "batch_stats": stats},
                             rng.normal(key, 8, (Z,)), train=False)
    return gan.sample(state, key, 8, ema=True), by_hand, gan.sample(state, key, 8), stats

  x, by_hand, raw, stats = images(one)
  np.testing.assert_allclose(x, by_hand, rtol=1e-6, atol=1e-7)
  assert np.max(np.abs(x - raw)) > 1e-3 * np.max(np.abs(raw))
  # The EMA generator's own statistics, not the raw generator's running ones.
  stats, running = jax.tree.leaves(stats), jax.tree.leaves(one.generator.batch_stats)
  assert any(np.max(np.abs(a - b)) > 1e-3 for a, b in zip(stats, running, strict=True))


def test_standing_batch_stats_is_the_mean_of_batch_statistics():
  """A network that is one BatchNorm over its input: its standing statistics are, in closed form,
  the mean over the batches of each batch's mean and (biased) variance, whatever its momentum."""
  import flax.linen as nn

  from genjax.state import standing_batch_stats
  x = np.random.RandomState(0).normal(2.0, 3.0, size=(5, 64, 3)).astype(np.float32)
  for momentum in (0.9, 0.99):
    bn = nn.BatchNorm(use_running_average=False, momentum=momentum)
    variables = bn.init(jax.random.key(0), x[0])

    def apply_train(stats, batch, bn=bn, variables=variables):
      return bn.apply({"params": variables["params"], "batch_stats": stats}, batch,
                      mutable=["batch_stats"])[1]["batch_stats"]

    got = jax.jit(lambda s, x: standing_batch_stats(apply_train, s, x))(
        variables["batch_stats"], x)
    # float32: (1 - m) * statistic, then divided by (1 - m) recovered as 1 - (m + u - u): a few
    # ulps of the statistic, scaled by 1 / (1 - m) <= 100.
    tol = 100 * 8 * np.finfo(np.float32).eps
    np.testing.assert_allclose(got["mean"], x.mean(axis=1).mean(axis=0), rtol=tol)
    np.testing.assert_allclose(got["var"], x.var(axis=1).mean(axis=0), rtol=tol)


def test_ema_weights_start_as_a_copy():
  """Own buffers, not the generator's: the training loop donates the state, and XLA refuses to
  donate one buffer twice. Traced, not run: each EMA leaf is computed from its parameter alone
  (a copy), and none is the parameter itself."""
  config = _config(ema_decay=0.9)
  closed = jax.make_jaxpr(lambda k: gan.create_state(k, config))(INIT_KEY)
  abstract = jax.eval_shape(lambda k: gan.create_state(k, config), INIT_KEY)
  out = jax.tree.unflatten(jax.tree.structure(abstract), closed.jaxpr.outvars)
  producer = {id(v): eqn for eqn in closed.jaxpr.eqns for v in eqn.outvars}
  ema, params = jax.tree.leaves(out.generator_ema), jax.tree.leaves(out.generator.params)
  assert len(ema) == len(params) > 0
  for e, p in zip(ema, params, strict=True):
    assert e is not p and id(e) in producer
    assert [v is p for v in producer[id(e)].invars] == [True]


def test_without_ema_there_is_no_ema_generator():
  state = _state()
  assert state.generator_ema is None
  with pytest.raises(ValueError, match="no EMA generator"):
    gan.sample(state, jax.random.key(0), 4, ema=True)


# ------------------------------------------------------------------------------ spectral norm


def _flat_kernels(params) -> dict:
  return {name: np.asarray(layer["kernel"]).reshape(-1, layer["kernel"].shape[-1])
          for name, layer in params.items() if name.startswith("Conv_")}


def _power_iterations(d, x, basis):
  """D's batch_stats after 40 training-mode calls on x (one power iteration each), and the
  first layer's outputs for `basis` in inference mode with those statistics."""
  stats = jax.lax.fori_loop(0, 40, lambda _, s: _train_apply(d, d.params, s, x)[1],
                            d.batch_stats)
  _, inter = d.module.apply({"params": d.params, "batch_stats": stats}, basis, train=False,
                            capture_intermediates=True)
  return stats, inter["intermediates"]["SpectralNorm_0"]["__call__"][0]


def test_spectral_norm_state_converges_to_the_largest_singular_values():
  state = _state(d_norm="none", spectral_norm=True)
  d = state.discriminator
  assert set(d.batch_stats) == {"SpectralNorm_0", "SpectralNorm_1", "SpectralNorm_2"}
  assert d.batch_stats["SpectralNorm_1"]["Conv_1/kernel/u"].shape == (1, 2 * D_H)
  # The 16 one-pixel images of the first layer's first 4x4 window: its responses at (0, 0),
  # less the bias, are the rows of its effective kernel.
  basis = np.zeros((16, 28, 28, 1), np.float32)
  basis[np.arange(16), np.arange(16) // 4, np.arange(16) % 4, 0] = 1.0
  stats, first = _compiled(_power_iterations)(d, _batch()["image"], jnp.asarray(basis))
  kernels = _flat_kernels(d.params)
  for i in range(3):
    top = np.linalg.svd(kernels[f"Conv_{i}"], compute_uv=False)[0]
    sigma = float(stats[f"SpectralNorm_{i}"][f"Conv_{i}/kernel/sigma"])
    np.testing.assert_allclose(sigma, top, rtol=1e-3, err_msg=f"Conv_{i}")
  w_eff = np.asarray(first)[:, 0, 0, :] - np.asarray(d.params["Conv_0"]["bias"])
  np.testing.assert_allclose(np.linalg.svd(w_eff, compute_uv=False)[0], 1.0, rtol=1e-3)
  top = np.linalg.svd(kernels["Conv_0"], compute_uv=False)[0]
  np.testing.assert_allclose(w_eff, kernels["Conv_0"] / top, rtol=1e-3, atol=1e-5)


def test_spectral_norm_step_updates_the_power_iteration_state():
  state, new, metrics = _stepped("spectral")
  before, after = state.discriminator.batch_stats, new.discriminator.batch_stats
  assert set(after) == {"SpectralNorm_0", "SpectralNorm_1", "SpectralNorm_2"}
  for i in range(2):  # (the last layer's u has one entry: +-1 always)
    u0, u1 = (s[f"SpectralNorm_{i}"][f"Conv_{i}/kernel/u"] for s in (before, after))
    assert not np.allclose(u0, u1)
    np.testing.assert_allclose(np.linalg.norm(u1), 1.0, rtol=1e-5)
    sigma = float(after[f"SpectralNorm_{i}"][f"Conv_{i}/kernel/sigma"])
    assert 0.0 < sigma <= np.linalg.norm(new.discriminator.params[f"Conv_{i}"]["kernel"])
  assert all(np.isfinite(float(v)) for v in metrics.values())


# -------------------------------------------------------------------------- critic norms


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_critic_norm_switch_builds_and_steps(norm):
  state, new, metrics = _stepped(norm)
  d = new.discriminator
  assert d.batch_stats == {} and not state.hparams.d_batch_norm
  layers = {k for k in d.params if not k.startswith("Conv_")}
  assert layers == ({"LayerNorm_0", "LayerNorm_1"} if norm == "layer" else set())
  if norm == "layer":
    assert d.params["LayerNorm_1"]["scale"].shape == (2 * D_H,)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert not np.allclose(d.params["Conv_2"]["kernel"],
                         state.discriminator.params["Conv_2"]["kernel"])
  with pytest.raises(ValueError, match="unknown discriminator norm 'group'"):
    _draw_state(_config(d_norm="group"))


# ---------------------------------------------------------------------------- shipped configs


def _dcgan_counts(z_in: int, h: int, c_in: int, d_h: int) -> tuple[int, int]:
  """Parameter counts of the DCGAN generator and (batch-norm) discriminator."""
  conv = lambda k, i, o: k * k * i * o + o
  bn = lambda n: 2 * n
  g = (conv(3, z_in, 4 * h) + bn(4 * h) + conv(4, 4 * h, 2 * h) + bn(2 * h)
       + conv(3, 2 * h, h) + bn(h) + conv(4, h, 1))
  d = conv(4, c_in, d_h) + bn(d_h) + conv(4, d_h, 2 * d_h) + bn(2 * d_h) + conv(4, 2 * d_h, 1)
  return g, d


SHIPPED = {
    "gan_mnist": ((1_505_680, 566_273), {"arch": "mlp", "loss": "bce"}, 40),
    "dcgan_mnist": (_dcgan_counts(64, 64, 1, 16), {"arch": "dcgan", "loss": "bce"}, 40),
    "dcgan_fashion_mnist": (_dcgan_counts(64, 64, 1, 16), {"arch": "dcgan"}, 40),
    "wgan_gp_mnist": (_dcgan_counts(64, 64, 1, 64),
                      {"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5,
                       "d_hidden_dim": 64, "d_norm": "batch"}, 20),
    "cgan_mnist": (_dcgan_counts(74, 64, 11, 64),
                   {"num_classes": 10, "fresh_generator_noise": False, "d_hidden_dim": 64}, 40),
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_config_loads_and_builds(name):
  (g_count, d_count), model, smoke_steps = SHIPPED[name]
  path = str(CONFIGS / f"{name}.py")
  full, smoke = gconfig.load(path), gconfig.load(path + ":smoke")
  assert full.family == "gan" and full.train.num_steps == -1
  assert smoke.train.num_steps == smoke_steps and smoke.model == full.model
  assert full.data.name == ("fashion_mnist" if "fashion" in name else "mnist")
  for k, v in model.items():
    assert full.model[k] == v, k
  # Shapes only: tracing the initialisation builds every layer without computing it.
  state = jax.eval_shape(lambda k: gan.create_state(k, full), INIT_KEY)
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  assert (count(state.generator.params), count(state.discriminator.params)) == (g_count, d_count)
  g, d = state.generator.params, state.discriminator.params
  if full.model.arch == "dcgan":
    in_z, in_c = g["ConvTranspose_0"]["kernel"].shape[2], d["Conv_0"]["kernel"].shape[2]
    assert (in_z, in_c) == ((74, 11) if name == "cgan_mnist" else (64, 1))
    assert d["Conv_0"]["kernel"].shape[3] == full.model.d_hidden_dim
    assert state.hparams.d_batch_norm
  assert state.hparams == gan._hparams(full.model)
  assert (state.generator_ema is None) == (full.model.ema_decay == 0)


