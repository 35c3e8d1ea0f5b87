"""Time to accuracy: the small CNN (configs/cnn_mnist.py) trained from scratch to 99.0 % MNIST test.

  python experiments/benchmark.py --model=cnn_time_to_99 --json

One run, in this process, on the default device: the config's network and optimiser on a
shorter cosine schedule (`NUM_STEPS`), the training split held on the device and drawn by the
generic loop's fused step (genjax.train.make_loop_step), the whole test split evaluated every
`EVAL_EVERY` steps from step `EVAL_FROM` on. The clock starts once the data is in memory and
stops at the first evaluation at or above the target: `seconds` includes creating the state,
every compilation, the training steps and the evaluations themselves (`eval_seconds` of it).
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
EVAL_BATCH = 1000

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "cnn_mnist.py")


def _test_accuracy_fn(family, test_images_u8, test_labels, preprocess_mode: str):
  """A jitted `state -> accuracy` over the whole test split (held on the device)."""
  import jax
  import jax.numpy as jnp

  from genjax.data import images as image_data
  n = len(test_labels)
  if n % EVAL_BATCH:
    raise ValueError(f"the test split's {n} examples are not a multiple of {EVAL_BATCH}")
  x = jnp.asarray(test_images_u8).reshape(n // EVAL_BATCH, EVAL_BATCH, *test_images_u8.shape[1:])
  y = jnp.asarray(test_labels, jnp.int32).reshape(n // EVAL_BATCH, EVAL_BATCH)
  key = jax.random.key(0)  # unused by the classifier's deterministic eval_step

  @jax.jit
  def accuracy(state):
    def batch_accuracy(xy):
      batch = {"image": image_data.preprocess(xy[0], preprocess_mode, key), "label": xy[1]}
      return family.eval_step(state, batch, key)["accuracy"]
    return jnp.mean(jax.lax.map(batch_accuracy, (x, y)))

  return accuracy


def time_to_accuracy(overrides: dict | None = None, target: float = TARGET,
                     num_steps: int = NUM_STEPS, eval_from: int = EVAL_FROM,
                     eval_every: int = EVAL_EVERY) -> dict:
  """Train configs/cnn_mnist.py (with dotted-field `overrides`) for up to `num_steps` steps
  (the cosine schedule's length), evaluating the test accuracy every `eval_every` steps from
  `eval_from` on and at the end; stop at the first evaluation >= `target`.

  Returns {"reached", "seconds", "steps", "test_accuracy", "eval_seconds", "evaluations",
  "data_seconds", ...}; `seconds` and `steps` are those of the first evaluation at or above
  the target (or of the end of the schedule when it never gets there).
  """
  import jax

  from genjax import config as gconfig
  from genjax import train
  from genjax.data import pipeline
  from genjax.parallel import DataParallel

  config = gconfig.load(CONFIG)
  config.unlock()
  config.train.num_steps = num_steps
  for dotted, value in (overrides or {}).items():
    section, name = dotted.split(".")
    if name not in config[section]:
      raise KeyError(f"unknown config field {dotted!r}")
    config[section][name] = value

  t_data = time.perf_counter()
  train_arrays, test_arrays = train.load_split(config, "train"), train.load_split(config, "test")
  family = train.load_family(config.family)
  dp = DataParallel("none")
  keys = train.RunKeys.from_seed(config.seed)
  source = pipeline.make_input(config, dp, keys.data, train_arrays)
  test_accuracy = _test_accuracy_fn(family, test_arrays.images, test_arrays.labels,
                                    config.data.preprocess)
  jax.block_until_ready(source.args(0))
  data_seconds = time.perf_counter() - t_data

  load_before = os.getloadavg()[0]
  start, cpu_start = time.perf_counter(), time.process_time()
  state = family.create_state(keys.init, config)
  loop_step = dp.wrap(train.make_loop_step(family, source), "rrrr" + source.kinds, "rr",
                      donate_argnums=(0, 1))
  metric_shapes = {"loss": None, "accuracy": None}
  acc = train._zero_accumulator(metric_shapes)
  eval_seconds, evaluations, accuracy, step = 0.0, [], 0.0, 0
  while step < num_steps:
    state, acc = loop_step(state, acc, keys.train, keys.data, *source.args(step))
    step += 1
    if (step >= eval_from and step % eval_every == 0) or step == num_steps:
      t = time.perf_counter()
      accuracy = float(test_accuracy(state))  # waits for the steps before it
      eval_seconds += time.perf_counter() - t
      evaluations.append({"step": step, "seconds": time.perf_counter() - start,
                          "test_accuracy": accuracy})
      if accuracy >= target:
        break
  seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
  return {"reached": accuracy >= target, "target": target, "seconds": seconds, "steps": step,
          "epochs": step / source.steps_per_epoch, "test_accuracy": accuracy,
          "eval_seconds": eval_seconds, "train_seconds": seconds - eval_seconds,
          "schedule_steps": num_steps, "batch": config.data.batch_size,
          "cpu_seconds": cpu_seconds, "cpus": os.cpu_count(),
          "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
          "data_seconds": data_seconds, "backend": jax.default_backend(),
          "evaluations": evaluations}


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
