"""The occasionally dishonest casino (Durbin et al. 1998): Baum-Welch from the rolls alone against
the true HMM.

  python experiments/hmm_casino.py --workdir=runs/hmm_casino

A fair die and a loaded one (a six half the time) switch with probabilities 0.05 and 0.10
(genjax.data.casino, the dataset `casino`: sequences of rolls tagged by the die, sampled with
--seed). The HMM tagger family (the `hmm_tagger` config, its data the casino's, no smoothing)
fits the casino's HMM twice, each an ordinary workdir trained by the generic loop:

- <workdir>/em/: Baum-Welch on the rolls alone (model.em_restarts = --restarts random starts
  drawn from --seed, at most --iters EM iterations each, --tol on the per-roll log-likelihood's
  gain; the best final log-likelihood wins), the dice used only to name its two states (the
  assignment that agrees most often with them on the training rolls);
- <workdir>/supervised/: counted from the rolls and their known dice, the reference.

A finished workdir is read back, not fitted again; one that holds other settings is refused.
The tagger's HMM has an end-of-sequence state besides the two dice: the comparison takes its
fair and loaded rows, renormalised without the end state. <workdir>/results.json holds the
settings; the true model's test log-likelihood and Viterbi accuracy; and for each fit its
parameters, their largest absolute errors, its log-likelihood of the test rolls, its Viterbi
accuracy on them (the `tagging` evaluator's, %) and, for EM, each start's final
log-likelihood and iterations.
"""

import os

from genjax import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
FITS = ("em", "supervised")

flags.DEFINE_string("workdir", "runs/hmm_casino", "Where the fits' workdirs and results.json "
                    "go.")
flags.DEFINE_integer("num_sequences", 50, "Training sequences.")
flags.DEFINE_integer("test_sequences", 50, "Test sequences.")
flags.DEFINE_integer("length", 300, "Rolls per sequence.")
flags.DEFINE_integer("restarts", 5, "Random EM starts.")
flags.DEFINE_integer("iters", 300, "EM iterations per start.")
flags.DEFINE_float("tol", 1e-7, "Stop a start when the log-likelihood per roll gains less.")
flags.DEFINE_integer("seed", 0, "Sampling and initialisation seed.")
FLAGS = flags.FLAGS
RENAMED = {"outdir": "--workdir"}
SETTINGS = ("num_sequences", "test_sequences", "length", "restarts", "iters", "tol", "seed")


def fit_config(fit: str, settings: dict):
  """The hmm_tagger config of one fit (`em` or `supervised`) on the casino's rolls."""
  from genjax import studies
  from genjax.data import casino
  c = studies.load_config(os.path.join(CONFIG_DIR, "hmm_tagger.py:pos"))
  c.data = casino.data_config(settings["num_sequences"], settings["length"],
                              settings["test_sequences"], sample_seed=settings["seed"])
  c.seed = settings["seed"]
  # Six faces, all seen: no smoothing, no unknown-word model.
  c.model.update(trans_k=0.0, emit_k=0.0, rare_count=0, max_suffix=0)
  if fit == "em":
    c.model.update(em_restarts=settings["restarts"], max_iterations=settings["iters"],
                   tol=settings["tol"])
  return c


def casino_parameters(state) -> dict:
  """{"initial" [2], "transition" [2, 2], "emission" [2, 6]} of a fitted tagger state: its
  fair and loaded rows over the six faces, in the casino's order, each row renormalised
  without the end state (and its end marker)."""
  from genjax.data import casino
  tags = [state.tagger.tags.id(d) for d in casino.DICE]
  words = [state.tagger.words.id(f) for f in casino.FACES]
  hmm = state.hmm

  def rows(log_p):
    p = np.exp(np.asarray(log_p, np.float64))
    return p / p.sum(-1, keepdims=True)

  return {"initial": rows(np.asarray(hmm.log_pi_K)[tags]),
          "transition": rows(np.asarray(hmm.log_A_KxK)[np.ix_(tags, tags)]),
          "emission": rows(np.asarray(hmm.emission.log_B_KxV)[np.ix_(tags, words)])}


