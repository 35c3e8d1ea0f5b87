"""Gaussian naive Bayes (var_smoothing 1e-9, scikit-learn's): genjax.classical.gaussian_nb as
a config of the classical fit family.

The argument names the dataset (`mnist`, the default; `fashion_mnist`, `iris`, `wine`,
`breast_cancer`, `digits`), optionally followed by `,smoke` (an image set fitted on a seeded
1,000-row training subset, seconds on a CPU; the UCI sets are their own smoke).

Inputs: pixels in [0, 1]; UCI features raw (the model is scale-free). Hyper-parameters:
the defaults.

Run:
  python experiments/train.py --config=experiments/configs/gaussian_nb.py:mnist --workdir=runs/gaussian_nb_mnist
  python experiments/evaluate.py --workdir=runs/gaussian_nb_mnist

Expected (docs/results.md, test split): MNIST accuracy 0.5558 (scikit-learn's GaussianNB gives the
same); Fashion-MNIST 0.5856.

Objective: `--config.model.joint_weight=L` (default 1) fits the same parameters to
L log p(x, y) + (1 - L) log p(y | x) (genjax.classical.hybrid): 1 is the closed form above; below
1, L-BFGS from it on the means, log-variances and prior logits, the smoothing kept as a prior
(-n_c epsilon / (2 var) per class and feature), for at most `--config.model.max_iter`
iterations (default 200; on MNIST the fit stops there, unconverged, in 2-5 minutes on 2 busy
cores). MNIST, test split (load average 13-16); the log-losses are those of test pixels that
are constant in a class's training images (variance epsilon, 2e-10):

  python experiments/train.py --config=experiments/configs/gaussian_nb.py:mnist --config.model.joint_weight=0 --workdir=runs/gaussian_nb_mnist_jw0

  joint_weight 1:   accuracy 0.5558, log-loss 4.0e6, fit 5 s
  joint_weight 0.5: accuracy 0.7733, log-loss 2.4e6, fit 141 s
  joint_weight 0:   accuracy 0.9185, log-loss 2126, fit 264 s (max_iter=500: 0.9279, 1038, 569 s)
"""

from genjax.families import classical

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "Gaussian naive Bayes", "side": "generative"}


def get_config(arg: str | None = None):
  return classical.experiment_config(arg, name="gaussian_nb")
