"""Tests of genjax.controllable (closed forms, a loop reference, NumPy recounts) and its CLI."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, load_config_module

from genjax import controllable, train, writers
from genjax.checkpoint import Checkpointer
from genjax.families import gan

SCRIPT = REPO_ROOT / "experiments" / "controllable.py"
DCGAN_MNIST = REPO_ROOT / "experiments" / "configs" / "dcgan_mnist.py"
Z, D, F = 3, 5, 4  # latent, "image" and feature sizes of the analytic setups


def _linear_setup(seed: int = 0):
  """A linear generator x = z A and classifier logits = x W: the score is linear in z."""
  rs = np.random.RandomState(seed)
  a_ZxD, w_DxF = rs.normal(size=(Z, D)), rs.normal(size=(D, F))
  return (a_ZxD, w_DxF, lambda z: z @ jnp.asarray(a_ZxD, jnp.float32),
          lambda x: x @ jnp.asarray(w_DxF, jnp.float32))


def _nonlinear_setup(seed: int = 1):
  """A smooth tanh generator and classifier with random weights."""
  ks = jax.random.split(jax.random.key(seed), 4)
  a1, a2 = jax.random.normal(ks[0], (Z, 8)), jax.random.normal(ks[1], (8, D))
  w1, w2 = jax.random.normal(ks[2], (D, 8)), jax.random.normal(ks[3], (8, F))
  return (lambda z: jnp.tanh(z @ a1) @ a2 / 3.0), (lambda x: jnp.tanh(x @ w1) @ w2)


def _penalty_gradient(m_ZxF, z_BxZ, z0_BxZ, target, weight):
  """d/dz of -weight * ||((z - z0) M)_other||, per example, in float64 (0 at no change)."""
  other = np.arange(F) != target
  d_BxF = ((z_BxZ - z0_BxZ) @ m_ZxF) * other
  norm_B1 = np.linalg.norm(d_BxF, axis=-1, keepdims=True)
  return -weight * np.where(norm_B1 > 0, d_BxF / np.where(norm_B1 > 0, norm_B1, 1), 0) @ m_ZxF.T


def test_score_gradient_matches_closed_form():
  a, w, gen, clf = _linear_setup()
  m_ZxF = a @ w
  rs = np.random.RandomState(2)
  z0, z = rs.normal(size=(6, Z)), rs.normal(size=(6, Z))
  target, weight = 1, 0.7
  original = clf(gen(jnp.asarray(z0, jnp.float32)))

  def total(zz):
    return jnp.sum(controllable.feature_score(clf(gen(zz)), original, target, weight))

  got = jax.grad(total)(jnp.asarray(z, jnp.float32))
  expected = m_ZxF[:, target][None] + _penalty_gradient(m_ZxF, z, z0, target, weight)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  # And the score itself: target logit minus weight times the other logits' change norm.
  logits = (z @ m_ZxF)
  change = ((z - z0) @ m_ZxF) * (np.arange(F) != target)
  np.testing.assert_allclose(
      controllable.feature_score(clf(gen(jnp.asarray(z, jnp.float32))), original, target, weight),
      logits[:, target] - weight * np.linalg.norm(change, axis=-1), rtol=1e-4, atol=1e-5)


def test_no_change_has_zero_penalty_gradient():
  """At z0 the penalty's norm is at 0; its gradient there is 0, not NaN."""
  logits = jnp.asarray(np.random.RandomState(3).normal(size=(4, F)), jnp.float32)
  grad = jax.grad(lambda x: jnp.sum(controllable.feature_score(x, logits, 2, 5.0)))(logits)
  np.testing.assert_array_equal(grad, np.eye(F)[[2] * 4])


@pytest.mark.parametrize("weight", [0.0, 2.0])
def test_ascent_steps_follow_the_analytic_gradient(weight):
  a, w, gen, clf = _linear_setup()
  m_ZxF = a @ w
  z0 = np.random.RandomState(4).normal(size=(5, Z))
  target, step_size = 3, 0.05
  z_path, _ = controllable.ascend(gen, clf, jnp.asarray(z0, jnp.float32), target, steps=2,
                                  step_size=step_size, penalty_weight=weight)
  # Step 1: no logit has changed yet, so only the target logit's gradient M[:, t] moves z.
  z1 = z0 + step_size * m_ZxF[:, target][None]
  np.testing.assert_allclose(z_path[1], z1, rtol=1e-5, atol=1e-5)
  # Step 2: the penalty now pulls the other logits back toward z0's.
  z2 = z1 + step_size * (m_ZxF[:, target][None] + _penalty_gradient(m_ZxF, z1, z0, target, weight))
  # The penalty's direction d / |d|, d = logits(z1) - logits(z0) in float32: |d| = 0.17 from
  # logits of terms up to |z||A||W| ~ 19, so each ulp of 19 tilts it by ~1.4e-5, and z moves by
  # step * weight * |M| (~0.6) times that: allow ~10 such ulps.
  np.testing.assert_allclose(z_path[2], z2, rtol=1e-5, atol=1e-5 + 1e-4 * (weight > 0))
  np.testing.assert_allclose(z_path[0], z0, rtol=0, atol=1e-6)


