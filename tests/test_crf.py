"""Linear-chain CRF against brute-force enumeration, finite differences and a toy training run."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data.sequences import Sentence, pad
from genjax.metrics.chunking import conll_f1
from genjax.structured import crf, crf_features, crf_sparse

L = 3
LENGTHS = (4, 2, 1, 0)  # padded to T = 4; the last sentence is empty


def _model(seed=0, num_features=7):
  rng = np.random.default_rng(seed)
  params = crf.CRFParams(
      emission=jnp.asarray(rng.normal(size=(num_features, L)), jnp.float32).at[0].set(0.0),
      transition=jnp.asarray(rng.normal(size=(L, L)) * 1.5, jnp.float32),
      start=jnp.asarray(rng.normal(size=L), jnp.float32),
      end=jnp.asarray(rng.normal(size=L), jnp.float32))
  T = max(LENGTHS)
  mask = np.arange(T)[None] < np.array(LENGTHS)[:, None]
  ids = rng.integers(1, num_features, size=(len(LENGTHS), T, 2)) * mask[..., None]
  ids[0, 1, 1] = 0  # a null feature on a real token
  labels = rng.integers(0, L, size=(len(LENGTHS), T)) * mask
  return params, jnp.asarray(ids, jnp.int32), jnp.asarray(labels, jnp.int32), jnp.asarray(mask)


def _score(emit_TxL, y, p):
  s = p.start[y[0]] + p.end[y[-1]] + sum(emit_TxL[t, y[t]] for t in range(len(y)))
  return s + sum(p.transition[y[t - 1], y[t]] for t in range(1, len(y)))


def _brute_force(emit_TxL, n, p):
  """(log Z, unary marginals nxL, pairwise nxLxL, best sequence, best score) by enumeration."""
  emit = np.asarray(emit_TxL, np.float64)[:n]
  q = jax.tree.map(lambda x: np.asarray(x, np.float64), p)
  ys = list(itertools.product(range(L), repeat=n))
  scores = np.array([_score(emit, y, q) for y in ys])
  log_z = np.logaddexp.reduce(scores)
  probs = np.exp(scores - log_z)
  unary, pair = np.zeros((n, L)), np.zeros((n, L, L))
  for y, pr in zip(ys, probs, strict=True):
    for t in range(n):
      unary[t, y[t]] += pr
      if t:
        pair[t, y[t - 1], y[t]] += pr
  return log_z, unary, pair, ys[int(np.argmax(scores))], scores.max()


def test_emission_scores_sum_rows_and_skip_null():
  params, ids, _, _ = _model()
  emit = crf.emission_scores(params.emission, ids)
  w = np.asarray(params.emission)
  expected = w[np.asarray(ids)].sum(axis=2)  # row 0 is zero in this model
  np.testing.assert_allclose(emit, expected, rtol=1e-6, atol=1e-6)
  # The null row contributes nothing even when it holds weight.
  emit2 = crf.emission_scores(params.emission.at[0].set(5.0), ids)
  np.testing.assert_allclose(emit2, emit, atol=1e-6)


@pytest.mark.parametrize("method", ["logsumexp", "matmul"])
def test_log_partition_and_score_match_enumeration(method):
  params, ids, labels, mask = _model()
  emit = crf.emission_scores(params.emission, ids)
  log_z = crf.log_partition(emit, mask, params, method)
  score = crf.sequence_score(emit, labels, mask, params)
  for b, n in enumerate(LENGTHS):
    if n == 0:
      assert float(log_z[b]) == 0.0 and float(score[b]) == 0.0
      continue
    brute = _brute_force(emit[b], n, params)
    np.testing.assert_allclose(log_z[b], brute[0], rtol=1e-5)
    y = tuple(int(v) for v in labels[b, :n])
    np.testing.assert_allclose(score[b], _score(np.asarray(emit[b]), y, params), rtol=1e-5)


def test_marginals_match_enumeration_and_autodiff_of_log_z():
  params, ids, _, mask = _model(seed=1)
  emit = crf.emission_scores(params.emission, ids)
  unary, pair = crf.marginals(emit, mask, params)
  for b, n in enumerate(LENGTHS):
    if n == 0:
      assert float(jnp.abs(unary[b]).sum()) == 0.0
      continue
    _, u, pw, _, _ = _brute_force(emit[b], n, params)
    np.testing.assert_allclose(unary[b, :n], u, atol=1e-5)
    np.testing.assert_allclose(pair[b, :n], pw, atol=1e-5)
    assert float(jnp.abs(unary[b, n:]).sum()) == 0.0 and float(jnp.abs(pair[b, n:]).sum()) == 0.0
  # d log Z / d emit = unary marginals; d log Z / d transition = summed pairwise marginals.
  for method in ("logsumexp", "matmul"):
    g_emit, g_params = jax.grad(
        lambda e, p, m=method: jnp.sum(crf.log_partition(e, mask, p, m)), argnums=(0, 1))(
            emit, params)
    np.testing.assert_allclose(g_emit, unary, atol=1e-5)
    np.testing.assert_allclose(g_params.transition, pair.sum((0, 1)), atol=1e-5)
    np.testing.assert_allclose(g_params.start, unary[:, 0].sum(0), atol=1e-5)


def test_viterbi_matches_enumeration():
  params, ids, _, mask = _model(seed=2)
  emit = crf.emission_scores(params.emission, ids)
  labels, score = crf.viterbi(emit, mask, params)
  for b, n in enumerate(LENGTHS[:-1]):
    _, _, _, best, best_score = _brute_force(emit[b], n, params)
    assert tuple(int(v) for v in labels[b, :n]) == best
    np.testing.assert_allclose(score[b], best_score, rtol=1e-5)
    assert not np.any(np.asarray(labels[b, n:]))  # padding gets label 0
  np.testing.assert_array_equal(crf.predict(params, ids, mask), labels)


def test_nll_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    params, ids, labels, mask = _model(seed=3)
    params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    l2, n = 0.3, len(LENGTHS)

    @jax.jit
    def f(p):
      return (jnp.sum(crf.nll(p, ids, labels, mask, "matmul")) + l2 * crf.squared_norm(p)) / n

    grad = jax.grad(f)(params)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    g = np.asarray(jax.flatten_util.ravel_pytree(grad)[0])
    eps = 1e-6
    for i in np.random.default_rng(0).choice(flat.size, 12, replace=False):
      e = np.zeros(flat.size)
      e[i] = eps
      fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / (2 * eps)
      np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)
    assert np.all(g[:L] == 0.0)  # the null feature's row gets no gradient
    # NLL is a proper negative log-probability: positive, and zero for empty sentences.
    values = crf.nll(params, ids, labels, mask)
    assert np.all(np.asarray(values[:-1]) > 0) and float(values[-1]) == 0.0


def test_token_features_on_a_hand_example():
  names = crf_features.token_features(["He", "reckons", "the"], ["PRP", "VBZ", "DT"])
  assert len(names) == 3 and all(len(t) == crf_features.FEATURES_PER_TOKEN for t in names)
  assert names[0][:8] == ["bias", "0=__BOS-2__", "1=__BOS-1__", "2=He", "3=reckons", "4=the",
                          "5=__BOS-1__|He", "6=He|reckons"]
  assert names[2][4:6] == ["3=__EOS+1__", "4=__EOS+2__"]
  assert names[1][8:13] == ["7=__BOS-1__", "8=PRP", "9=VBZ", "10=DT", "11=__EOS+1__"]
  assert names[1][13:] == ["12=__BOS-1__|PRP", "13=PRP|VBZ", "14=VBZ|DT", "15=DT|__EOS+1__",
                           "16=__BOS-1__|PRP|VBZ", "17=PRP|VBZ|DT", "18=VBZ|DT|__EOS+1__"]


def test_feature_map_min_count_unseen_and_hashing():
  a = Sentence(("the", "cat"), ("DT", "NN"), ("B-NP", "I-NP"))
  b = Sentence(("the", "dog"), ("DT", "NN"), ("B-NP", "I-NP"))
  fm = crf_features.build([a, b])
  assert fm.labels == ("B-NP", "I-NP")
  ids = fm.encode_sentence(a)
  assert ids.shape == (2, crf_features.FEATURES_PER_TOKEN) and ids.min() >= 1
  assert ids[0, 0] == ids[1, 0]  # bias
  assert fm.num_features == 1 + len({n for s in (a, b) for t in crf_features.token_features(
      s.words, s.pos) for n in t})
  kept = crf_features.build([a, b], min_count=2)
  ids_a = kept.encode_sentence(a)
  # Seen twice: bias, "2=the", POS features; "cat" was seen once and maps to the null id.
  assert kept.feature_id("2=the") > 0 and kept.feature_id("2=cat") == crf_features.NULL_FEATURE
  assert ids_a[1, 3] == crf_features.NULL_FEATURE  # token 1's w[0] is "cat"
  unseen = fm.encode_sentence(Sentence(("a",), ("DT",), ("B-NP",)))
  assert unseen[0, 3] == crf_features.NULL_FEATURE and unseen[0, 0] > 0
  hashed = crf_features.build([a, b], hash_buckets=64)
  h = hashed.encode_sentence(a)
  assert hashed.num_features == 65 and h.min() >= 1 and h.max() <= 64
  np.testing.assert_array_equal(h, hashed.encode_sentence(a))  # stable


def test_bucketize_and_objective_equal_per_sentence_sum():
  rng = np.random.default_rng(4)
  lengths = rng.integers(1, 12, size=23)
  ids = [rng.integers(0, 7, size=(n, 2)).astype(np.int32) for n in lengths]
  labels = [rng.integers(0, L, size=n).astype(np.int32) for n in lengths]
  buckets = crf_features.bucketize(ids, labels, num_buckets=2, chunk_tokens=40)
  order = np.concatenate([b.order.ravel() for b in buckets])
  assert sorted(order[order >= 0].tolist()) == list(range(23))
  for b in buckets:
    assert b.ids.shape[1] * b.ids.shape[2] <= max(40, b.ids.shape[2])
    for i, m in zip(b.order.ravel(), b.mask.reshape(-1, b.mask.shape[-1]), strict=True):
      assert m.sum() == (lengths[i] if i >= 0 else 0)
  params = _model(num_features=7)[0]
  # Reference: every sentence in one batch padded to the longest, exact log-sum-exp forward.
  ids_all, mask_all = pad(ids)
  labels_all, _ = pad(labels)
  per_sentence = crf.nll(params, ids_all, labels_all, mask_all, "logsumexp")
  direct = float(jnp.sum(per_sentence))
  data = crf.device_data(buckets)
  np.testing.assert_allclose(crf.total_nll(params, data), direct, rtol=1e-5)
  value = crf.objective(params, data, l2=0.5, num_sentences=23)
  np.testing.assert_allclose(value, (direct + 0.5 * crf.squared_norm(params)) / 23, rtol=1e-5)
  # decode returns sentences in input order, each with its own length.
  decoded = crf.decode(params, buckets, 23)
  assert [len(d) for d in decoded] == lengths.tolist()
  expected = np.asarray(crf.predict(params, ids_all, mask_all))
  for i, d in enumerate(decoded):
    np.testing.assert_array_equal(d, expected[i, :lengths[i]])


def test_soft_threshold():
  x = jnp.array([-2.0, -0.5, 0.0, 0.3, 1.5])
  np.testing.assert_allclose(crf.soft_threshold(x, 0.5), [-1.5, 0.0, 0.0, 0.0, 1.0])


def _toy_sentences(rng, count):
  # The tag of "x" depends on the previous word (B- after y, I- after x): the CRF needs the
  # w[-1] feature or the transitions to separate them.
  out = []
  for _ in range(count):
    words = tuple(rng.choice(["x", "y"], size=rng.integers(2, 8)).tolist())
    tags = tuple("O" if w == "y" else ("I-NP" if t and words[t - 1] == "x" else "B-NP")
                 for t, w in enumerate(words))
    out.append(Sentence(words, tuple("NN" if w == "x" else "VB" for w in words), tags))
  return out


@pytest.mark.slow
def test_tiny_training_runs_separate_toy_data():
  rng = np.random.default_rng(5)
  train, test = _toy_sentences(rng, 40), _toy_sentences(rng, 20)
  fm = crf_features.build(train)
  ids, labels = crf_features.encode(fm, train)
  data = crf.device_data(crf_features.bucketize(ids, labels, num_buckets=1, chunk_tokens=64))
  test_ids, test_labels = crf_features.encode(fm, test)
  test_buckets = crf_features.bucketize(test_ids, test_labels, num_buckets=1, chunk_tokens=64)
  gold = [s.chunks for s in test]

  params0 = crf.init_params(fm.num_features, len(fm.labels))
  start = float(crf.objective(params0, data, 0.1, len(train)))
  params, info = crf.fit_lbfgs(params0, data, len(train), l2=0.1, max_iterations=30)
  assert info["objective"] < 0.2 * start
  predicted = [fm.decode_labels(p) for p in crf.decode(params, test_buckets, len(test))]
  assert conll_f1(gold, predicted)["f1"] == 100.0

  params, info = crf.fit_adam(params0, data, len(train), jax.random.key(0),
                              learning_rate=0.1, epochs=8, l2=0.1, l1=0.5)
  predicted = [fm.decode_labels(p) for p in crf.decode(params, test_buckets, len(test))]
  assert conll_f1(gold, predicted)["f1"] == 100.0
  assert info["objective"] < 0.2 * start
  # The proximal L1 step leaves exact zeros (the word bigram rows that never help, at least).
  assert int(jnp.sum(params.emission[1:] == 0.0)) > 0


# ---------------------------------------------------------------- sparse state features


def _sparse_problem(seed=6, num_features=9, lengths=(5, 3, 1, 6, 2, 4, 1)):
  rng = np.random.default_rng(seed)
  ids = [rng.integers(0, num_features, size=(n, 3)).astype(np.int32) for n in lengths]
  labels = [rng.integers(0, L, size=n).astype(np.int32) for n in lengths]
  # Rows of 6 positions: several sentences share a row, one row ends in padding.
  data = crf_sparse.packed_data(ids, labels, num_features, L, length=6)
  params = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32),
                        crf_sparse.init_params(data))
  return ids, labels, data, params


def test_pack_places_every_sentence_once_within_its_row():
  lengths = np.random.default_rng(7).integers(1, 9, size=40)
  packing = crf_sparse.pack(lengths)
  assert packing.length == lengths.max()
  used = np.zeros((packing.rows, packing.length), int)
  for r, o, n in zip(packing.row, packing.offset, lengths, strict=True):
    assert o + n <= packing.length
    used[r, o:o + n] += 1
  assert used.max() == 1 and used.sum() == lengths.sum()
  assert packing.rows <= -(-lengths.sum() // packing.length) + 2  # little padding


def test_sparse_objective_and_gradient_equal_dense_restricted_to_kept_pairs():
  ids, labels, data, params = _sparse_problem()
  kept = np.asarray(data.cell_of_pair)
  # Every (attribute, gold label) pair of the data, and only those (id 0 is the null feature).
  expected = {int(a) * L + int(y) for x, ys in zip(ids, labels, strict=True)
              for row, y in zip(x, ys, strict=True) for a in row if a}
  assert set(kept.tolist()) == expected
  dense = crf_sparse.to_dense(params, data)
  emission = np.asarray(dense.emission).reshape(-1)
  assert np.all(np.delete(emission, kept) == 0.0)
  ids_all, mask_all = pad(ids)
  labels_all, _ = pad(labels)
  n = len(ids)

  def dense_objective(p):
    return (jnp.sum(crf.nll(p, ids_all, labels_all, mask_all, "logsumexp"))
            + 0.3 * crf.squared_norm(p)) / n

  value_d, grad_d = jax.value_and_grad(dense_objective)(dense)
  # The sparse objective through its custom VJP, jitted as L-BFGS runs it.
  value_s, grad_s = jax.jit(jax.value_and_grad(
      lambda p, d: crf_sparse.objective(p, d, 0.3, n)))(params, data)
  # float32: each side sums ~30 tokens' log-normalisers of size O(1) into a total ~10: a
  # relative error of ~100 float32 ulps (1.2e-7 each) is rounding, not a bug.
  np.testing.assert_allclose(value_s, value_d, rtol=1e-5)
  # Gradients are sums of marginals (each in [0, 1]) over at most ~30 tokens: atol 1e-5.
  np.testing.assert_allclose(grad_s.theta, grad_d.emission.reshape(-1)[kept], atol=1e-5)
  for name in ("transition", "start", "end"):
    np.testing.assert_allclose(getattr(grad_s, name), getattr(grad_d, name), atol=1e-5)
  np.testing.assert_allclose(crf_sparse.from_dense(dense, data).theta, params.theta)


def test_sparse_nll_of_one_sentence_matches_enumeration():
  ids, labels, data, params = _sparse_problem(seed=8, lengths=(5,))
  value, _ = crf_sparse.nll_and_grad(params, data)
  dense = crf_sparse.to_dense(params, data)
  emit = crf.emission_scores(dense.emission, jnp.asarray(ids[0]))
  log_z = _brute_force(emit, 5, dense)[0]
  score = _score(np.asarray(emit, np.float64), tuple(labels[0].tolist()),
                 jax.tree.map(lambda x: np.asarray(x, np.float64), dense))
  # log Z and the score are ~10: float32 sums of ~30 terms, atol 1e-4.
  np.testing.assert_allclose(value, log_z - score, atol=1e-4)


def test_context_slots_factor_the_repeating_slots_exactly():
  rng = np.random.default_rng(9)
  # Slot 0 always fires (a bias), slot 1 has 3 values, slot 2 is nearly unique per token.
  ids_NxS = np.stack([np.ones(60, np.int64), rng.integers(2, 5, 60), 5 + np.arange(60)], axis=1)
  slots, context_N, values_UxG = crf_sparse.context_slots(ids_NxS)
  assert slots == [0, 1]
  assert len(values_UxG) == len(np.unique(ids_NxS[:, 1]))
  np.testing.assert_array_equal(values_UxG[context_N], ids_NxS[:, slots])
  # Nothing to share: no slot is factored.
  assert crf_sparse.context_slots(np.arange(20).reshape(10, 2))[0] == []


def test_factored_contexts_give_the_unfactored_objective_and_gradient():
  rng = np.random.default_rng(10)
  lengths = (5, 3, 1, 6, 2, 4, 1, 7)
  # Slots 0-1 repeat (few values: factored), slot 2 is drawn from 30 attributes (not factored).
  ids = [np.stack([np.ones(n), rng.integers(2, 4, n), rng.integers(4, 34, n)], 1).astype(np.int32)
         for n in lengths]
  labels = [rng.integers(0, L, size=n).astype(np.int32) for n in lengths]
  factored = crf_sparse.packed_data(ids, labels, 34, L, length=8)
  plain = crf_sparse.packed_data(ids, labels, 34, L, length=8, factor_contexts=False)
  assert factored.context_ids.shape[0] == 2 and factored.ids.shape[0] == 1
  assert plain.context_ids.shape[0] == 0 and plain.ids.shape[0] == 3
  params = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32),
                        crf_sparse.init_params(plain))
  value_f, grad_f = crf_sparse.nll_and_grad(params, factored)
  value_p, grad_p = crf_sparse.nll_and_grad(params, plain)
  # The same sums in another order: the total (~100, 29 tokens) to ~100 float32 ulps; the
  # gradients are sums of at most 29 marginals in [0, 1] minus integer counts: atol 1e-5.
  np.testing.assert_allclose(value_f, value_p, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(grad_f), jax.tree.leaves(grad_p), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-5)
