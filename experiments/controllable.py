"""Controllable generation from a trained GAN: ascend latents toward a classifier's target feature.

  python experiments/controllable.py --workdir=runs/dcgan_mnist --target=8 --steps=150
  python experiments/controllable.py --workdir=runs/dcgan_fashion_mnist --target=8 \
      --steps=200 --step_size=0.1 --penalty_weight=0.3
  python experiments/controllable.py --workdir=runs/dcgan_mnist --target=3 \
      --classifier_workdir=runs/domain_cnn_mnist

The classifier is the run's dataset's shipped domain classifier (`--classifier=domain`), or
any run of the classifier family (`--classifier_workdir`); its outputs score the images (see
genjax.controllable). A softmax classifier is read through its log probabilities by default
(`--features=log_probs`): raising a class's raw logit alone often stalls with the other logits
still higher, raising its log probability also lowers them. `--multi_label` (attribute
classifiers, e.g. CelebA's) reads raw logits, each an attribute's log-odds.

Writes <workdir>/controllable/: before.png and after.png (one image per latent, before and
after the ascent), path.png (rows: a few latents; columns: evenly spaced steps from the first
to the last) and controllable.json (the diagnostics, with and without the penalty when it is
positive, and their per-step curves).

Conditional GANs are refused: their class is an input already, which is the direct way to
control it.
"""

import functools
import json
import os

from absl import app, flags, logging

from genjax import cli

flags.DEFINE_string("workdir", None, "A trained GAN run (holds config.json and checkpoints/).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("target", None, "The class (or feature) index to ascend toward.")
flags.DEFINE_integer("num", 16, "How many latents (images).")
flags.DEFINE_integer("steps", 100, "Gradient-ascent updates.")
flags.DEFINE_float("step_size", 0.02, "z <- z + step_size * grad.")
flags.DEFINE_float("penalty_weight", 0.1, "Weight of the other features' change (0: none).")
flags.DEFINE_integer("seed", 0, "Seed of the starting latents.")
flags.DEFINE_enum("classifier", "domain", ["domain"],
                  "The shipped domain classifier of the run's dataset (unless "
                  "--classifier_workdir is given).")
flags.DEFINE_string("classifier_workdir", None, "A classifier-family run to score with instead.")
flags.DEFINE_bool("multi_label", False, "Read the logits as independent sigmoids (attributes).")
flags.DEFINE_enum("features", "auto", ["auto", "logits", "log_probs"],
                  "What the score reads as the F features: the classifier's logits, or its log "
                  "softmax probabilities; auto: log_probs for a softmax classifier, logits with "
                  "--multi_label.")
flags.DEFINE_bool("ema", False, "Use the generator's EMA weights.")
flags.DEFINE_integer("path_rows", 6, "Latents shown in path.png.")
flags.DEFINE_integer("path_cols", 8, "Steps shown in path.png.")
flags.DEFINE_integer("zoom", 1, "Pixel repetition of the saved grids (nearest neighbour).")
flags.mark_flags_as_required(["workdir", "target"])
FLAGS = flags.FLAGS

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                      "sneaker", "bag", "ankle boot"],
}


def check_unconditional(config) -> None:
  """Raise ValueError for a conditional GAN (or any run that is not a GAN)."""
  if config.family != "gan":
    raise ValueError(f"--workdir must be a GAN run, not a {config.family!r} run")
  if config.model.get("num_classes", 0):
    raise ValueError("this is a conditional GAN (model.num_classes = "
                     f"{config.model.num_classes}): its class is an input already, so set the "
                     "label instead of ascending z; controllable generation here is for "
                     "unconditional generators")


def classifier_input(images01, mode: str):
  """[0, 1] images in the range a classifier was trained on (its data.preprocess).

  Binarised modes get the continuous image: thresholding or sampling would have no gradient.
  """
  return 2.0 * images01 - 1.0 if mode == "symmetric" else images01


def load_classifier(gan_config):
  """(flax module, variables, input preprocess mode, class names or None, description)."""
  if FLAGS.classifier_workdir:
    from genjax import family as family_lib
    from genjax import train
    _, config, state = train.restore_for_eval(FLAGS.classifier_workdir)
    if family_lib.ALIASES.get(config.family, config.family) != "neural_classifier":
      raise ValueError(f"--classifier_workdir must be a classifier run, not {config.family!r}")
    if tuple(config.data.image_shape) != tuple(gan_config.data.image_shape):
      raise ValueError(f"the classifier takes {tuple(config.data.image_shape)} images, the GAN "
                       f"makes {tuple(gan_config.data.image_shape)}")
    names = CLASS_NAMES.get(config.data.name)
    return (state.model.module, state.model.variables, config.data.preprocess, names,
            f"workdir:{os.path.abspath(FLAGS.classifier_workdir)}")
  from genjax.metrics import domain
  clf = domain.load(gan_config.data.name)
  if clf.image_shape != tuple(gan_config.data.image_shape):
    raise ValueError(f"the domain classifier takes {clf.image_shape} images, the GAN makes "
                     f"{tuple(gan_config.data.image_shape)}")
  return (clf.module, clf.variables, "unit", CLASS_NAMES.get(clf.dataset),
          f"domain:{clf.dataset}")


