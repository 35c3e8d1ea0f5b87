"""Time to accuracy: the small CNN (configs/cnn_mnist.py) trained from scratch to 99.0 % MNIST test.

  python experiments/benchmark.py --model=cnn_time_to_99 --json

One run, in this process, on the default device, through the generic loop
(genjax.train.train_and_evaluate): the config's network and optimiser on a shorter cosine
schedule (`NUM_STEPS`), the whole test split evaluated by the loop every `EVAL_EVERY` steps
from step `EVAL_FROM` on (train.eval_every, train.eval_from), training stopped at the first
evaluation at or above the target. The clock starts when the loop is called and stops at that
evaluation: `seconds` includes reading the (cached) splits, creating the state, every
compilation, the training steps and the evaluations themselves.
On a shared machine wall time counts other processes' work too: `cpu_seconds` (this process's
CPU time over the same span) and the load averages before and after say how much.
The timing arguments of the benchmark CLI (windows, window_seconds, peak_size) do not apply.
"""

import os
import time

TARGET = 0.99
NUM_STEPS = 1404  # three epochs of 468 batches of 128: the length of the cosine schedule
EVAL_FROM = 819  # 1.75 epochs: the first crossings come late in the schedule
EVAL_EVERY = 117  # a quarter epoch

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "cnn_mnist.py")


def time_to_accuracy(overrides: dict | None = None, target: float = TARGET,
                     num_steps: int = NUM_STEPS, eval_from: int = EVAL_FROM,
                     eval_every: int = EVAL_EVERY) -> dict:
  """Train configs/cnn_mnist.py (with dotted-field `overrides`) through the generic loop for up
  to `num_steps` steps (the cosine schedule's length), the loop evaluating the test accuracy
  every `eval_every` steps from `eval_from` on (train.eval_every / eval_from); stop at the first
  evaluation >= `target`.

  Returns {"reached", "seconds", "steps", "test_accuracy", "evaluations", "data_seconds", ...};
  `seconds` and `steps` are those of the first evaluation at or above the target (or of the
  last evaluation when it never gets there).
  """
  import tempfile

  import jax

  from genjax import config as gconfig
  from genjax import train

  config = gconfig.load(CONFIG)
  config.unlock()
  settings = {"train.num_steps": num_steps, "train.eval_every": eval_every,
              "train.eval_from": eval_from, "train.eval_split": "test",
              "train.log_every": eval_every, "train.checkpoint_every": num_steps * eval_every,
              "train.progress": False, "train.tensorboard": False, **(overrides or {})}
  for dotted, value in settings.items():
    section, name = dotted.split(".")
    config[section][name] = value

  # Read the splits once so the timed run finds them in the page cache; the loop reads them
  # again inside the clock (data_seconds says how long that takes on its own).
  t_data = time.perf_counter()
  for split in ("train", "test"):
    train.load_split(config, split)
  data_seconds = time.perf_counter() - t_data

  evaluations = []
  load_before = os.getloadavg()[0]
  start, cpu_start = time.perf_counter(), time.process_time()

  def on_eval(step: int, metrics: dict) -> bool:
    evaluations.append({"step": step, "seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - cpu_start,
                        "test_accuracy": float(metrics["accuracy"])})
    return metrics["accuracy"] >= target

  with tempfile.TemporaryDirectory() as workdir:
    train.train_and_evaluate(config, workdir, on_eval=on_eval)
  last = evaluations[-1] if evaluations else {"step": 0, "seconds": float("nan"),
                                              "cpu_seconds": float("nan"),
                                              "test_accuracy": 0.0}
  return {"reached": last["test_accuracy"] >= target, "target": target,
          "seconds": last["seconds"], "steps": last["step"],
          "epochs": last["step"] / (60_000 // config.data.batch_size),
          "test_accuracy": last["test_accuracy"], "schedule_steps": num_steps,
          "batch": config.data.batch_size, "cpu_seconds": last["cpu_seconds"],
          "cpus": os.cpu_count(), "load_average_before": load_before,
          "load_average_after": os.getloadavg()[0], "data_seconds": data_seconds,
          "backend": jax.default_backend(), "evaluations": evaluations}


def cnn_time_to_99(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Seconds from a fresh state to 99.0 % MNIST test accuracy (one run; see the module)."""
  del windows, window_seconds, peak_size  # one timed run, not windows of a repeated call
  return time_to_accuracy()


def classifier_step_flops(config) -> int:
  """Analytic FLOPs of one classifier train step of a config with `model.arch` mlp, lenet5 or
  cnn (square images): forward, weight gradients of every layer and input gradients of every
  layer but the first, 2 * B * (3 * sum(layer MACs) - first layer MACs). The entries
  mlp_mnist, lenet5_mnist and cnn_mnist of experiments/benchmark.py's BENCHMARKS use it."""
  from genjax.flops import conv_macs, dense_layer_macs
  m = config.model
  size, _, channels = config.data.image_shape
  if m.arch == "mlp":
    layers = dense_layer_macs((size * size * channels, *m.hidden, m.num_classes))
  elif m.arch == "lenet5":
    # C1 keeps the size ('SAME'); C3 is 'VALID': (size/2 - 4) squared outputs.
    c3 = size // 2 - 4
    layers = [conv_macs(size, size, 5, channels, 6), conv_macs(c3, c3, 5, 6, 16),
              (c3 // 2) ** 2 * 16 * 120, 120 * 84, 84 * m.num_classes]
  elif m.arch == "cnn":
    layers = []
    for width in m.widths:
      for _ in range(m.convs_per_stage):
        layers.append(conv_macs(size, size, 3, channels, width))
        channels = width
      size //= 2
    layers += [size * size * channels * m.hidden, m.hidden * m.num_classes]
  else:
    raise ValueError(f"no FLOP count for classifier architecture {m.arch!r}")
  return 2 * config.data.batch_size * (3 * sum(layers) - layers[0])


TASKS = {"cnn_time_to_99": cnn_time_to_99}
