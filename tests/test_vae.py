"""Tests of the VAE family: densities against numpy, KL against Monte Carlo, ELBO vs IWAE,
one train step against an independent computation, configs, the loop, and 1 vs 8 devices."""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax import config as gconfig
from genjax.families import vae

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "experiments" / "configs"
VAE_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.py")
                     if p.name.startswith(("vae_", "iwae_")))


def tiny_config(layers: int = 1, **model) -> ml_collections.ConfigDict:
  """A small VAE on 4x4 images: z (3,) or (3, 2), hidden widths 5."""
  m = vae.model_config(z_dims=(3,) if layers == 1 else (3, 2),
                       hidden=((5,),) if layers == 1 else ((5,), (4,)), eval_k=8)
  for name, value in model.items():
    m[name] = value
  c = vae.experiment_config(model=m, optim=vae.optim_config(1e-2), preprocess="binarize_fixed",
                            batch_size=4, num_epochs=1)
  c.data.image_shape = (4, 4, 1)
  return c


def binary_batch(b: int = 4, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.integers(0, 2, (b, 4, 4, 1)), jnp.float32),
          "label": jnp.asarray(rng.integers(0, 10, b), jnp.int32)}


# ------------------------------------------------------------------------ numpy reference


def _np_mlp(p: dict, h: np.ndarray, n_hidden: int) -> np.ndarray:
  for i in range(n_hidden):
    h = np.tanh(h @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"])
  return h


def _np_gauss(p: dict, h: np.ndarray, n_hidden: int):
  h = _np_mlp(p, h, n_hidden)
  return (h @ p["mean"]["kernel"] + p["mean"]["bias"],
          h @ p["log_std"]["kernel"] + p["log_std"]["bias"])


def _np_log_normal(v, mean, log_std):
  return np.sum(-0.5 * ((v - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi),
                -1)


def np_log_weights(params, x_BxD: np.ndarray, eps: list[np.ndarray]) -> np.ndarray:
  """log p(x, z) - log q(z | x) of a 1- or 2-layer tanh VAE, written out in float64."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  b, k = eps[0].shape[:2]
  x = np.repeat(x_BxD[:, None], k, 1)
  m1, s1 = _np_gauss(p["encoders_0"], x, 1)
  z1 = m1 + np.exp(s1) * eps[0]
  log_q = _np_log_normal(z1, m1, s1)
  if len(eps) == 2:
    m2, s2 = _np_gauss(p["encoders_1"], z1, 1)
    z2 = m2 + np.exp(s2) * eps[1]
    log_q += _np_log_normal(z2, m2, s2)
    pm, ps = _np_gauss(p["decoders_1"], z2, 1)
    log_p = _np_log_normal(z2, 0.0, 0.0) + _np_log_normal(z1, pm, ps)
  else:
    log_p = _np_log_normal(z1, 0.0, 0.0)
  h = _np_mlp(p["decoders_0"], z1, 1)
  logits = h @ p["decoders_0"]["Dense_1"]["kernel"] + p["decoders_0"]["Dense_1"]["bias"]
  log_px = np.sum(x * logits - np.logaddexp(0.0, logits), -1)
  return log_px + log_p - log_q


@pytest.mark.parametrize("layers", [1, 2])
def test_log_weights_match_numpy(layers):
  state = vae.create_state(jax.random.key(0), tiny_config(layers))
  batch = binary_batch()
  eps = vae.draw_noise(jax.random.key(1), 4, 6, state.hparams.z_dims)
  terms = vae.log_weights(state.model.module, state.model.params, batch["image"], None, eps)
  want = np_log_weights(state.model.params, np.asarray(batch["image"]).reshape(4, -1),
                        [np.asarray(e, np.float64) for e in eps])
  np.testing.assert_allclose(terms["log_px"] - terms["kl_mc"], want, rtol=1e-5, atol=1e-4)


def test_analytic_kl_matches_monte_carlo():
  mean = jnp.array([[0.5, -1.0, 0.0]])
  log_std = jnp.array([[-0.3, 0.4, -1.2]])
  eps = jax.random.normal(jax.random.key(0), (200_000, 3))
  z = mean + jnp.exp(log_std) * eps
  log_q = vae.gaussian_log_prob(z, mean, log_std)
  log_p = vae.gaussian_log_prob(z, jnp.zeros(3), jnp.zeros(3))
  mc = np.asarray(log_q - log_p, np.float64)
  closed = float(vae.gaussian_kl(mean, log_std)[0])
  # Written out: 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2).
  by_hand = 0.5 * sum(m**2 + math.exp(2 * s) - 1 - 2 * s for m, s in
                      zip([0.5, -1.0, 0.0], [-0.3, 0.4, -1.2], strict=True))
  assert closed == pytest.approx(by_hand, rel=1e-6)
  assert abs(mc.mean() - closed) < 4 * mc.std() / math.sqrt(len(mc))


@pytest.mark.parametrize("layers", [1, 2])
def test_elbo_equals_iwae_at_k1_and_analytic_kl_is_unbiased(layers):
  state = vae.create_state(jax.random.key(0), tiny_config(layers))
  x = binary_batch()["image"]
  m = state.model
  one = vae.log_weights(m.module, m.params, x, None,
                        vae.draw_noise(jax.random.key(2), 4, 1, state.hparams.z_dims))
  np.testing.assert_allclose(vae.elbo(one, analytic_kl=False), vae.iwae(one), rtol=1e-6)
  many = vae.log_weights(m.module, m.params, x, None,
                         vae.draw_noise(jax.random.key(3), 4, 20_000, state.hparams.z_dims))
  diff = np.asarray(many["kl_mc"] - many["kl"], np.float64)  # zero-mean per example
  se = diff.std(1) / math.sqrt(diff.shape[1])
  assert np.all(np.abs(diff.mean(1)) < 4 * se + 1e-6)
  # The IWAE bound rises with k (and stays below log p(x) = the k -> inf limit).
  lw = np.asarray(many["log_px"] - many["kl_mc"]).reshape(4, 2000, 10)
  bounds = [np.asarray(jax.nn.logsumexp(lw[..., :k], -1) - math.log(k)).mean()
            for k in (1, 2, 5, 10)]
  assert np.all(np.diff(bounds) > 0), bounds


def test_gaussian_decoder_log_prob():
  x = jnp.array([[0.2, 0.9]])
  mean = jnp.array([[[0.25, 0.5]]])
  log_std = jnp.log(jnp.array([0.1, 0.3]))
  got = vae.observation_log_prob(x, (mean, log_std), "gaussian")
  want = sum(-0.5 * ((a - b) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
             for a, b, s in zip([0.2, 0.9], [0.25, 0.5], [0.1, 0.3], strict=True))
  assert float(got[0, 0]) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("objective, k, beta", [
    pytest.param("elbo", 1, 1.0, marks=pytest.mark.slow),
    pytest.param("elbo", 3, 4.0, marks=pytest.mark.slow), ("iwae", 5, 1.0)])
def test_one_train_step_is_one_adam_step_on_the_objective(objective, k, beta):
  """The step's loss and update against value_and_grad of the objective written out here."""
  config = tiny_config(2, objective=objective, k=k, beta=beta)
  state = vae.create_state(jax.random.key(0), config)
  batch, key = binary_batch(), jax.random.key(7)
  new, metrics = jax.jit(vae.train_step)(state, batch, key)
  eps = vae.draw_noise(jax.random.fold_in(key, 0), 4, k, (3, 2))
  m = state.model

  def objective_fn(params):
    t = vae.log_weights(m.module, params, batch["image"], None, eps)
    if objective == "iwae":
      lw = t["log_px"] - t["kl_mc"]
      return jnp.mean(jax.nn.logsumexp(lw, -1) - math.log(k))
    return jnp.mean(t["log_px"] - beta * t["kl"])

  value, grads = jax.value_and_grad(objective_fn)(m.params)
  assert float(metrics["loss"]) == pytest.approx(-float(value), rel=1e-5)
  # Adam's first step: -lr * g / (|g| + eps) (bias corrections cancel), here g = -d objective.
  want = jax.tree.map(lambda p, g: p - 1e-2 * -g / (jnp.abs(g) + 1e-4), m.params, grads)
  for a, b in zip(jax.tree.leaves(new.model.params), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert int(new.step) == 1


def test_golden_metrics_of_one_step():
  """The first step of Burda et al.'s one-layer VAE on a fixed batch, pinned (float32, CPU)."""
  config = vae.experiment_config(**vae.burda_settings(1, "elbo", 1))
  state = vae.create_state(jax.random.key(0), config)
  x = (jax.random.uniform(jax.random.key(1), (20, 28, 28, 1)) > 0.7).astype(jnp.float32)
  _, metrics = jax.jit(vae.train_step)(state, {"image": x, "label": jnp.zeros(20, jnp.int32)},
                                       jax.random.key(2))
  got = {k: float(v) for k, v in metrics.items()}
  # Sanity of the pins: an untrained decoder is near 784 * log 2 = 543 nats.
  assert 400 < got["recon"] < 700
  np.testing.assert_allclose([got["loss"], got["recon"], got["kl"]], GOLDEN, rtol=2e-4)


GOLDEN = [580.5037231445312, 569.2671508789062, 11.236504554748535]


def test_train_step_compiles_once_and_draws_from_the_step():
  state = vae.create_state(jax.random.key(0), tiny_config(1, k=2))
  step = jax.jit(lambda s, b, k: vae.train_step(s, b, k))  # its own compilation cache
  batch, key = binary_batch(), jax.random.key(3)
  s1, m1 = step(state, batch, key)
  s2, m2 = step(s1, batch, key)
  assert step._cache_size() == 1
  # Same state and key: the same step; the next step draws other noise.
  _, m1_again = step(state, batch, key)
  assert float(m1["loss"]) == float(m1_again["loss"])
  eps0 = vae.draw_noise(jax.random.fold_in(key, 0), 4, 2, (3,))[0]
  eps1 = vae.draw_noise(jax.random.fold_in(key, 1), 4, 2, (3,))[0]
  assert not np.allclose(eps0, eps1)
  assert int(s2.step) == 2


def test_conditional_vae_uses_the_class():
  state = vae.create_state(jax.random.key(0), tiny_config(1, num_classes=10))
  z = jnp.zeros((2, 3))
  a = vae.decode_mean(state, z, None, jnp.array([0, 0]))
  b = vae.decode_mean(state, z, None, jnp.array([0, 7]))
  np.testing.assert_allclose(a[0], b[0])
  assert not np.allclose(a[1], b[1])
  batch = binary_batch()
  metrics = jax.jit(vae.eval_step)(state, batch, jax.random.key(1))
  other = jax.jit(vae.eval_step)(state, {**batch, "label": (batch["label"] + 1) % 10},
                                 jax.random.key(1))
  assert float(metrics["elbo"]) != float(other["elbo"])
  np.testing.assert_array_equal(vae.sample_labels(20, 10), np.repeat(np.arange(10), 2))


def test_eval_step_bounds_are_ordered():
  state = vae.create_state(jax.random.key(0), tiny_config(2, objective="iwae", k=4))
  metrics = jax.device_get(jax.jit(vae.eval_step)(state, binary_batch(), jax.random.key(1)))
  assert metrics["iwae"] >= metrics["elbo"]  # 8-sample bound above the mean log weight
  assert metrics["nll_iwae"] == -metrics["iwae"]


def test_sample_reconstruct_interpolate_shapes_and_ranges():
  for config in (tiny_config(2), tiny_config(1, likelihood="gaussian")):
    state = vae.create_state(jax.random.key(0), config)
    for x in (vae.sample(state, jax.random.key(1), 6),
              vae.reconstruct(state, binary_batch()["image"]),
              vae.interpolate(state, jax.random.key(2), 2, 3)):
      assert x.shape[1:] == (4, 4, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
  np.testing.assert_allclose(vae.interpolate_latents(jnp.zeros((1, 2)), jnp.ones((1, 2)), 3),
                             [[0, 0], [0.5, 0.5], [1, 1]])


def test_burda_schedule_and_architecture():
  c = vae.experiment_config(**vae.burda_settings(2, "iwae", 50))
  assert c.optim.stage_epochs == (1, 3, 9, 27, 81, 243, 729, 2187)
  assert c.train.num_epochs == 3280 and c.data.batch_size == 20 and c.optim.eps == 1e-4
  schedule = vae.burda_schedule(1e-3, [e * 3000 for e in c.optim.stage_epochs])
  for i, start in enumerate(np.cumsum((0, *c.optim.stage_epochs[:-1])) * 3000):
    assert float(schedule(int(start))) == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-5)
  params = vae.create_state(jax.random.key(0), c).model.params
  widths = {n: p["kernel"].shape for n, net in params.items() for p in [net["Dense_0"]]}
  assert widths == {"encoders_0": (784, 200), "encoders_1": (100, 100),
                    "decoders_1": (50, 100), "decoders_0": (100, 200)}


def test_bad_settings_raise():
  with pytest.raises(ValueError, match="objective"):
    vae.create_state(jax.random.key(0), tiny_config(1, objective="vi"))
  with pytest.raises(ValueError, match="beta"):
    vae.create_state(jax.random.key(0), tiny_config(1, objective="iwae", beta=2.0))


@pytest.mark.parametrize("name", VAE_CONFIGS)
def test_configs_load_with_a_smoke_variant(name):
  full = gconfig.load(str(CONFIGS / name))
  smoke = gconfig.load(f"{CONFIGS / name}:smoke")
  assert full.family == "vae" and smoke.train.num_steps > 0
  command = f"python experiments/train.py --config=experiments/configs/{name}"
  assert command in (CONFIGS / name).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", VAE_CONFIGS)
def test_config_models_build_and_sample(name):
  smoke = gconfig.load(f"{CONFIGS / name}:smoke")
  state = vae.create_state(jax.random.key(0), smoke)
  assert vae.sample(state, jax.random.key(1), 2).shape == (2, *smoke.data.image_shape)


def _smoke_run(run_train_cli, workdir, config):
  result = run_train_cli(workdir, config=CONFIGS / config)
  assert result.returncode == 0, result.stderr[-3000:]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  results = json.loads((workdir / "results.json").read_text())
  return records, results


@pytest.mark.slow
def test_smoke_config_through_the_loop(tmp_path, run_train_cli):
  records, results = _smoke_run(run_train_cli, tmp_path, "vae_burda1_cpu.py")
  assert [r["step"] for r in records] == [10, 20, 30, 40]
  assert records[-1]["loss"] < records[0]["loss"]
  # Smoke runs evaluate with k = 1: the IWAE bound is then an ELBO estimate (MC KL).
  assert abs(results["test"]["iwae"] - results["test"]["elbo"]) < 1.0
  assert list((tmp_path / "samples").glob("samples_*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("config", ["iwae_burda2.py", "vae_conv_mnist.py", "vae_cond_mnist.py",
                                    "vae_gauss_fashion_mnist.py"])
def test_more_smoke_configs_through_the_loop(tmp_path, run_train_cli, config):
  records, results = _smoke_run(run_train_cli, tmp_path, config)
  assert all(np.isfinite(r["loss"]) for r in records)
  assert np.isfinite(results["test"]["nll_iwae"])


