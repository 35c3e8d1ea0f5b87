"""Linear discriminant analysis (Gaussian classes, one shared covariance shrunk towards a
multiple of the identity): genjax.classical.lda as a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features standardised. Hyper-parameters: on the image sets
shrinkage=0.3, the value the figure of docs/results.md picked on held-out training images
(experiments/generative_samples.py --shrinkage_grid) before refitting on all 60,000; on the
UCI sets the default 1e-3.

Run:
  python experiments/train.py --config=experiments/configs/lda.py:mnist --workdir=runs/lda_mnist
  python experiments/evaluate.py --workdir=runs/lda_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.8791; Fashion-MNIST 0.8157.

Objective: `--config.model.joint_weight=L` (default 1) fits the same parameters to
L log p(x, y) + (1 - L) log p(y | x) (genjax.classical.hybrid): 1 is the closed form above; below
1, L-BFGS from it on the class means, the covariance's Cholesky factor (log diagonal) and the
prior logits, the shrinkage kept as an inverse-Wishart-like prior, for at most
`--config.model.max_iter` iterations (default 200). MNIST, test split (load average 11-14):

  python experiments/train.py --config=experiments/configs/lda.py:mnist --config.model.joint_weight=0 --workdir=runs/lda_mnist_jw0

  joint_weight 1:   accuracy 0.8791, log-loss 0.712, fit 9 s
  joint_weight 0.5: accuracy 0.8942, log-loss 0.622, fit 39 s (converged, 39 iterations)
  joint_weight 0:   accuracy 0.9107, log-loss 0.524, fit 195 s (stopped at 200 iterations)
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "LDA", "side": "generative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="lda", image_hp={"shrinkage": 0.3})