def summary(diags: dict) -> dict:
  """Before/after figures from `ascend`'s per-step diagnostics."""
  d = {k: [float(v) for v in values] for k, values in diags.items()}
  return {
      "success_before": d["success"][0], "success_after": d["success"][-1],
      "target_prob_before": d["target_prob"][0], "target_prob_after": d["target_prob"][-1],
      "target_logit_before": d["target_logit"][0], "target_logit_after": d["target_logit"][-1],
      "other_change_after": d["other_change"][-1],
      "per_step": d,
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  import jax
  import ml_collections
  import numpy as np

  from genjax import controllable, rng, train, writers
  from genjax.data import images as image_data
  from genjax.families import gan

  with open(os.path.join(FLAGS.workdir, "config.json")) as f:
    # Refuse a conditional GAN before building and restoring its state (seconds on a CPU).
    check_unconditional(ml_collections.ConfigDict(json.load(f)))
  _, config, state = train.restore_for_eval(FLAGS.workdir, FLAGS.step)
  module, variables, clf_mode, names, clf_desc = load_classifier(config)
  num_features = jax.eval_shape(
      lambda v: module.apply(v, np.zeros((1, *config.data.image_shape), np.float32),
                             train=False), variables).shape[-1]
  if not 0 <= FLAGS.target < num_features:
    raise app.UsageError(f"--target must be in [0, {num_features}), got {FLAGS.target}")
  if FLAGS.num <= 0 or FLAGS.steps < 0 or FLAGS.zoom <= 0:
    raise app.UsageError("--num and --zoom must be positive, --steps non-negative")
  features = FLAGS.features
  if features == "auto":
    features = "logits" if FLAGS.multi_label else "log_probs"
  if FLAGS.multi_label and features == "log_probs":
    raise app.UsageError("--features=log_probs normalises over classes: it needs a softmax "
                         "classifier, not --multi_label")
  mode = config.data.preprocess

  def generate(gan_state, z):  # images in [0, 1]
    return image_data.postprocess(gan.generate(gan_state, z, ema=FLAGS.ema), mode)

  @functools.partial(jax.jit, static_argnames="steps")
  def run(gan_state, clf_variables, z0, target, step_size, penalty_weight, steps):
    def logits_fn(images01):
      logits = module.apply(clf_variables, classifier_input(images01, clf_mode), train=False)
      return jax.nn.log_softmax(logits) if features == "log_probs" else logits
    return controllable.ascend(functools.partial(generate, gan_state), logits_fn, z0, target,
                               steps=steps, step_size=step_size, penalty_weight=penalty_weight,
                               multi_label=FLAGS.multi_label)

  z0 = rng.normal(jax.random.key(FLAGS.seed), FLAGS.num, (state.hparams.z_dim,))
  args = (state, variables, z0, FLAGS.target, FLAGS.step_size)
  z_path, diags = run(*args, FLAGS.penalty_weight, steps=FLAGS.steps)
  results = {
      "workdir": os.path.abspath(FLAGS.workdir), "step": int(state.step),
      "classifier": clf_desc, "target": FLAGS.target,
      "target_name": names[FLAGS.target] if names and FLAGS.target < len(names) else None,
      "num": FLAGS.num, "steps": FLAGS.steps, "step_size": FLAGS.step_size,
      "penalty_weight": FLAGS.penalty_weight, "seed": FLAGS.seed,
      "multi_label": FLAGS.multi_label, "features": features, "ema": FLAGS.ema,
      **summary(jax.device_get(diags)),
  }
  if FLAGS.penalty_weight > 0:  # the same latents without the penalty, for comparison
    results["no_penalty"] = summary(jax.device_get(run(*args, 0.0, steps=FLAGS.steps)[1]))

  out = os.path.join(FLAGS.workdir, "controllable")

  def save_grid(name, images, ncol):
    grid = writers.image_grid(images, ncol)
    grid = np.repeat(np.repeat(grid, FLAGS.zoom, axis=0), FLAGS.zoom, axis=1)
    writers.save_png(os.path.join(out, name), grid)

  generate_jit = jax.jit(generate)
  before, after = (np.asarray(jax.device_get(generate_jit(state, z))) for z in
                   (z_path[0], z_path[-1]))
  ncol = int(np.ceil(np.sqrt(FLAGS.num)))
  save_grid("before.png", before, ncol)
  save_grid("after.png", after, ncol)
  rows = min(FLAGS.path_rows, FLAGS.num)
  cols = np.unique(np.linspace(0, FLAGS.steps, min(FLAGS.path_cols, FLAGS.steps + 1))
                   .round().astype(int))
  z_grid = np.asarray(z_path)[cols][:, :rows].transpose(1, 0, 2)  # (rows, cols, Z)
  path = generate_jit(state, z_grid.reshape(rows * len(cols), -1))
  save_grid("path.png", np.asarray(jax.device_get(path)), len(cols))
  results["path_steps"] = [int(c) for c in cols]
  writers.write_json(os.path.join(out, "controllable.json"), results)

  def line(s):
    return (f"success {s['success_before']:.3f} -> {s['success_after']:.3f}, "
            f"P(target) {s['target_prob_before']:.3f} -> {s['target_prob_after']:.3f}, "
            f"other-feature change {s['other_change_after']:.3f}")
  print(f"target {FLAGS.target} ({results['target_name']}), penalty {FLAGS.penalty_weight}: "
        f"{line(results)}")
  if "no_penalty" in results:
    print(f"target {FLAGS.target} ({results['target_name']}), penalty 0: "
          f"{line(results['no_penalty'])}")
  print(f"wrote {out}/{{before,after,path}}.png and controllable.json")


if __name__ == "__main__":
  cli.run(main)
