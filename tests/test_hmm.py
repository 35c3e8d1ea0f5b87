"""HMM inference and learning against brute-force enumeration of every state path."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.structured import hmm as H

K, V, T = 3, 4, 5


def tiny_hmm(seed: int = 0) -> H.HMM:
  return H.HMM.random(jax.random.key(seed), H.Categorical.random(jax.random.key(seed + 1), K, V))


def enumerate_paths(log_pi, log_A, log_B_TxK, states=None):
  """log p(x, z) for every path z of len(log_B) steps (clamped paths excluded): (paths, logp)."""
  t = log_B_TxK.shape[0]
  paths = np.array(list(itertools.product(range(K), repeat=t)))
  logp = (log_pi[paths[:, 0]] + log_B_TxK[0, paths[:, 0]]
          + sum(log_A[paths[:, i - 1], paths[:, i]] + log_B_TxK[i, paths[:, i]]
                for i in range(1, t)))
  if states is not None:
    ok = np.all((states[:t] < 0) | (paths == states[:t]), axis=1)
    paths, logp = paths[ok], logp[ok]
  return paths, logp


def logsumexp(a):
  m = np.max(a)
  return m + np.log(np.sum(np.exp(a - m)))


@pytest.fixture(scope="module")
def batch():
  hmm = tiny_hmm()
  x = jax.random.randint(jax.random.key(7), (3, T), 0, V)
  lengths = np.array([T, 3, 1])
  mask = jnp.arange(T)[None] < lengths[:, None]
  return hmm, x, mask, lengths


def brute(hmm, x, lengths, states=None):
  """Per sequence: (log p(x), marginals TxK, best path, best logp, summed pair marginals)."""
  log_pi, log_A = np.asarray(hmm.log_pi_K, np.float64), np.asarray(hmm.log_A_KxK, np.float64)
  log_B = np.asarray(hmm.emission.log_B_KxV, np.float64)
  out = []
  for b, n in enumerate(lengths):
    lb = log_B[:, np.asarray(x[b, :n])].T
    s = None if states is None else np.asarray(states[b])
    paths, logp = enumerate_paths(log_pi, log_A, lb, s)
    ll = logsumexp(logp)
    w = np.exp(logp - ll)
    gamma = np.zeros((T, K))
    xi = np.zeros((K, K))
    for path, wi in zip(paths, w, strict=True):
      gamma[np.arange(n), path] += wi
      for i in range(1, n):
        xi[path[i - 1], path[i]] += wi
    best = np.argmax(logp)
    out.append((ll, gamma, paths[best], logp[best], xi))
  return out


# The associative scan is checked against the scans below; here the scaled and log-space scans
# against enumeration (the associative scan too under -m slow).
@pytest.mark.parametrize("method", ["scaled", "log", pytest.param("parallel",
                                                                  marks=pytest.mark.slow)])
def test_likelihood_marginals_pairs_match_enumeration(batch, method):
  hmm, x, mask, lengths = batch
  ll = H.log_likelihood(hmm, x, mask, method=method)
  ll2, gamma = H.posterior_marginals(hmm, x, mask, method=method)
  stats = H.expected_stats(hmm, x, mask, chunk_size=2, method=method)
  expected = brute(hmm, x, lengths)
  np.testing.assert_allclose(ll, [e[0] for e in expected], rtol=1e-5)
  np.testing.assert_allclose(ll2, ll, rtol=1e-6)
  np.testing.assert_allclose(gamma, np.stack([e[1] for e in expected]), atol=1e-5)
  np.testing.assert_allclose(stats.trans_KxK, sum(e[4] for e in expected), atol=1e-5)
  np.testing.assert_allclose(stats.init_K, sum(e[1][0] for e in expected), atol=1e-5)
  counts = np.zeros((K, V))
  for b, n in enumerate(lengths):
    for t in range(n):
      counts[:, int(x[b, t])] += expected[b][1][t]
  np.testing.assert_allclose(stats.emission, counts, atol=1e-5)
  assert int(stats.num_tokens) == lengths.sum()


def test_viterbi_matches_enumeration(batch):
  hmm, x, mask, lengths = batch
  z, logp = H.viterbi(hmm, x, mask)
  for b, (_, _, path, best, _) in enumerate(brute(hmm, x, lengths)):
    np.testing.assert_array_equal(np.asarray(z[b, :lengths[b]]), path)
    np.testing.assert_allclose(logp[b], best, rtol=1e-5)


def test_clamped_states_match_enumeration(batch):
  hmm, x, mask, lengths = batch
  states = jnp.array([[-1, 2, -1, -1, 0], [1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]])
  ll, gamma = H.posterior_marginals(hmm, x, mask, states=states)
  z, _ = H.viterbi(hmm, x, mask, states=states)
  for b, (e_ll, e_gamma, path, _, _) in enumerate(brute(hmm, x, lengths, states)):
    np.testing.assert_allclose(ll[b], e_ll, rtol=1e-5)
    np.testing.assert_allclose(gamma[b], e_gamma, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(z[b, :lengths[b]]), path)
  assert float(gamma[0, 1, 2]) == pytest.approx(1.0)


EPS32 = float(np.finfo(np.float32).eps)


def test_scaled_log_and_associative_scans_agree_on_long_sequences():
  k, t = 4, 64
  emission = H.DiagGaussian.from_data(jax.random.key(3), k, jax.random.normal(jax.random.key(4),
                                                                              (50, 2)))
  hmm = H.HMM.random(jax.random.key(5), emission)
  x = jax.random.normal(jax.random.key(6), (6, t, 2)) * 2
  mask = jnp.arange(t)[None] < jnp.array([64, 50, 7, 1, 0, 33])[:, None]
  out = {m: H.posterior_marginals(hmm, x, mask, method=m) for m in H.METHODS}
  ll_s, g_s = out["scaled"]
  # Marginals exp(alpha + beta - ll) of log-space recursions whose values reach |ll| ~ 300:
  # each of the t steps rounds at that scale, so allow t ulps of |ll| (1e-4 was 3). The scaled
  # recursion's values are O(1): its own error is t ulps of 1, within that.
  tol = t * EPS32 * np.maximum(np.abs(np.asarray(ll_s)), 1.0)
  for method in ("log", "parallel"):
    ll, g = out[method]
    np.testing.assert_allclose(ll_s, ll, rtol=t * EPS32)
    err = np.abs(np.asarray(g_s) - np.asarray(g))
    assert np.all(err <= tol[:, None, None]), (method, np.max(err / tol[:, None, None]))
  np.testing.assert_allclose(H.log_likelihood(hmm, x, mask), ll_s, rtol=1e-6)
  assert float(ll_s[4]) == 0.0  # an empty sequence
  np.testing.assert_allclose(jnp.sum(g_s, -1), mask, atol=1e-5)


def test_scaled_and_log_space_agree_on_a_random_categorical_hmm_with_clamps():
  k, v, t = 6, 30, 40
  rng = np.random.default_rng(11)
  hmm = np_hmm(rng.dirichlet(np.full(k, 0.5)), rng.dirichlet(np.full(k, 0.5), k),
               rng.dirichlet(np.full(v, 0.3), k))
  x = jax.random.randint(jax.random.key(13), (5, t), 0, v)
  mask = jnp.arange(t)[None] < jnp.array([40, 39, 17, 2, 1])[:, None]
  states = jnp.where(jax.random.uniform(jax.random.key(14), (5, t)) < 0.2,
                     jax.random.randint(jax.random.key(15), (5, t), 0, k), -1)
  ll_s, g_s = H.posterior_marginals(hmm, x, mask, states=states)
  ll_l, g_l = H.posterior_marginals(hmm, x, mask, states=states, method="log")
  assert np.all(np.isfinite(np.asarray(ll_s)))
  np.testing.assert_allclose(ll_s, ll_l, rtol=t * EPS32)
  tol = t * EPS32 * np.maximum(np.abs(np.asarray(ll_l)), 1.0)
  assert np.all(np.abs(np.asarray(g_s) - np.asarray(g_l)) <= tol[:, None, None])


def test_scaled_impossible_observation_is_minus_inf_not_nan():
  hmm = tiny_hmm()
  log_B = hmm.emission.log_B_KxV.at[:, 2].set(-jnp.inf)  # symbol 2: never emitted
  hmm = hmm.replace(emission=hmm.emission.replace(log_B_KxV=log_B))
  x = jnp.array([[0, 2, 1, 1], [0, 1, 1, 3]])
  ll, gamma = H.posterior_marginals(hmm, x)
  assert float(ll[0]) == -np.inf and np.isfinite(float(ll[1]))
  assert not np.any(np.isnan(np.asarray(gamma)))


@pytest.mark.parametrize("emission_kind", ["diag", "full", "mixture"])
def test_continuous_emissions_match_enumeration(emission_kind):
  data = jax.random.normal(jax.random.key(0), (40, 2))
  if emission_kind == "diag":
    em = H.DiagGaussian.from_data(jax.random.key(1), K, data)
  elif emission_kind == "full":
    em = H.FullGaussian.from_data(jax.random.key(1), K, data)
    em = em.replace(cov_KxDxD=em.cov_KxDxD + jnp.array([[0, 0.3], [0.3, 0.0]]))
  else:
    em = H.GaussianMixture.from_data(jax.random.key(1), K, 2, data)
  hmm = H.HMM.random(jax.random.key(2), em)
  x = jax.random.normal(jax.random.key(3), (1, 4, 2))
  log_B = H.log_emissions(hmm, x)[0]
  # Each state's density against scipy.
  from scipy import stats as st
  for k in range(K):
    for t in range(4):
      xt = np.asarray(x[0, t], np.float64)
      if emission_kind == "diag":
        ref = st.multivariate_normal(em.mean_KxD[k], np.diag(em.var_KxD[k])).logpdf(xt)
      elif emission_kind == "full":
        ref = st.multivariate_normal(em.mean_KxD[k], em.cov_KxDxD[k]).logpdf(xt)
      else:
        ref = logsumexp(np.array([
            em.log_w_KxM[k, m] + st.multivariate_normal(em.mean_KxMxD[k, m],
                                                        np.diag(em.var_KxMxD[k, m])).logpdf(xt)
            for m in range(2)]))
      assert float(log_B[t, k]) == pytest.approx(ref, rel=1e-4, abs=1e-4)
  _, logp = enumerate_paths(np.asarray(hmm.log_pi_K), np.asarray(hmm.log_A_KxK),
                            np.asarray(log_B, np.float64))
  assert float(H.log_likelihood(hmm, x)[0]) == pytest.approx(logsumexp(logp), rel=1e-5)


def test_sampling_frequencies_match_path_probabilities():
  hmm = H.HMM.random(jax.random.key(0), H.Categorical.random(jax.random.key(1), 2, 2), 2.0)
  z, x = H.sample(jax.random.key(2), hmm, 20000, 3)
  # Joint (z, x) of three steps: 64 outcomes, each probability by enumeration.
  code = np.asarray(z) @ np.array([1, 2, 4]) * 8 + np.asarray(x) @ np.array([1, 2, 4])
  freq = np.bincount(code, minlength=64) / code.size
  pi, A = np.exp(hmm.log_pi_K), np.exp(hmm.log_A_KxK)
  B = np.exp(hmm.emission.log_B_KxV)
  prob = np.zeros(64)
  for zs in itertools.product(range(2), repeat=3):
    for xs in itertools.product(range(2), repeat=3):
      p = pi[zs[0]] * A[zs[0], zs[1]] * A[zs[1], zs[2]] * np.prod(B[zs, xs])
      prob[(zs[0] + 2 * zs[1] + 4 * zs[2]) * 8 + xs[0] + 2 * xs[1] + 4 * xs[2]] = p
  # Three standard errors of each frequency.
  np.testing.assert_array_less(np.abs(freq - prob), 3 * np.sqrt(prob * (1 - prob) / code.size)
                               + 1e-3)


def casino_hmm() -> H.HMM:
  """The occasionally dishonest casino (Durbin et al. 1998): fair and loaded dice."""
  A = jnp.array([[0.95, 0.05], [0.10, 0.90]])
  B = jnp.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
  return H.HMM(jnp.log(jnp.array([0.5, 0.5])), jnp.log(A), H.Categorical(jnp.log(B)))


def test_em_monotone_and_recovers_casino():
  true = casino_hmm()
  z, x = H.sample(jax.random.key(0), true, 20, 500)
  mask = jnp.ones(x.shape, bool)
  start = H.HMM.random(jax.random.key(3), H.Categorical.random(jax.random.key(4), 2, 6))
  fitted, history = H.fit_em(start, H.pack_batches([(x, mask)]), 200)
  # Non-decreasing up to float32 summation noise; the true parameters' likelihood is reached.
  assert np.all(np.diff(history) > -1e-5 * abs(history[0]))
  assert history[-1] > float(jnp.sum(H.log_likelihood(true, x, mask)))
  # Label the loaded state by its probability of a six.
  B = np.exp(np.asarray(fitted.emission.log_B_KxV))
  order = [0, 1] if B[1, 5] > B[0, 5] else [1, 0]
  A = np.exp(np.asarray(fitted.log_A_KxK))[np.ix_(order, order)]
  np.testing.assert_allclose(B[order], np.exp(true.emission.log_B_KxV), atol=0.03)
  np.testing.assert_allclose(A, np.exp(true.log_A_KxK), atol=0.03)
  # Decoding with the fitted model finds the loaded stretches as well as the true model does.
  zhat, _ = H.viterbi(fitted, x, mask)
  ztrue, _ = H.viterbi(true, x, mask)
  acc = np.mean(np.asarray(order)[np.asarray(zhat)] == np.asarray(z))
  assert acc > np.mean(np.asarray(ztrue) == np.asarray(z)) - 0.02 > 0.7


@pytest.mark.slow
def test_em_step_on_length_buckets_equals_one_batch():
  hmm = tiny_hmm(3)
  x = jax.random.randint(jax.random.key(0), (5, 6), 0, V)
  lengths = jnp.array([6, 2, 4, 6, 1])
  mask = jnp.arange(6)[None] < lengths[:, None]
  one, s1 = H.em_step(hmm, [(x, mask)], chunk_size=2)
  short, long_ = np.asarray(lengths) <= 2, np.asarray(lengths) > 2
  two, s2 = H.em_step(hmm, [(x[short, :2], mask[short, :2]), (x[long_], mask[long_])],
                      chunk_size=4)
  np.testing.assert_allclose(s1.log_likelihood, s2.log_likelihood, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-5)


def sample_np(rng, pi, A, B, num: int, length: int) -> np.ndarray:
  """x_NxT from an HMM's probabilities, in numpy (nothing to compile)."""
  x = np.zeros((num, length), np.int32)
  for i in range(num):
    z = rng.choice(len(pi), p=pi)
    for t in range(length):
      x[i, t] = rng.choice(B.shape[1], p=B[z])
      z = rng.choice(len(pi), p=A[z])
  return x