def _path_logits(z_path, gen, clf):
  return np.asarray(jax.vmap(lambda z: clf(gen(z)))(z_path))  # (T + 1, B, F)


def test_target_logit_rises_monotonically_without_penalty():
  gen, clf = _nonlinear_setup()
  z0 = jax.random.normal(jax.random.key(5), (8, Z))
  target = 0
  z_path, diags = controllable.ascend(gen, clf, z0, target, steps=40, step_size=0.01)
  target_TxB = _path_logits(z_path, gen, clf)[:, :, target]
  assert np.all(np.diff(target_TxB, axis=0) >= -1e-5)
  assert np.all(target_TxB[-1] > target_TxB[0] + 1e-3)
  np.testing.assert_allclose(diags["target_logit"], target_TxB.mean(1), rtol=1e-5, atol=1e-5)


def test_penalty_keeps_the_other_logits_closer():
  gen, clf = _nonlinear_setup()
  z0 = jax.random.normal(jax.random.key(6), (16, Z))
  runs = {w: controllable.ascend(gen, clf, z0, 2, steps=60, step_size=0.02, penalty_weight=w)
          for w in (0.0, 10.0)}
  change = {}
  for w, (z_path, diags) in runs.items():
    logits = _path_logits(z_path, gen, clf)
    change[w] = np.abs(logits[-1] - logits[0])[:, np.arange(F) != 2].mean()
    np.testing.assert_allclose(diags["other_change"][-1], change[w], rtol=1e-4, atol=1e-6)
  assert change[10.0] < 0.5 * change[0.0], change


def test_scan_matches_a_python_loop():
  gen, clf = _nonlinear_setup()
  z0 = jax.random.normal(jax.random.key(7), (6, Z))
  target, steps, step_size, weight = 1, 12, 0.05, 0.8
  z_path, diags = jax.jit(
      lambda z: controllable.ascend(gen, clf, z, target, steps=steps, step_size=step_size,
                                    penalty_weight=weight))(z0)

  def total(z, original):
    logits = clf(gen(z))
    # The documented semantics: the original logits are the first step's own forward pass.
    original = jax.lax.stop_gradient(logits) if original is None else original
    return jnp.sum(controllable.feature_score(logits, original, target, weight)), original

  z, zs, ref, original = z0, [z0], [], None
  for _ in range(steps):
    grad, original = jax.grad(total, has_aux=True)(z, original)
    ref.append(controllable.diagnostics(clf(gen(z)), original, target, weight))
    z = z + step_size * grad
    zs.append(z)
  ref.append(controllable.diagnostics(clf(gen(z)), original, target, weight))
  np.testing.assert_allclose(z_path, np.stack(zs), rtol=1e-5, atol=1e-5)
  for k in ref[0]:
    np.testing.assert_allclose(diags[k], [r[k] for r in ref], rtol=1e-5, atol=1e-5, err_msg=k)


def test_first_step_ignores_the_penalty_under_jit():
  """No logit has changed at the first step, so a huge penalty must not move z there: in a
  compiled program too, where a separate forward pass of z0 could differ by rounding."""
  gen, clf = _nonlinear_setup()
  z0 = jax.random.normal(jax.random.key(11), (6, Z))
  run = jax.jit(lambda w: controllable.ascend(gen, clf, z0, 1, steps=1, step_size=0.1,
                                              penalty_weight=w))
  (z_free, d_free), (z_pen, d_pen) = run(0.0), run(1e4)
  np.testing.assert_allclose(z_pen, z_free, rtol=1e-6, atol=1e-6)
  assert d_pen["other_change"][0] == 0.0 and d_free["other_change"][0] == 0.0


