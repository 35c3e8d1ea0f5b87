"""Tree-augmented naive Bayes against hand computations and enumeration on tiny models."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.structured import bayes_net as bn


def _hand_cmi(x: np.ndarray, y: np.ndarray, i: int, j: int) -> float:
  """I(Xi; Xj | C) from its definition, one loop per value."""
  n, total = len(y), 0.0
  for c in np.unique(y):
    for a in np.unique(x[:, i]):
      for b in np.unique(x[:, j]):
        n_abc = np.sum((y == c) & (x[:, i] == a) & (x[:, j] == b))
        if n_abc == 0:
          continue
        n_c = np.sum(y == c)
        n_ac = np.sum((y == c) & (x[:, i] == a))
        n_bc = np.sum((y == c) & (x[:, j] == b))
        total += n_abc / n * np.log(n_abc * n_c / (n_ac * n_bc))
  return total


def test_conditional_mutual_information_matches_hand_computation():
  r = np.random.default_rng(0)
  y = r.integers(0, 2, 300)
  x0 = r.integers(0, 3, 300)
  x1 = np.where(r.random(300) < 0.7, x0, r.integers(0, 3, 300))  # depends on x0
  x2 = (y + r.integers(0, 2, 300)) % 3  # depends on the class only
  x = np.stack([x0, x1, x2], 1)
  cmi = np.asarray(bn.conditional_mutual_information(bn.pair_counts(x, y, 2, 3, chunk=64)))
  for i, j in itertools.combinations(range(3), 2):
    np.testing.assert_allclose(cmi[i, j], _hand_cmi(x, y, i, j), rtol=1e-4, atol=1e-6)
    # The transpose sums the same 18 terms p log(ratio) in another order; their magnitudes
    # sum to < 1 here while I(X0; X2) ~ 0.01, so bound the difference by 18 ulps of 1.
    np.testing.assert_allclose(cmi[j, i], cmi[i, j], rtol=0,
                               atol=18 * np.finfo(np.float32).eps)
  assert cmi[0, 1] > 0.3 and cmi[0, 2] < 0.02


def _spanning_trees(d: int):
  """Every labelled spanning tree of the complete graph on d nodes (Pruefer sequences)."""
  for seq in itertools.product(range(d), repeat=d - 2):
    degree = [1] * d
    for s in seq:
      degree[s] += 1
    edges, seq = [], list(seq)
    for s in seq:
      leaf = min(i for i in range(d) if degree[i] == 1)
      edges.append((leaf, s))
      degree[leaf] -= 1
      degree[s] -= 1
    u, v = [i for i in range(d) if degree[i] == 1]
    yield [*edges, (u, v)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chow_liu_tree_is_the_maximum_spanning_tree(seed):
  d = 6
  w = np.random.default_rng(seed).random((d, d))
  w = (w + w.T) / 2
  best = max(sum(w[a, b] for a, b in t) for t in _spanning_trees(d))
  parents, order = bn.maximum_spanning_tree(jnp.asarray(w), root=2)
  parents, order = np.asarray(parents), np.asarray(order)
  assert parents[2] == -1 and np.sum(parents < 0) == 1 and order[0] == 2
  np.testing.assert_allclose(sum(w[i, p] for i, p in enumerate(parents) if p >= 0), best,
                             rtol=1e-6)
  position = {node: k for k, node in enumerate(order)}
  assert sorted(order) == list(range(d))
  assert all(position[p] < position[i] for i, p in enumerate(parents) if p >= 0)


def _naive_bayes_by_hand(x, y, xq, num_classes, k, alpha):
  log_post = []
  for c in range(num_classes):
    xc = x[y == c]
    lp = np.log((len(xc) + alpha) / (len(y) + num_classes * alpha))
    for i in range(x.shape[1]):
      counts = np.bincount(xc[:, i], minlength=k)
      lp = lp + np.log((counts[xq[:, i]] + alpha) / (len(xc) + k * alpha))
    log_post.append(lp)
  lj = np.stack(log_post, 1)
  return lj - np.log(np.exp(lj).sum(1, keepdims=True))


def test_tan_without_edges_is_naive_bayes():
  r = np.random.default_rng(1)
  x = r.integers(0, 4, (200, 5))
  y = r.integers(0, 3, 200)
  params = bn.fit(x, y, 3, tree=False, discretize="none", alpha=0.5)
  assert bn.num_edges(params) == 0
  xq = r.integers(0, 4, (50, 5))
  np.testing.assert_allclose(np.asarray(bn.log_proba(params, xq)),
                             _naive_bayes_by_hand(x, y, xq, 3, 4, 0.5), rtol=1e-4, atol=1e-5)


def test_posteriors_match_enumeration_of_the_joint():
  r = np.random.default_rng(2)
  y = r.integers(0, 2, 400)
  x0 = (y + (r.random(400) < 0.3)) % 2
  x1 = np.where(r.random(400) < 0.8, x0, 1 - x0)
  x2 = r.integers(0, 2, 400)
  x = np.stack([x0, x1, x2], 1)
  params = bn.fit(x, y, 2, discretize="none", alpha=1.0)
  assert bn.num_edges(params) == 2
  prior = np.exp(np.asarray(params.log_prior_C))
  cpt = np.exp(np.asarray(params.log_cpt_DxCxKxK))
  parents = np.asarray(params.parents_D)
  np.testing.assert_allclose(cpt.sum(-1), 1.0, rtol=1e-5)
  # The joint p(c, x) of every state, from the tables by hand; the posteriors by Bayes' rule.
  states = np.asarray(list(itertools.product([0, 1], repeat=3)))
  joint = np.array([[prior[c] * np.prod([cpt[i, c, s[p] if p >= 0 else 0, s[i]]
                                         for i, p in enumerate(parents)])
                     for c in range(2)] for s in states])
  np.testing.assert_allclose(joint.sum(), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.exp(np.asarray(bn.log_proba(params, states))),
                             joint / joint.sum(1, keepdims=True), rtol=1e-4)
  # And the tables are the smoothed counts: P(x1 = a | c, x_parent) for the tree parent.
  i = 1 if parents[1] >= 0 else 0
  p = parents[i]
  for c, pv, a in itertools.product(range(2), range(2), range(2)):
    sel = (y == c) & (x[:, p] == pv)
    expect = (np.sum(sel & (x[:, i] == a)) + 1) / (np.sum(sel) + 2)
    np.testing.assert_allclose(cpt[i, c, pv, a], expect, rtol=1e-5)


def test_sampler_frequencies_match_the_model():
  r = np.random.default_rng(3)
  y = r.integers(0, 2, 300)
  x0 = (y + r.integers(0, 3, 300)) % 3
  x1 = np.where(r.random(300) < 0.7, x0, r.integers(0, 3, 300))
  x = np.stack([x0, x1], 1)
  params = bn.fit(x, y, 2, discretize="none")
  cpt = np.exp(np.asarray(params.log_cpt_DxCxKxK))
  parents = np.asarray(params.parents_D)
  labels = jnp.ones((40_000,), jnp.int32)
  draws = np.asarray(bn.sample(params, jax.random.key(0), labels))
  freq = np.zeros((3, 3))
  np.add.at(freq, (draws[:, 0], draws[:, 1]), 1.0)
  freq /= len(draws)
  expect = np.zeros((3, 3))
  for a, b in itertools.product(range(3), range(3)):
    s = (a, b)
    expect[a, b] = np.prod([cpt[i, 1, s[p] if p >= 0 else 0, s[i]] for i, p in enumerate(parents)])
  np.testing.assert_allclose(freq, expect, atol=0.012)


def test_quantile_and_binary_discretisation():
  x = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 6.0]], np.float32)
  params = bn.fit(x, np.array([0, 0, 1, 1]), 2, num_bins=2)
  np.testing.assert_array_equal(np.asarray(bn.discretize(params, x)),
                                [[0, 1], [0, 1], [1, 1], [1, 1]])  # ties go up
  params = bn.fit(x / 6, np.array([0, 0, 1, 1]), 2, discretize="binary", threshold=0.4)
  np.testing.assert_array_equal(np.asarray(bn.discretize(params, x / 6)),
                                [[0, 1], [0, 1], [0, 1], [1, 1]])
  with pytest.raises(ValueError, match="unknown hyperparameters"):
    bn.fit(x, np.array([0, 0, 1, 1]), 2, bins=3)


@pytest.mark.slow
def test_tan_beats_naive_bayes_where_features_are_redundant():
  # Copies of one noisy feature: naive Bayes counts its evidence many times, TAN once.
  r = np.random.default_rng(4)
  y = r.integers(0, 2, 3000)
  signal = np.where(r.random(3000) < 0.7, y, 1 - y)
  weak = np.where(r.random(3000) < 0.8, y, 1 - y)
  copies = np.stack([np.where(r.random(3000) < 0.97, signal, 1 - signal) for _ in range(6)], 1)
  x = np.concatenate([copies, weak[:, None]], 1)
  tr, te = slice(0, 2000), slice(2000, None)
  tan = bn.fit(x[tr], y[tr], 2, discretize="none")
  nb = bn.fit(x[tr], y[tr], 2, discretize="none", tree=False)

  def nll(p):
    return -float(np.mean(np.asarray(bn.log_proba(p, x[te]))[np.arange(1000), y[te]]))

  assert nll(tan) < nll(nb) - 0.1
