"""The HMM's blended objective against brute-force enumeration, finite differences and the closed
form, and the HMM tagger's joint_weight through the generic loop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, apply_overrides, load_config_module

from genjax import train
from genjax.data import splits
from genjax.structured import hmm as H
from genjax.structured import hmm_hybrid

K, V = 3, 4
LENGTHS = (4, 2, 3, 1)  # at most K^4 = 81 paths a sentence
EPS32 = float(np.finfo(np.float32).eps)


def config(arg: str, **overrides):
  c = load_config_module(REPO_ROOT / "experiments" / "configs" / "hmm_tagger.py").get_config(arg)
  apply_overrides(c, {"train.progress": False, **overrides})
  return c


def tiny_data(seed: int = 0, lengths=LENGTHS):
  """Random symbols and states of the given lengths, right-padded, as hmm_hybrid.Labelled."""
  rng = np.random.default_rng(seed)
  t = max(lengths)
  x = rng.integers(0, V, (len(lengths), t))
  z = rng.integers(0, K, (len(lengths), t))
  mask = np.arange(t)[None] < np.array(lengths)[:, None]
  return x, z, mask, hmm_hybrid.labelled(x, z, mask, K, V)


def random_logits(seed: int, dtype=jnp.float32) -> hmm_hybrid.Logits:
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  return hmm_hybrid.Logits(jax.random.normal(k1, (K,), dtype), jax.random.normal(k2, (K, K), dtype),
                           jax.random.normal(k3, (K, V), dtype))


def masked_log_softmax(eta, support):
  """float64 log-softmax of each row over its support (-inf elsewhere)."""
  eta = np.where(support, np.asarray(eta, np.float64), -np.inf)
  m = np.max(eta, axis=-1, keepdims=True)
  return eta - m - np.log(np.sum(np.exp(eta - m), axis=-1, keepdims=True))


def brute_force(logits, x, z, mask, trans_k, emit_k):
  """(sum log p(x, y), sum log p(x) by enumerating every state path, sum k log theta) in float64,
  with the structural zeros (cells of zero count and zero k) read off the data directly."""
  init_n, trans_n, emit_n = np.zeros(K), np.zeros((K, K)), np.zeros((K, V))
  for xs, zs, ms in zip(x, z, mask, strict=True):
    n = int(ms.sum())
    init_n[zs[0]] += 1
    for i in range(n):
      emit_n[zs[i], xs[i]] += 1
      if i:
        trans_n[zs[i - 1], zs[i]] += 1
  log_pi = masked_log_softmax(logits.init_K, init_n + trans_k > 0)
  log_A = masked_log_softmax(logits.trans_KxK, trans_n + trans_k > 0)
  log_B = masked_log_softmax(logits.emit_KxV, emit_n + emit_k > 0)

  def log_joint(xs, path):
    return (log_pi[path[0]] + sum(log_B[s, v] for s, v in zip(path, xs, strict=True))
            + sum(log_A[a, b] for a, b in itertools.pairwise(path)))

  joint = marginal = 0.0
  for xs, zs, ms in zip(x, z, mask, strict=True):
    n = int(ms.sum())
    joint += log_joint(xs[:n], zs[:n])
    every = np.array([log_joint(xs[:n], p) for p in itertools.product(range(K), repeat=n)])
    marginal += np.log(np.sum(np.exp(every[np.isfinite(every)])))
  finite = lambda a: np.sum(np.where(np.isfinite(a), a, 0.0))
  prior = trans_k * (finite(log_pi) + finite(log_A)) + emit_k * finite(log_B)
  return joint, marginal, prior, max(np.max(np.abs(a[np.isfinite(a)])) for a in (log_pi, log_A,
                                                                                 log_B))


@pytest.mark.parametrize("emit_k", [0.3, 0.0])  # 0: unseen symbols are structural zeros
def test_objective_matches_enumeration(emit_k):
  trans_k = 0.5
  x, z, mask, data = tiny_data()
  logits = random_logits(1)
  joint, marginal, prior, largest = brute_force(logits, x, z, mask, trans_k, emit_k)
  t = jax.jit(hmm_hybrid.terms, static_argnames=("trans_k", "emit_k"))(
      logits, data, trans_k=trans_k, emit_k=emit_k)
  n = data.num_tokens
  assert n == sum(LENGTHS)
  # float32: each of the n steps of the scaled recursion rounds a K-term product and its
  # normaliser, each log-parameter carries a few roundings of numbers up to `largest`.
  atol = 2 * EPS32 * n * (K + 2) * max(1.0, largest)
  np.testing.assert_allclose(t["joint"], joint, rtol=0, atol=atol)
  np.testing.assert_allclose(t["marginal"], marginal, rtol=0, atol=atol)
  np.testing.assert_allclose(t["prior"], prior, rtol=0, atol=atol * (K + V))
  # lambda = 0: log p(y | x) = log p(x, y) - log p(x), summed, plus the prior, per token.
  for lam in (0.0, 0.25, 1.0):
    value = hmm_hybrid.objective(logits, data, jnp.float32(lam), trans_k, emit_k)
    expected = -(lam * joint + (1 - lam) * (joint - marginal) + prior) / n
    np.testing.assert_allclose(value, expected, rtol=0, atol=3 * atol * (K + V) / n)


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    x, z, mask, data = tiny_data(seed=2)
    logits = random_logits(3, jnp.float64)
    # emit_k = 0: cells never seen are masked out, and must get exactly zero gradient.
    f = jax.jit(lambda lg: hmm_hybrid.objective(lg, data, 0.4, 0.5, 0.0))
    flat, unravel = jax.flatten_util.ravel_pytree(logits)
    g = np.asarray(jax.flatten_util.ravel_pytree(jax.grad(f)(logits))[0])
    assert g.dtype == np.float64
    step = 1e-6
    for i in range(flat.size):
      e = np.zeros(flat.size)
      e[i] = step
      fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / (2 * step)
      # Central differences: O(step^2) truncation, O(1e-16 |f| / step) rounding.
      np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)
    weights = jax.flatten_util.ravel_pytree(hmm_hybrid.prior_counts(data, 0.5, 0.0))[0]
    zeros = np.asarray(weights) == 0
    assert zeros.any() and np.all(g[zeros] == 0.0)


def test_joint_weight_one_reproduces_the_closed_form():
  trans_k, emit_k = 0.5, 0.0
  x, z, mask, data = tiny_data(seed=4, lengths=(7, 5, 9, 3, 6, 8, 4, 7))
  closed = H.fit_supervised(H.Categorical(jnp.zeros((K, V)), pseudo_count=emit_k), x,
                            np.where(mask, z, 0), mask, pseudo_count=trans_k)
  # From the uniform HMM, not from the closed form: L-BFGS has to find it.
  uniform = H.HMM(jnp.zeros(K), jnp.zeros((K, K)), H.Categorical(jnp.zeros((K, V))))
  tol = 1e-6
  fitted, info = hmm_hybrid.fit(uniform, data, 1.0, trans_k, emit_k, tol=tol)
  assert int(info["num_iterations"]) > 1
  g = float(info["grad_norm"])
  assert g <= 10 * tol  # float32 may stop the line search a little above tol
  # Per row of weights w (counts + k, total W), the gradient of the per-token objective is
  # (W theta - w) / n: so |theta - w / W| <= n |g| / W exactly, plus float32's rounding of
  # the gradient and of theta (a few eps).
  weights = hmm_hybrid.prior_counts(data, trans_k, emit_k)
  n = data.num_tokens
  for got, want, w in [(fitted.log_pi_K, closed.log_pi_K, weights.init_K),
                       (fitted.log_A_KxK, closed.log_A_KxK, weights.trans_KxK),
                       (fitted.emission.log_B_KxV, closed.emission.log_B_KxV, weights.emit_KxV)]:
    got, want, w = np.exp(np.asarray(got)), np.exp(np.asarray(want)), np.asarray(w)
    bound = n * g / w.sum(-1, keepdims=True) + 16 * EPS32
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)
    np.testing.assert_array_equal(got == 0, w == 0)  # structural zeros stay exactly 0
  assert fitted.emission.pseudo_count == emit_k


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_joint_weight_outside_unit_interval_fails_before_compiling(bad, monkeypatch):
  def no_compile(*args, **kwargs):
    raise AssertionError("compiled before rejecting joint_weight")

  monkeypatch.setattr(hmm_hybrid, "_minimize", no_compile)
  _, _, _, data = tiny_data()
  hmm = H.HMM(jnp.zeros(K), jnp.zeros((K, K)), H.Categorical(jnp.zeros((K, V))))
  with pytest.raises(ValueError, match=r"model\.joint_weight must be in \[0, 1\]") as e:
    hmm_hybrid.fit(hmm, data, bad, 0.1, 0.0)
  assert "\n" not in str(e.value)
  # Through the family: create_state rejects it before the loop fits anything.
  from genjax.families import hmm_tagger
  c = config("chunk,smoke", **{"model.joint_weight": bad})
  split = splits.SentenceSplit("train", splits.load(c.data, "test").sentences[:20])
  with pytest.raises(ValueError, match=r"model\.joint_weight"):
    hmm_tagger.create_state(jax.random.key(0), c, split)


def test_smoke_config_at_half_fits_and_tags(tmp_path):
  c = config("chunk,smoke", **{"model.joint_weight": 0.5})
  c.data.validation_size = 200  # score on 200 training sentences, not the 2,012 test ones
  c.evals = {"chunking": {"split": "validation"}}
  results = train.train_and_evaluate(c, str(tmp_path))
  assert results["joint_weight"] == 0.5
  assert 50 < results["validation"]["f1"] < 100
  family, _, state = train.restore_for_eval(str(tmp_path))
  assert state.joint_weight == 0.5
  # The fitted HMM is a stationary point of the lambda = 0.5 objective on the 300 smoke
  # sentences; the counted HMM (lambda = 1's optimum) is not.
  tr = splits.load(c.data, "train")
  sentences = tr.sentences[:300]
  tagger = state.tagger
  obs = [[*o, "<END>"] for o in family.observations(state, sentences)]
  tags = [[*s.chunks, "<END>"] for s in sentences]
  data = hmm_hybrid.labelled(*tagger._encode(obs, tags), len(tagger.tags), len(tagger.words))
  weights = hmm_hybrid.prior_counts(data, c.model.trans_k, c.model.emit_k)
  grad = jax.jit(jax.grad(lambda lg: hmm_hybrid.objective(lg, data, 0.5, c.model.trans_k,
                                                          c.model.emit_k)))
  norm = lambda h: float(jnp.linalg.norm(
      jax.flatten_util.ravel_pytree(grad(hmm_hybrid.from_hmm(h, weights)))[0]))
  fitted_norm = norm(state.hmm)
  counted_norm = norm(tagger.fit_hmm(family.observations(state, sentences),
                                     [list(s.chunks) for s in sentences]))
  assert fitted_norm <= 10 * c.model.tol and counted_norm > 100 * c.model.tol
  va = splits.load(c.data, "validation")
  assert family.predict_split(state, va) == tagger.decode(family.observations(state, va.sentences),
                                                          hmm=state.hmm)
