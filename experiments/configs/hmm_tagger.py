"""The supervised HMM tagger on CoNLL-2000 (genjax.families.hmm_tagger).

The argument names the task: `pos` (the default: POS tags from words, bigram HMM with TnT's
suffix model for unknown words), `chunk` (chunk tags from gold POS tags, 23 chunk-tag states)
or `chunk_paired` (chunk|POS states, Molina & Pla 2002), optionally followed by `,smoke` (the
first 300 training sentences: seconds).

Run (figures on the CoNLL-2000 test section, README.md and docs/structured.md):
  python experiments/train.py --config=experiments/configs/hmm_tagger.py:pos --workdir=runs/hmm_pos
    # token accuracy 96.90 % (unknown words 81.83 %, known 98.03 %)
  python experiments/train.py --config=experiments/configs/hmm_tagger.py:chunk --workdir=runs/hmm_chunk
    # chunk F1 83.54
  python experiments/train.py --config=experiments/configs/hmm_tagger.py:chunk_paired --workdir=runs/hmm_chunk_paired
    # chunk F1 88.18

`--config.model.joint_weight=LAMBDA` trains the same HMM on LAMBDA * log p(x, y) + (1 - LAMBDA) *
log p(y | x) by L-BFGS (genjax.structured.hmm_hybrid; 1, the default, is the counted HMM above).
Measured on 2 CPU cores shared with other jobs (load average 10-16), fit_seconds compilation
included, test figures. LAMBDA = 0 stops at the default max_iterations=100 with a gradient norm
of 2e-4; with 500, chunking runs 390 iterations, to float32's resolution, in 1,252 s for the
same F1 (86.12):
  python experiments/train.py --config=experiments/configs/hmm_tagger.py:chunk --config.model.joint_weight=0.5 --workdir=runs/hmm_chunk_w0.5
    # chunk F1 83.54 / 85.18 / 86.13 at LAMBDA 1 / 0.5 / 0; fit 5 s / 34 s (13 iterations) / 76 s
  python experiments/train.py --config=experiments/configs/hmm_tagger.py:pos --config.model.joint_weight=0.5 --workdir=runs/hmm_pos_w0.5
    # token accuracy 96.90 / 97.12 / 97.25 % (unknown words 81.83 / 82.04 / 80.65 %) at LAMBDA 1 /
    # 0.5 / 0; fit 8 s / 50 s (19 iterations) / 120 s
"""

from genjax import config as gconfig
from genjax.families import hmm_tagger

TASKS = ("pos", "chunk", "chunk_paired")


def get_config(arg: str | None = None):
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
  c.evals = hmm_tagger.evals_for(target)
  return c
