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

from genjax.families import crf_chunker

# c2 selected by experiments/crf_select.py on the last 10% of train.txt (see the docstring).
SELECTED_L2 = 0.1


def get_config(arg: str | None = None):
  return crf_chunker.experiment_config(arg, l2=SELECTED_L2)