def np_hmm(pi, A, B) -> H.HMM:
  """An HMM of numpy probabilities (jax's Dirichlet sampler takes seconds to compile)."""
  return H.HMM(*(jnp.log(jnp.asarray(p, jnp.float32)) for p in (pi, A)),
               H.Categorical(jnp.log(jnp.asarray(B, jnp.float32))))


def random_lengths_data(seed: int, num: int, k: int, v: int, max_len: int):
  """A random HMM and `num` padded sequences of random lengths (some empty) drawn from it, with
  a tenth of their states observed: (hmm, x, mask, states)."""
  rng = np.random.default_rng(seed)
  p = [rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), k), rng.dirichlet(np.ones(v), k)]
  hmm = np_hmm(*p)
  x = sample_np(rng, *p, num, max_len)
  lengths = rng.integers(0, max_len + 1, num)
  mask = np.arange(max_len)[None] < lengths[:, None]
  states = np.where((rng.random((num, max_len)) < 0.1) & mask,
                    rng.integers(0, k, (num, max_len)), -1)
  return hmm, x, mask, states


def test_pack_places_every_token_once():
  _, x, mask, states = random_lengths_data(0, 30, 3, 5, 20)
  seqs = [x[i, :n] for i, n in enumerate(mask.sum(1))]
  packed = H.pack(seqs, [states[i, :n] for i, n in enumerate(mask.sum(1))], row_length=24,
                  chunk_tokens=100)
  c, r, t = packed.mask.shape
  assert t == 24 and c > 1 and packed.x.shape == packed.mask.shape == packed.states.shape
  assert packed.num_tokens == int(mask.sum())
  assert packed.num_sequences == int((mask.sum(1) > 0).sum())
  # Each row read from its sequence starts: the sequences, whole and in order within the row.
  found = []
  for row_x, row_m, row_s, row_z in zip(*(np.asarray(a).reshape(c * r, t) for a in (
      packed.x, packed.mask, packed.start, packed.states)), strict=True):
    assert not row_m.any() or row_s[0]  # a row begins with a sequence
    assert np.all(np.diff(row_m.astype(int)) <= 0)  # tokens first, padding after
    bounds = [*np.flatnonzero(row_s), int(row_m.sum())]
    found += [(tuple(row_x[a:b]), tuple(row_z[a:b]))
              for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
  expected = [(tuple(x[i, :n]), tuple(states[i, :n])) for i, n in enumerate(mask.sum(1)) if n]
  assert sorted(found) == sorted(expected)
  with pytest.raises(ValueError, match="does not fit"):
    H.pack(seqs, row_length=4)


def test_packed_chunks_give_the_stats_of_one_batch():
  hmm, x, mask, states = random_lengths_data(3, 40, 4, 7, 30)
  # Every sequence in one padded chunk; then packed several to a row, in several chunks, the
  # recursion restarting at each sequence (scaled against log space: the tests above).
  new_one, one = H.em_step(hmm, [(x, mask, states)], 0.1, chunk_size=64)
  many = H.pack([x[i, :n] for i, n in enumerate(mask.sum(1))],
                [states[i, :n] for i, n in enumerate(mask.sum(1))], row_length=32,
                chunk_tokens=128)
  rows_used = int(np.asarray(many.mask).any(-1).sum())
  assert many.mask.shape[0] > 2 and many.num_sequences > rows_used
  new_packed, packed = H.em_step(hmm, many, 0.1)
  n = float(mask.sum())
  for a, b in zip(jax.tree.leaves(packed), jax.tree.leaves(one), strict=True):
    # Sums of up to n posteriors, each right to a few float32 ulps.
    np.testing.assert_allclose(a, b, rtol=30 * EPS32, atol=30 * EPS32 * n)
  for a, b in zip(jax.tree.leaves(new_packed), jax.tree.leaves(new_one), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="scaled"):
    H.em_step(hmm, many, method="log")


def test_em_trajectory_matches_hmmlearn_scaling():
  hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
  k, v, num, length, iters = 3, 6, 12, 60, 5
  rng = np.random.default_rng(0)
  sticky = 0.7 * np.eye(k) + 0.3 * rng.dirichlet(np.ones(k), k)
  x = sample_np(rng, np.ones(k) / k, sticky, rng.dirichlet(np.full(v, 0.5), k), num, length)
  lengths = rng.integers(1, length + 1, num)
  lengths[0] = length
  mask = np.arange(length)[None] < lengths[:, None]
  # The same initial parameters, float32 numbers, renormalised in float64 for hmmlearn.
  init = [rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), k), rng.dirichlet(np.ones(v), k)]
  init = [p.astype(np.float32).astype(np.float64) for p in init]
  init = [p / p.sum(-1, keepdims=True) for p in init]
  start = np_hmm(*init)
  _, ours = H.fit_em(start, H.pack_batches([(x, mask)]), iters)
  model = hmmlearn_hmm.CategoricalHMM(n_components=k, n_features=v, n_iter=iters, tol=-np.inf,
                                      init_params="", params="ste", implementation="scaling")
  model.startprob_, model.transmat_, model.emissionprob_ = init
  seqs = [np.asarray(x[i, :n]) for i, n in enumerate(lengths)]
  model.fit(np.concatenate(seqs)[:, None], lengths)
  theirs = np.array(model.monitor_.history)
  assert len(theirs) == iters
  # hmmlearn computes in float64, genjax in float32: the scaled recursion's relative rounding
  # error grows with the steps of a sequence, so allow `length` ulps of each log-likelihood
  # (0.004 here; the differences seen are about 1e-4).
  np.testing.assert_allclose(ours, theirs, rtol=length * EPS32)
  assert theirs[-1] > theirs[0] + 1.0  # EM moved: the iterations compared are not all alike


