"""The occasionally dishonest casino (Durbin et al. 1998): sample rolls, fit an HMM by EM, compare.

  python experiments/hmm_casino.py --workdir=runs/hmm_casino

A fair die and a loaded one (a six half the time) switch with probabilities 0.05 and 0.10. We
sample sequences of rolls, run Baum-Welch from several random starts (the best final
log-likelihood wins), match the fitted states to the true ones by the permutation closest in
emission probabilities, and report both parameter sets, the largest absolute errors, the
log-likelihoods of the fitted and the true model, and Viterbi decoding accuracy of each.
Results go to <workdir>/results.json; running again with the same settings reads them back.
"""

import itertools
import os
import time

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_string("workdir", "runs/hmm_casino", "Where results.json goes.")
flags.DEFINE_integer("num_sequences", 50, "Sampled sequences.")
flags.DEFINE_integer("length", 300, "Rolls per sequence.")
flags.DEFINE_integer("restarts", 5, "Random EM starts.")
flags.DEFINE_integer("iters", 300, "EM iterations per start.")
flags.DEFINE_float("tol", 1e-7, "Stop a start when the log-likelihood per roll gains less.")
flags.DEFINE_integer("seed", 0, "Sampling and initialisation seed.")
FLAGS = flags.FLAGS
RENAMED = {"outdir": "--workdir"}


def casino():
  import jax.numpy as jnp

  from genjax.structured import hmm as H
  A = jnp.array([[0.95, 0.05], [0.10, 0.90]])
  B = jnp.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
  return H.HMM(jnp.log(jnp.array([0.5, 0.5])), jnp.log(A), H.Categorical(jnp.log(B)))


def best_permutation(B_fit: np.ndarray, B_true: np.ndarray) -> tuple[int, ...]:
  """The relabelling of fitted states that best matches the true emission rows."""
  k = B_true.shape[0]
  return min(itertools.permutations(range(k)),
             key=lambda p: float(np.abs(B_fit[list(p)] - B_true).sum()))


SETTINGS = ("num_sequences", "length", "restarts", "iters", "tol", "seed")


def finished(workdir: str, settings: dict) -> dict | None:
  """<workdir>/results.json where it was written with `settings`, else None."""
  import json
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  return results if all(results.get(k) == v for k, v in settings.items()) else None


def main(argv):
  del argv
  settings = {k: FLAGS[k].value for k in SETTINGS}
  done = finished(FLAGS.workdir, settings)
  if done is not None:
    print(f"read back {os.path.join(FLAGS.workdir, 'results.json')}")
    print({k: v for k, v in done.items() if not isinstance(v, list)})
    return
  import jax
  import jax.numpy as jnp

  from genjax.structured import hmm as H
  from genjax.writers import write_json

  key = jax.random.key(FLAGS.seed)
  true = casino()
  z, x = H.sample(jax.random.fold_in(key, 0), true, FLAGS.num_sequences, FLAGS.length)
  mask = jnp.ones(x.shape, bool)
  true_ll = float(jnp.sum(H.log_likelihood(true, x, mask)))
  runs = []
  t0 = time.perf_counter()
  packed = H.pack_batches([(x, mask)])  # one compiled EM step for every start
  for r in range(FLAGS.restarts):
    k_r = jax.random.fold_in(key, r + 1)
    start = H.HMM.random(k_r, H.Categorical.random(jax.random.fold_in(k_r, 1), 2, 6))
    fitted, history = H.fit_em(start, packed, FLAGS.iters, tol=FLAGS.tol)
    runs.append((history[-1], len(history), fitted))
    print(f"start {r}: {len(history)} iterations, log-likelihood {history[-1]:.2f}")
  seconds = time.perf_counter() - t0
  final_ll, iters, fitted = max(runs, key=lambda r: r[0])

  B_true = np.exp(np.asarray(true.emission.log_B_KxV))
  A_true = np.exp(np.asarray(true.log_A_KxK))
  B_fit = np.exp(np.asarray(fitted.emission.log_B_KxV))
  perm = list(best_permutation(B_fit, B_true))
  B_fit = B_fit[perm]
  A_fit = np.exp(np.asarray(fitted.log_A_KxK))[np.ix_(perm, perm)]
  inverse = np.argsort(perm)  # fitted state -> true label
  z_fit, _ = H.viterbi(fitted, x, mask)
  z_true, _ = H.viterbi(true, x, mask)
  results = {
      **settings, "best_start_iterations": iters, "em_seconds": seconds,
      "log_likelihood_fitted": float(jnp.sum(H.log_likelihood(fitted, x, mask))),
      "log_likelihood_true": true_ll,
      "start_log_likelihoods": [r[0] for r in runs],
      "transition_true": A_true.tolist(), "transition_fitted": A_fit.tolist(),
      "emission_true": B_true.tolist(), "emission_fitted": B_fit.tolist(),
      "max_abs_error_transition": float(np.abs(A_fit - A_true).max()),
      "max_abs_error_emission": float(np.abs(B_fit - B_true).max()),
      "viterbi_accuracy_fitted": float(np.mean(inverse[np.asarray(z_fit)] == np.asarray(z))),
      "viterbi_accuracy_true": float(np.mean(np.asarray(z_true) == np.asarray(z))),
  }
  np.set_printoptions(precision=3, suppress=True)
  print("transition true\n", A_true, "\nfitted\n", A_fit)
  print("emission true\n", B_true, "\nfitted\n", B_fit)
  print({k: v for k, v in results.items() if not isinstance(v, list)})
  write_json(os.path.join(FLAGS.workdir, "results.json"), results)


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED)
