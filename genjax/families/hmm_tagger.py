"""The supervised HMM tagger (genjax.structured.tagger) as a fit family on CoNLL-2000.

`model.target` chooses the task: `pos` tags words with POS tags (a bigram HMM over POS states
with TnT's suffix model for unknown words; scored by the `tagging` evaluator), `chunk` tags POS
sequences with chunk tags (states: chunk tags, or chunk|POS pairs with `model.paired_states`,
the "specialised" HMM of Molina & Pla 2002; scored by `chunking`). Hyper-parameters: `trans_k`
and `emit_k` (add-k smoothing of transitions and emissions), `rare_count` and `max_suffix`
(the suffix model), `max_train_sentences` (0: all).

`joint_weight` (lambda, in [0, 1]) is the objective: lambda * log p(x, y) + (1 - lambda) *
log p(y | x) per sentence, with the add-k smoothing as a Dirichlet(k + 1) prior at full weight
(genjax.structured.hmm_hybrid). 1 (the default) is the counted HMM, in closed form; below 1 the
same HMM's initial, transition and emission logits are fitted by full-batch L-BFGS from the
counted HMM (`max_iterations`, and `tol` on the per-token objective's gradient norm), 0 being
the conditional-likelihood fit. Unknown words keep the suffix model estimated from the counts
for every lambda (it scores them at decoding only; L-BFGS sees no unknown word).

`em_restarts` = R > 0 fits the HMM without the tags instead: Baum-Welch on the observations
alone, the data's log-likelihood log p(x), from R random starts drawn from the run's key, each
for at most `max_iterations` EM iterations (stopping where the log-likelihood per token gains
less than `tol`), the best start kept; the tags then only name its states (the one-to-one
assignment that best agrees with them on the training split: genjax.structured.tagger
.Tagger.fit_unsupervised). `log` gets each start's final log-likelihood and iterations (steps
1..R) and the kept start with its training agreement (step R + 1). It needs joint_weight 1.

The checkpointed state is the fitted HMM's arrays; the vocabularies and the suffix model are
static fields that `create_state` rebuilds from the training split (deterministically).
"""

import jax
import ml_collections
from flax import struct

from genjax.structured import hmm as H
from genjax.structured import hmm_hybrid
from genjax.structured import tagger as tagger_lib

TARGETS = ("pos", "chunk")
DEFAULT_EVALS = {"tagging": {}}  # `chunking` for model.target = chunk (evals_for)


def evals_for(target: str) -> dict:
  """The evaluators a config of `target` runs."""
  return {"tagging": {}} if target == "pos" else {"chunking": {}}


TASKS = ("pos", "chunk", "chunk_paired")