def test_traced_target_and_step_size_give_the_static_result():
  gen, clf = _nonlinear_setup()
  z0 = jax.random.normal(jax.random.key(8), (4, Z))
  static = controllable.ascend(gen, clf, z0, 3, steps=5, step_size=0.1, penalty_weight=0.5)
  traced = jax.jit(lambda t, s, w: controllable.ascend(gen, clf, z0, t, steps=5, step_size=s,
                                                       penalty_weight=w))(3, 0.1, 0.5)
  for a, b in zip(jax.tree.leaves(static), jax.tree.leaves(traced), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("multi_label", [False, True])
def test_diagnostics_match_a_numpy_recount(multi_label):
  rs = np.random.RandomState(9)
  logits, original = rs.normal(size=(200, 6)) * 2, rs.normal(size=(200, 6)) * 2
  target, weight = 4, 0.3
  got = controllable.diagnostics(jnp.asarray(logits, jnp.float32),
                                 jnp.asarray(original, jnp.float32), target, weight, multi_label)
  other = np.arange(6) != target
  if multi_label:
    hit = 1 / (1 + np.exp(-logits[:, target])) > 0.5
    prob = 1 / (1 + np.exp(-logits[:, target]))
  else:
    hit = np.array([np.argmax(row) == target for row in logits])
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = (e / e.sum(1, keepdims=True))[:, target]
  change = logits - original
  expected = {
      "success": hit.mean(), "target_prob": prob.mean(),
      "target_logit": logits[:, target].mean(),
      "other_change": np.abs(change[:, other]).mean(),
      "score": (logits[:, target] - weight * np.linalg.norm(change[:, other], axis=1)).mean(),
  }
  assert 0.05 < expected["success"] < 0.95  # a recount that can tell a wrong rule apart
  for k, v in expected.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_log_probabilities_keep_softmax_success_and_probability():
  logits = jnp.asarray(np.random.RandomState(10).normal(size=(50, F)) * 3, jnp.float32)
  for fn in (controllable.success, controllable.target_probability):
    np.testing.assert_allclose(fn(jax.nn.log_softmax(logits), 1), fn(logits, 1), atol=1e-6)


# experiments/controllable.py end to end, on a tiny DCGAN saved here (no training, no data) ------


def _tiny_gan_run(workdir, num_classes: int = 0):
  """A DCGAN workdir (config.json, checkpoint 2) of widths 4 with random weights.

  The state is filled from NumPy on the shapes of `create_state`, which skips compiling its
  initialisers (seconds each on a shared CPU); the CLI's own restore still builds one.
  """
  config = load_config_module(DCGAN_MNIST).get_config("smoke")
  config.model.hidden_dim, config.model.d_hidden_dim = 4, 4
  config.model.num_classes = num_classes
  shapes = jax.eval_shape(lambda k: gan.create_state(k, config),
                          train.RunKeys.from_seed(config.seed).init)
  rs = np.random.RandomState(0)

  def fill(path, s):
    if not jnp.issubdtype(s.dtype, jnp.floating):
      return np.zeros(s.shape, s.dtype)
    if "var" in jax.tree_util.keystr(path):  # batch-norm variances stay positive
      return rs.uniform(0.5, 1.5, s.shape).astype(s.dtype)
    return (0.3 * rs.normal(size=s.shape)).astype(s.dtype)

  state = jax.tree_util.tree_map_with_path(fill, shapes)
  writers.write_json(str(workdir / "config.json"), config.to_dict())
  ckpt = Checkpointer(str(workdir / "checkpoints"), config.train.keep_checkpoints)
  ckpt.save(2, state)
  ckpt.close()
  return workdir


def _run_cli(workdir, subprocess_env, *flags):
  return subprocess.run([sys.executable, str(SCRIPT), f"--workdir={workdir}", *flags],
                        cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True,
                        timeout=300)


@pytest.mark.slow
def test_cli_writes_grids_and_diagnostics(tmp_path, subprocess_env):
  workdir = _tiny_gan_run(tmp_path / "gan")
  proc = _run_cli(workdir, subprocess_env, "--target=8", "--num=4", "--steps=3",
                  "--step_size=0.05", "--penalty_weight=0.5", "--path_rows=2", "--path_cols=3")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = workdir / "controllable"
  for name in ("before.png", "after.png", "path.png"):
    assert (out / name).stat().st_size > 0
  from PIL import Image
  assert Image.open(out / "path.png").size == (3 * 30 + 2, 2 * 30 + 2)  # 3 steps x 2 images
  assert Image.open(out / "before.png").size == (2 * 30 + 2, 2 * 30 + 2)
  results = json.loads((out / "controllable.json").read_text())
  keys = ("success_before", "success_after", "target_prob_before", "target_prob_after",
          "other_change_after", "per_step")
  for section in (results, results["no_penalty"]):
    for k in keys:
      assert k in section, k
    assert all(len(v) == 4 for v in section["per_step"].values())  # steps + 1
    assert 0.0 <= section["success_after"] <= 1.0
  assert results["target"] == 8 and results["target_name"] == "8"
  assert results["classifier"] == "domain:mnist"
  assert results["path_steps"] == [0, 2, 3]  # linspace(0, 3, 3) = 0, 1.5, 3, rounded
  assert results["per_step"]["other_change"][0] == 0.0


def test_cli_refuses_a_conditional_gan(tmp_path, subprocess_env):
  workdir = _tiny_gan_run(tmp_path / "cgan", num_classes=10)
  proc = _run_cli(workdir, subprocess_env, "--target=3", "--steps=1", "--num=2")
  assert proc.returncode != 0
  assert "conditional GAN" in proc.stderr
  assert not (workdir / "controllable").exists()
