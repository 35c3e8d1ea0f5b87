"""Deep Bayes classifier on dynamically binarised MNIST: a conditional VAE used by Bayes' rule.

The generative model p(y) p(z) p(x | y, z) is vae_cond_mnist's conditional VAE (the 784-400-20
ReLU MLP with the one-hot class appended to the encoder's and the decoder's input, Bernoulli
pixels); it classifies by p(y | x) proportional to p(y) p(x | y), with log p(x | y) the
importance-weighted bound of 100 samples per class (genjax.families.bayes_vae). The class
prior is the labelled examples' add-one smoothed frequencies. Adam lr 1e-3 (epsilon 1e-4),
batch 128, 20 epochs of the whole training split (9,360 updates, as vae_cond_mnist).

Arguments (`--config=...bayes_vae_mnist.py:ARG`):
  all             fully supervised on all 60,000 labels (the default);
  N               N balanced labels (data.num_labels), semi-supervised: each step adds an
                  unlabelled batch of 128 from the whole split, bounded by
                  logsumexp_y (log p(y) + ELBO(x, y)), to a labelled batch of min(128, N);
  N,supervised    supervised on the N labelled examples only, batches of min(128, N), for
                  the same 9,360 updates;
  ...,smoke       any of the above for 40 steps, classified with one sample per class
                  (seconds);
  fashion_mnist,...  any of the above on Fashion-MNIST (`mnist,...` is the default).

Run:
  python experiments/train.py --config=experiments/configs/bayes_vae_mnist.py --workdir=runs/bayes_vae_mnist
  python experiments/train.py --config=experiments/configs/bayes_vae_mnist.py:100 --workdir=runs/bayes_vae_mnist_100
  python experiments/train.py --config=experiments/configs/bayes_vae_mnist.py:100,supervised --workdir=runs/bayes_vae_mnist_100s
  python experiments/evaluate.py --workdir=runs/bayes_vae_mnist
Smoke test (seconds):
  python experiments/train.py --config=experiments/configs/bayes_vae_mnist.py:100,smoke --workdir=/tmp/bayes_vae

Measured (2-core CPU, shorter than this schedule): `100` (semi-supervised), 1,000 steps, 5 seeds
(experiments/label_efficiency.py --models=bayes_vae --labels=100 --steps=1000): 68.08 +- 1.15 %
test error; the decoder barely uses the class after so few steps. The full schedule has not
been run.

The generative / discriminative dial: `--config.model.joint_weight=LAMBDA` (in [0, 1], default
1: the generative model above) trains the labelled examples on
LAMBDA * (bound on log p(x, y)) + (1 - LAMBDA) * log p(y | x) by Bayes' rule, the bounds of every
class from the unlabelled term's batched pass (genjax.families.bayes_vae); 0 is the same networks
trained discriminatively. Each step then also bounds the labelled batch under all 10 classes.
  python experiments/train.py --config=experiments/configs/bayes_vae_mnist.py:100 --config.model.joint_weight=0.5 --workdir=runs/bayes_vae_mnist_100_w05
Measured, `100`, seed 0, 10 minutes of training each on the 2-core CPU shared with other jobs
(load average 9 to 15; --config.train.num_steps=1000000 stopped by SIGTERM at 600 s); test
error of the classification evaluator (classify_k = 100, as the figure above;
experiments/evaluate.py --evals=classification) and of eval_step's posterior with 10 samples
per class (--evals=metrics):
  LAMBDA 1:   1,171 steps, 66.33 % (log-loss 4.43, ECE 0.41); 10 samples: 69.63 %, and 70.98 %
              at its step-650 checkpoint;
  LAMBDA 0.5:   670 steps, 66.87 % (log-loss 3.79, ECE 0.38); 10 samples: 69.23 %.
In equal time the conditional term moves the error by less than the seeds' spread above and
lowers the log-loss by 0.6 nats; at about equal steps (10 samples) it gains 1.7 points, about
1.5 standard deviations of that spread. The labelled batches' mean log p(y | x) (metric
`log_posterior`) is -0.71 nats at step 468 while the test log-loss is above a uniform guess's
2.30: the posterior is overconfident on images it has not seen.
"""

import ml_collections

from genjax.families import bayes_vae, vae

# Its row in experiments/compare.py's table (genjax.studies reads it without importing).
CLASSIFIER = {"name": "deep Bayes classifier (conditional VAE)", "side": "generative",
              "datasets": ("mnist", "fashion_mnist"), "arg": "{dataset},all"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return bayes_vae.experiment_config(
      arg, model=bayes_vae.model_config(z_dims=(20,), hidden=((400,),), activation="relu",
                                        num_classes=10, class_prior="empirical",
                                        classify_k=100, classify_chunk=100, eval_classify_k=10),
      optim=vae.optim_config(1e-3), batch_size=128, num_epochs=20)