def experiment_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config of the HMM tagger on CoNLL-2000 (genjax.config's idiom). `arg` names the task,
  `pos` (the default: POS tags from words), `chunk` (chunk tags from gold POS tags) or
  `chunk_paired` (chunk|POS states), optionally followed by `,smoke` (the first 300 training
  sentences)."""
  from genjax import config as gconfig
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  tasks = [p for p in parts if p != "smoke"]
  if len(tasks) > 1 or any(t not in TASKS for t in tasks) or parts.count("smoke") > 1:
    raise ValueError(f"unknown config argument {arg!r}; expected one of {TASKS}, optionally "
                     "followed by ',smoke'")
  task = tasks[0] if tasks else "pos"
  target = "pos" if task == "pos" else "chunk"
  c = gconfig.fit_config("hmm_tagger", gconfig.dataset("conll2000"), {
      "target": target,
      "paired_states": task == "chunk_paired",
      "trans_k": 0.1,  # add-k smoothing of tag transitions
      "emit_k": 0.0,  # add-k smoothing of a tag's emissions of training words
      "rare_count": 10,  # words seen at most this often train the suffix model
      "max_suffix": 10,  # the longest suffix the unknown-word model looks at
      "max_train_sentences": 300 if "smoke" in parts else 0,  # 0: all 8,936
      # lambda of lambda * log p(x, y) + (1 - lambda) * log p(y | x): 1 counts, < 1 is L-BFGS.
      "joint_weight": 1.0,
      # L-BFGS. At joint_weight 0 on chunking, 100 gives the F1 of 390 (where float32 stops it):
      # 86.13 and 86.12, in 76 s instead of 1,252 s (its gradient norm is then 2e-4, not tol).
      "max_iterations": 100,
      "tol": 1e-6,  # L-BFGS stop: gradient norm of the per-token objective
      # > 0: Baum-Welch on the words alone from this many random starts (max_iterations EM
      # iterations each; tol on the per-token log-likelihood's gain), the tags naming states.
      "em_restarts": 0,
  })
  c.evals = evals_for(target)
  return c


@struct.dataclass
class TaggerState:
  hmm: H.HMM
  tagger: tagger_lib.Tagger = struct.field(pytree_node=False)
  target: str = struct.field(pytree_node=False, default="pos")
  paired_states: bool = struct.field(pytree_node=False, default=False)
  max_train_sentences: int = struct.field(pytree_node=False, default=0)
  joint_weight: float = struct.field(pytree_node=False, default=1.0)
  max_iterations: int = struct.field(pytree_node=False, default=100)
  tol: float = struct.field(pytree_node=False, default=1e-6)
  em_restarts: int = struct.field(pytree_node=False, default=0)


def observations(state_or_target, sentences) -> list[list[str]]:
  """What the HMM observes: words (pos) or POS tags (chunk)."""
  target = getattr(state_or_target, "target", state_or_target)
  return [list(s.words) if target == "pos" else list(s.pos) for s in sentences]


def _states(target: str, paired: bool, sentences) -> list[list[str]]:
  if target == "pos":
    return [list(s.pos) for s in sentences]
  if paired:
    return [[f"{c}|{p}" for c, p in zip(s.chunks, s.pos, strict=True)] for s in sentences]
  return [list(s.chunks) for s in sentences]


def train_sentences(train, max_train_sentences: int = 0) -> list:
  """The first `max_train_sentences` training sentences (0: all)."""
  n = max_train_sentences
  return train.sentences[:n] if n else train.sentences


def create_state(key: jax.Array, config: ml_collections.ConfigDict, train) -> TaggerState:
  """Vocabularies and suffix model of the training split; zeros of the HMM's shapes."""
  del key
  m = config.model
  if m.target not in TARGETS:
    raise ValueError(f"unknown model.target {m.target!r}; expected one of {TARGETS}")
  # A workdir recorded before joint_weight existed was fitted by counting: weight 1.
  joint_weight = hmm_hybrid.check_joint_weight(m.get("joint_weight", 1.0))
  em_restarts = int(m.get("em_restarts", 0))
  if em_restarts < 0 or (em_restarts and joint_weight != 1.0):
    raise ValueError(f"model.em_restarts must be 0 (supervised) or a number of Baum-Welch starts "
                     f"with model.joint_weight 1, got {em_restarts} at {joint_weight}")
  paired = bool(m.get("paired_states", False)) and m.target == "chunk"
  n = int(m.get("max_train_sentences", 0))
  sentences = train_sentences(train, n)
  # Chunking from POS has no unknown-word model: every POS tag is seen in training.
  rare, suffix = (m.rare_count, m.max_suffix) if m.target == "pos" else (0, 0)
  tagger = tagger_lib.Tagger(observations(m.target, sentences),
                             _states(m.target, paired, sentences), m.trans_k, m.emit_k, rare,
                             suffix, fit=False)
  return TaggerState(tagger.empty_hmm(), tagger, m.target, paired, n, joint_weight,
                     int(m.get("max_iterations", 100)), float(m.get("tol", 1e-6)), em_restarts)


def fit(state: TaggerState, train, key: jax.Array, log=None) -> TaggerState:
  """The HMM of the training split (the same sentences create_state saw): counted, or fitted to
  the blended objective by L-BFGS from the counts where joint_weight < 1 (`log` then gets the
  solver's iterations, evaluations, final objective and gradient norm), or by Baum-Welch from
  `key`'s random starts where em_restarts > 0 (the module docstring)."""
  sentences = train_sentences(train, state.max_train_sentences)
  if state.em_restarts:
    hmm, info = state.tagger.fit_unsupervised(
        observations(state, sentences), _states(state.target, state.paired_states, sentences),
        key, state.em_restarts, state.max_iterations, state.tol)
    if log is not None:
      for r, (ll, n) in enumerate(zip(info["log_likelihoods"], info["num_iterations"],
                                      strict=True)):
        log(r + 1, {"log_likelihood": float(ll), "num_iterations": float(n)})
      log(state.em_restarts + 1, {"best_start": float(info["best"]),
                                  "matched_accuracy": float(info["matched_accuracy"])})
    return state.replace(hmm=hmm)
  hmm, info = state.tagger.fit_blended(observations(state, sentences),
                                       _states(state.target, state.paired_states, sentences),
                                       state.joint_weight, state.max_iterations, state.tol)
  if info and log is not None:
    log(int(info["num_iterations"]), {k: float(v) for k, v in info.items()})
  return state.replace(hmm=hmm)


def predict_split(state: TaggerState, split) -> list[list[str]]:
  """Viterbi tags of every sentence of a SentenceSplit: POS tags, or chunk tags (the POS half
  of paired states dropped)."""
  # Paired states are many (about 320): smaller batches bound the Viterbi back-pointers.
  batch = 128 if state.paired_states else 512
  pred = state.tagger.decode(observations(state, split.sentences), batch=batch, hmm=state.hmm)
  if state.paired_states:
    pred = [[p.split("|")[0] for p in ps] for ps in pred]
  return pred


def unknown_words(state: TaggerState, split) -> list[list[bool]]:
  """Which observed tokens of each sentence the training split never showed."""
  return state.tagger.unknown(observations(state, split.sentences))
