"""The supervised HMM tagger on CoNLL-2000 (genjax.families.hmm_tagger).

The argument names the task: `pos` (the default: POS tags from words, bigram HMM with TnT's
suffix model for unknown words), `chunk` (chunk tags from gold POS tags, 23 chunk-tag states)
or `chunk_paired` (chunk|POS states, Molina & Pla 2002), optionally followed by `,smoke` (the
first 300 training sentences: seconds).

Run (figures on the CoNLL-2000 test section, docs/results.md and docs/structured.md):
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

from genjax.families import hmm_tagger


def get_config(arg: str | None = None):
  return hmm_tagger.experiment_config(arg)