def test_supervised_counts_by_hand():
  x = jnp.array([[0, 1, 1, 0], [2, 2, 0, 0]])
  z = jnp.array([[0, 1, 1, 0], [1, 1, 0, 0]])
  mask = jnp.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
  hmm = H.fit_supervised(H.Categorical(jnp.zeros((2, 3)), pseudo_count=1.0), x, z, mask,
                         pseudo_count=0.5)
  # Starts: one 0, one 1. Transitions (masked): 0->1, 1->1, 1->0, 1->1 => [[0,1],[1,2]].
  np.testing.assert_allclose(np.exp(hmm.log_pi_K), [0.5, 0.5])
  np.testing.assert_allclose(np.exp(hmm.log_A_KxK), [[0.5 / 2, 1.5 / 2], [1.5 / 4, 2.5 / 4]],
                             rtol=1e-6)
  # Emissions: state 0 saw {0, 0}; state 1 saw {1, 1, 2, 2}; add-1.
  np.testing.assert_allclose(np.exp(hmm.emission.log_B_KxV),
                             [[3 / 5, 1 / 5, 1 / 5], [1 / 7, 3 / 7, 3 / 7]], rtol=1e-6)


@pytest.mark.slow
def test_semi_supervised_em_clamps_and_uses_labels():
  true = casino_hmm()
  z, x = H.sample(jax.random.key(4), true, 16, 300)
  mask = jnp.ones(x.shape, bool)
  # The state of every 10th roll is observed.
  states = jnp.where(jnp.arange(300)[None] % 10 == 0, z, -1)
  start = H.HMM.random(jax.random.key(1), H.Categorical.random(jax.random.key(2), 2, 6, 5.0),
                       5.0)
  fitted, history = H.fit_em(start, [(x, mask, states)], 40, chunk_size=8)
  assert np.all(np.diff(history) > -1e-2)
  # The labels fix the state names: state 1 is the loaded die, no permutation needed.
  B = np.exp(np.asarray(fitted.emission.log_B_KxV))
  np.testing.assert_allclose(B, np.exp(true.emission.log_B_KxV), atol=0.06)
  _, gamma = H.posterior_marginals(fitted, x, mask, states=states)
  observed = np.asarray(states) >= 0
  np.testing.assert_allclose(np.asarray(gamma)[observed, np.asarray(z)[observed]], 1.0)