def test_scores(params: dict, data) -> tuple[float, float]:
  """(log p(test rolls), Viterbi accuracy % against the test dice) of the casino HMM with
  parameters `params` ({"initial", "transition", "emission"}) on the data section `data`."""
  import jax.numpy as jnp

  from genjax.data import casino
  from genjax.structured import hmm as H
  sentences = casino.load(data, "test")
  faces = np.array([[casino.FACES.index(w) for w in s.words] for s in sentences], np.int32)
  dice = np.array([[casino.DICE.index(t) for t in s.pos] for s in sentences], np.int32)
  model = H.HMM(jnp.log(jnp.asarray(params["initial"], jnp.float32)),
                jnp.log(jnp.asarray(params["transition"], jnp.float32)),
                H.Categorical(jnp.log(jnp.asarray(params["emission"], jnp.float32))))
  mask = jnp.ones(faces.shape, bool)
  z, _ = H.viterbi(model, faces, mask)
  return (float(jnp.sum(H.log_likelihood(model, faces, mask))),
          100.0 * float(np.mean(np.asarray(z) == dice)))


def true_parameters() -> dict:
  from genjax.data import casino
  return {"initial": casino.INITIAL, "transition": casino.TRANSITION,
          "emission": casino.EMISSION}


def run(workdir: str, settings: dict) -> dict:
  """Fit (or read back) both fits, compare them with the true HMM, write and return
  <workdir>/results.json's contents."""
  from genjax import studies, train, writers
  configs = {fit: fit_config(fit, settings) for fit in FITS}
  for fit, config in configs.items():  # before anything is fitted
    studies.refuse_other_config(config, os.path.join(workdir, fit))
  true = true_parameters()
  true_ll, true_accuracy = test_scores(true, configs["em"].data)
  out = {"settings": settings, "true": {
      **{k: np.asarray(v).tolist() for k, v in true.items()},
      "log_likelihood_test": true_ll, "viterbi_accuracy_test": true_accuracy}}
  for fit, config in configs.items():
    fit_dir = os.path.join(workdir, fit)
    results = studies.read_or_train(config, fit_dir)
    _, _, state = train.restore_for_eval(fit_dir)
    params = casino_parameters(state)
    ll, _ = test_scores(params, config.data)
    row = {**{k: v.tolist() for k, v in params.items()},
           "max_abs_error_transition": float(np.abs(params["transition"]
                                                    - true["transition"]).max()),
           "max_abs_error_emission": float(np.abs(params["emission"] - true["emission"]).max()),
           "log_likelihood_test": ll, "viterbi_accuracy_test": results["test"]["accuracy"],
           "fit_seconds": results["fit_seconds"], "workdir": fit_dir}
    if fit == "em":
      log = writers.read_metrics(os.path.join(fit_dir, "metrics.jsonl"))
      starts = [r for r in log if "log_likelihood" in r]
      chosen = next(r for r in log if "best_start" in r)
      row.update(start_log_likelihoods=[r["log_likelihood"] for r in starts],
                 start_iterations=[int(r["num_iterations"]) for r in starts],
                 best_start=int(chosen["best_start"]),
                 matched_accuracy_train=chosen["matched_accuracy"])
    out[fit] = row
  writers.write_json(os.path.join(workdir, "results.json"), out)
  return out


def main(argv):
  del argv
  settings = {k: FLAGS[k].value for k in SETTINGS}
  out = run(FLAGS.workdir, settings)
  np.set_printoptions(precision=3, suppress=True)
  print("true transition\n", np.array(out["true"]["transition"]),
        "\nemission\n", np.array(out["true"]["emission"]))
  print(f"true model: test log-likelihood {out['true']['log_likelihood_test']:.1f}, Viterbi "
        f"accuracy {out['true']['viterbi_accuracy_test']:.2f} %")
  for fit in FITS:
    r = out[fit]
    print(f"{fit}: transition\n", np.array(r["transition"]), "\nemission\n",
          np.array(r["emission"]))
    print(f"{fit}: largest errors {r['max_abs_error_transition']:.3f} (transitions), "
          f"{r['max_abs_error_emission']:.3f} (emissions); test log-likelihood "
          f"{r['log_likelihood_test']:.1f}; Viterbi accuracy {r['viterbi_accuracy_test']:.2f} %")
  em = out["em"]
  print(f"em: starts' final log-likelihoods {[round(v, 1) for v in em['start_log_likelihoods']]}"
        f", iterations {em['start_iterations']}, start {em['best_start']} kept")


if __name__ == "__main__":
  cli.run(main, renamed=RENAMED)
