"""The linear-chain CRF chunker on CoNLL-2000 (genjax.families.crf_chunker).

No argument: L-BFGS on sparse state features (genjax.structured.crf_sparse) with the c2 selected
by experiments/crf_select.py on all 8,936 training sentences, test chunk F1 93.68 (c2 = 0.1,
158 iterations, 187 evaluations, 38 s on the quiet 2-core CPU). The selection held out the last
10% of train.txt; dev F1 by c2: 0.05: 94.44, 0.1: 94.59, 0.25: 94.54, 0.5: 94.45, 1: 94.27.
(Before the selection, dense features with l2 = 0.5 gave test F1 93.74.)
`smoke`: the first 300 training sentences and 20 L-BFGS iterations (seconds).

Run:
  python experiments/train.py --config=experiments/configs/crf_chunker.py --workdir=runs/crf_chunker
  python experiments/train.py --config=experiments/configs/crf_chunker.py --workdir=runs/crf_adam \
      --config.model.optimizer=adam --config.model.l2=1.0    # Adam, 15 epochs: 93.49
"""

from genjax import config as gconfig

# c2 selected by experiments/crf_select.py on the last 10% of train.txt (see the docstring).
SELECTED_L2 = 0.1


def get_config(arg: str | None = None):
  if arg not in (None, "smoke"):
    raise ValueError(f"unknown config argument {arg!r}; expected 'smoke' or nothing")
  smoke = arg == "smoke"
  return gconfig.fit_config("crf_chunker", gconfig.dataset("conll2000"), {
      "optimizer": "lbfgs",  # lbfgs (full batch) | adam (mini-batches of chunk_tokens)
      # L-BFGS: sparse = weights only for (attribute, label) pairs seen in training (CRFsuite's
      # default, genjax.structured.crf_sparse) | dense = every pair
      "features": "sparse",
      "l2": SELECTED_L2,  # c2 of sum NLL + c2 ||theta||^2 (CRFsuite's objective)
      "l1": 0.0,  # Adam only, by a proximal step
      "min_count": 1,  # keep feature strings seen at least this often in training
      "hash_buckets": 0,  # > 0: hash features into this many rows instead of a vocabulary
      "max_iterations": 20 if smoke else 500,  # L-BFGS
      "max_seconds": float("inf"),  # L-BFGS wall-time budget (stops unconverged)
      "delta": 1e-5,  # L-BFGS stop: relative improvement over `period` iterations
      "period": 10,
      "epochs": 15,  # Adam
      "learning_rate": 0.05,  # Adam
      "num_buckets": 4,  # length buckets (padding shapes)
      "chunk_tokens": 16384,  # padded tokens per chunk of sentences (memory bound)
      "max_train_sentences": 300 if smoke else 0,  # 0: all
  })