def test_classifier_is_bayes_rule():
  h0, h1 = tiny_hmm(0), tiny_hmm(10)
  clf = H.HMMClassifier.from_hmms([h0, h1], class_counts=[3, 1])
  x = jax.random.randint(jax.random.key(9), (4, T), 0, V)
  mask = jnp.arange(T)[None] < jnp.array([5, 4, 2, 1])[:, None]
  logpost = H.classifier_log_posterior(clf, x, mask)
  ll0, ll1 = H.log_likelihood(h0, x, mask), H.log_likelihood(h1, x, mask)
  joint = np.stack([ll0 + np.log(0.75), ll1 + np.log(0.25)], 1)
  ref = joint - np.log(np.exp(joint).sum(1, keepdims=True))
  np.testing.assert_allclose(logpost, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_classifier_separates_casinos():
  fair = casino_hmm().replace(log_A_KxK=jnp.log(jnp.array([[0.99, 0.01], [0.9, 0.1]])))
  loaded = casino_hmm().replace(log_A_KxK=jnp.log(jnp.array([[0.5, 0.5], [0.1, 0.9]])))
  _, x0 = H.sample(jax.random.key(0), fair, 30, 60)
  _, x1 = H.sample(jax.random.key(1), loaded, 30, 60)
  mask = jnp.ones((30, 60), bool)
  init = [H.HMM.random(jax.random.key(s), H.Categorical.random(jax.random.key(s + 1), 2, 6, 5.0),
                       5.0) for s in (2, 4)]
  clf = H.fit_classifier(init, [[(x0[:20], mask[:20])], [(x1[:20], mask[:20])]], 30,
                         chunk_size=8)
  pred = jnp.argmax(H.classifier_log_posterior(clf, jnp.concatenate([x0[20:], x1[20:]]),
                                               mask[:20]), 1)
  assert np.mean(np.asarray(pred) == np.repeat([0, 1], 10)) >= 0.9
