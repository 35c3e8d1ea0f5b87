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


# The associative scan is checked against the scan below; here the scan against enumeration
# (the parallel variant too under -m slow).
@pytest.mark.parametrize("parallel", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_likelihood_marginals_pairs_match_enumeration(batch, parallel):
  hmm, x, mask, lengths = batch
  ll = H.log_likelihood(hmm, x, mask, parallel=parallel)
  ll2, gamma = H.posterior_marginals(hmm, x, mask, parallel=parallel)
  stats = H.expected_stats(hmm, x, mask, chunk_size=2, parallel=parallel)
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


def test_scan_equals_associative_scan_long_sequences():
  k, t = 4, 64
  emission = H.DiagGaussian.from_data(jax.random.key(3), k, jax.random.normal(jax.random.key(4),
                                                                              (50, 2)))
  hmm = H.HMM.random(jax.random.key(5), emission)
  x = jax.random.normal(jax.random.key(6), (6, t, 2)) * 2
  mask = jnp.arange(t)[None] < jnp.array([64, 50, 7, 1, 0, 33])[:, None]
  ll_s, g_s = H.posterior_marginals(hmm, x, mask)
  ll_p, g_p = H.posterior_marginals(hmm, x, mask, parallel=True)
  np.testing.assert_allclose(ll_s, ll_p, rtol=1e-5)
  # Marginals exp(alpha + beta - ll) of log-space recursions whose values reach |ll| ~ 300:
  # each of the t steps rounds at that scale, so allow t ulps of |ll| (1e-4 was 3).
  tol = t * np.finfo(np.float32).eps * np.maximum(np.abs(np.asarray(ll_s)), 1.0)
  err = np.abs(np.asarray(g_s) - np.asarray(g_p))
  assert np.all(err <= tol[:, None, None]), np.max(err / tol[:, None, None])
  assert float(ll_s[4]) == 0.0  # an empty sequence
  np.testing.assert_allclose(jnp.sum(g_s, -1), mask, atol=1e-5)


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
  fitted, history = H.fit_em(start, [(x, mask)], 200, chunk_size=8)
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
