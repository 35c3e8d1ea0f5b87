"""Throughput of a model's train step, as a fraction of this machine's float32 matmul peak.

  python experiments/benchmark.py --model=gan_mnist --json

Reports steps/s and examples/s (medians over timed windows after warm-up) with a
constant batch and with real batches drawn by the in-memory input pipeline, the
step's useful FLOPs (counted analytically from the layer shapes), the achieved
GFLOP/s, and the float32 matmul peak measured in the same process.
"""

import dataclasses
import inspect
import json
import os
from collections.abc import Callable

import numpy as np
from absl import app, flags, logging

from genjax import cli

flags.DEFINE_string("model", "gan_mnist",
                    "Entry: a train step of BENCHMARKS or a task of experiments/benchmarks.")
flags.DEFINE_bool("json", False, "Print one JSON line instead of a table.")
flags.DEFINE_integer("windows", 7, "Timed windows; the median is reported.")
flags.DEFINE_float("window_seconds", 1.0, "Approximate length of each timed window.")
flags.DEFINE_integer("peak_size", 2048, "Side of the square matmul that measures the peak.")
flags.DEFINE_integer("population", 1,
                     "> 1: also time that many members as one vmapped step (genjax.population) "
                     "against as many single steps one after another.")
flags.DEFINE_integer("steps_per_dispatch", 1,
                     "> 1: also time the loop's real-data step that many steps per compiled call "
                     "(train.steps_per_dispatch) against one step per call.")
flags.DEFINE_bool("peers", False,
                  "Tasks with a peer library (scikit-learn, CRFsuite, hmmlearn; the `bench` "
                  "extra): time it on the same data, alternating with genjax, and report both.")
flags.DEFINE_integer("repeats", 3, "Runs of each side for --peers tasks; medians are reported.")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Entry:
  """A benchmark: a config and the analytic FLOPs of one train step under it."""

  config: str
  # config -> FLOPs per step, counted from the layer shapes; None: the traced step's matrix
  # products (genjax.flops.traced_dot_flops), exact for a step with no scan or custom VJP.
  flops: Callable | None = None


def _gan_flops(config) -> int:
  from genjax.flops import gan_step_flops
  h, z = config.model.hidden_dim, config.model.z_dim
  pixels = int(np.prod(config.data.image_shape))
  return gan_step_flops((z, h, 2 * h, 4 * h, 8 * h, pixels), (pixels, 4 * h, 2 * h, h, 1),
                        config.data.batch_size)


def _dcgan_flops(config) -> int:
  from genjax.flops import dcgan_layer_macs, gan_step_flops_from_layers
  m = config.model
  channels = config.data.image_shape[2]
  g, d = dcgan_layer_macs(m.z_dim + m.num_classes, m.hidden_dim, channels,
                          channels + m.num_classes, m.d_hidden_dim if m.d_hidden_dim > 0 else 16)
  penalties = int(m.gp_weight > 0) + int(m.r1_weight > 0)
  return gan_step_flops_from_layers(g, d, config.data.batch_size, m.n_critic, penalties)


def _vae_flops(config) -> int:
  from genjax.flops import vae_step_flops
  m = config.model
  pixels = int(np.prod(config.data.image_shape))
  hidden = tuple(m.hidden[0])
  return vae_step_flops((pixels, *hidden, 2 * m.z_dims[0]), (m.z_dims[0], *hidden[::-1], pixels),
                        config.data.batch_size, m.k)


def _classifier_flops(config) -> int:
  from benchmarks.cnn import classifier_step_flops
  return classifier_step_flops(config)


BENCHMARKS = {
    "gan_mnist": Entry("configs/gan_mnist.py", _gan_flops),
    "dcgan_mnist": Entry("configs/dcgan_mnist.py", _dcgan_flops),
    "wgan_gp_mnist": Entry("configs/wgan_gp_mnist.py", _dcgan_flops),
    "cgan_mnist": Entry("configs/cgan_mnist.py", _dcgan_flops),
    "mlp_mnist": Entry("configs/mlp_mnist.py", _classifier_flops),
    "lenet5_mnist": Entry("configs/lenet5_mnist.py", _classifier_flops),
    "cnn_mnist": Entry("configs/cnn_mnist.py", _classifier_flops),
    "vae_mnist": Entry("configs/vae_mnist.py", _vae_flops),
    "iwae_mnist": Entry("configs/iwae_mnist.py", _vae_flops),
    "vae_burda1": Entry("configs/vae_burda1.py", _vae_flops),  # batch 20: dispatch-bound on CPU
    # Semi-supervised steps: an unlabelled and a labelled batch per step.
    "ssgan_mnist": Entry("configs/ssgan_mnist.py"),
    "m2_mnist": Entry("configs/m2_mnist.py"),
    # The deep Bayes classifier's step at its default, all labels (a supervised batch).
    "bayes_vae_mnist": Entry("configs/bayes_vae_mnist.py"),
}


def load_config(entry: Entry):
  from genjax.config import load
  return load(os.path.join(os.path.dirname(os.path.abspath(__file__)), entry.config))


def matmuls_only_fn(jaxpr) -> Callable[[], object]:
  """The step's matrix products, same shapes, run back to back with nothing else: the
  ceiling for the step on this machine's matmul kernels."""
  import jax

  from genjax.flops import traced_dots
  dots = traced_dots(jaxpr)
  operands = [(jax.random.normal(jax.random.key(2 * i), lhs.shape, lhs.dtype),
               jax.random.normal(jax.random.key(2 * i + 1), rhs.shape, rhs.dtype))
              for i, (lhs, rhs, _) in enumerate(dots)]
  numbers = [params["dimension_numbers"] for _, _, params in dots]

  @jax.jit
  def products(operands):
    # Summing each product keeps it live without adding work of the product's size.
    return sum(jax.lax.dot_general(a, b, dn).sum() for (a, b), dn in zip(operands, numbers,
                                                                         strict=True))

  return lambda: products(operands)


def population_fns(family, config, batch, size: int) -> dict:
  """`population`: one vmapped step of `size` members (their own states and keys, one batch);
  `population_sequential`: `size` single steps, one after another."""
  import jax

  from genjax import population, train
  member_keys = [train.RunKeys.from_seed(config.seed + i) for i in range(size)]
  stacked = {"state": population.stack([family.create_state(k.init, config)
                                        for k in member_keys])}
  train_keys = population.stack([k.train for k in member_keys])
  vstep = jax.jit(jax.vmap(family.train_step, in_axes=(0, None, 0)), donate_argnums=0)
  step = jax.jit(family.train_step, donate_argnums=0)
  singles = {"states": [family.create_state(k.init, config) for k in member_keys]}

  def together():
    stacked["state"], metrics = vstep(stacked["state"], batch, train_keys)
    return metrics

  def one_after_another():
    out = []
    for i, k in enumerate(member_keys):
      singles["states"][i], metrics = step(singles["states"][i], batch, k.train)
      out.append(metrics)
    return out

  return {"population": together, "population_sequential": one_after_another}


def run(model: str, windows: int, window_seconds: float, peak_size: int,
        population_size: int = 1, steps_per_dispatch: int = 1) -> dict:
  import jax
  import jax.numpy as jnp

  from genjax import timing, train
  from genjax.data import pipeline
  from genjax.parallel import DataParallel

  entry = BENCHMARKS[model]
  config = load_config(entry)
  family = train.load_family(config.family)
  keys = train.RunKeys.from_seed(config.seed)
  state = family.create_state(keys.init, config)
  b = config.data.batch_size
  dp = DataParallel("none")
  source = pipeline.make_input(config, dp, keys.data, train.load_split(config, "train"))

  # Constant batch (the input's first, whatever its fields): the step alone.
  batch = jax.jit(source.draw)(jnp.int32(0), keys.data, *source.args(0))
  step = jax.jit(family.train_step, donate_argnums=0)
  holder = {"state": state}

  def constant():
    holder["state"], metrics = step(holder["state"], batch, keys.train)
    return metrics


  # Real batches: the loop's fused step, drawing shuffled MNIST batches on the device.
  loop_step = dp.wrap(train.make_loop_step(family, source), "rrrr" + source.kinds, "rr",
                      donate_argnums=(0, 1))
  metric_shapes = jax.eval_shape(lambda s: family.train_step(s, batch, keys.train)[1], state)
  loop = {"state": family.create_state(keys.init, config),
          "acc": train.zero_accumulator(metric_shapes), "step": 0}

  def real():
    loop["state"], loop["acc"] = loop_step(loop["state"], loop["acc"], keys.train, keys.data,
                                           *source.args(loop["step"]))
    loop["step"] += 1
    return loop["acc"]

  if steps_per_dispatch > 1:
    # The same fused loop step, `steps_per_dispatch` of them per call (the input's arguments of
    # the first epoch throughout: the order, not the speed, would change across epochs).
    multi_step = dp.wrap(train.make_multi_step(train.make_loop_step(family, source)),
                         "rrrrr" + source.kinds, "rr", donate_argnums=(0, 1))
    count = jnp.int32(steps_per_dispatch)
    multi = {"state": family.create_state(keys.init, config),
             "acc": train.zero_accumulator(metric_shapes)}

    def real_multi():
      multi["state"], multi["acc"] = multi_step(multi["state"], multi["acc"], keys.train,
                                                keys.data, count, *source.args(0))
      return multi["acc"]

  from genjax.flops import traced_dot_flops
  jaxpr = jax.make_jaxpr(family.train_step)(state, batch, keys.train).jaxpr
  flops = entry.flops(config) if entry.flops is not None else traced_dot_flops(jaxpr)
  fns = {"constant": constant, "real": real, "peak": timing.matmul_fn(peak_size)}
  # The matmuls-only ceiling needs every product of the step in the jaxpr: a scan body is
  # traced once however often it runs, and a custom VJP's backward is not traced at all.
  if traced_dot_flops(jaxpr) == flops:
    fns["matmuls_only"] = matmuls_only_fn(jaxpr)
  if population_size > 1:
    fns.update(population_fns(family, config, batch, population_size))
  if steps_per_dispatch > 1:
    fns["real_multi"] = real_multi
  seconds = timing.time_interleaved(fns, windows, window_seconds)
  const_s, real_s = seconds["constant"], seconds["real"]
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  return {
      "model": model,
      "backend": jax.default_backend(),
      "devices": jax.device_count(),
      "batch": b,
      "steps_per_sec": 1.0 / const_s,
      "examples_per_sec": b / const_s,
      "steps_per_sec_real_data": 1.0 / real_s,
      "input_pipeline_overhead": real_s / const_s - 1.0,
      "flops_per_step": flops,
      "gflops_per_sec": flops / const_s / 1e9,
      "matmul_peak_gflops_per_sec": peak,
      "fraction_of_peak": flops / const_s / 1e9 / peak,
      "fraction_of_peak_real_data": flops / real_s / 1e9 / peak,
      "fraction_of_peak_matmuls_only": (flops / seconds["matmuls_only"] / 1e9 / peak
                                        if "matmuls_only" in seconds else None),
      **({"population": population_size,
          # S members' steps as one program, against S single steps one after another.
          "population_speedup": seconds["population_sequential"] / seconds["population"],
          "population_fraction_of_peak": population_size * flops / seconds["population"] / 1e9
                                         / peak}
         if population_size > 1 else {}),
      **({"steps_per_dispatch": steps_per_dispatch,
          "steps_per_sec_real_data_multi": steps_per_dispatch / seconds["real_multi"],
          # K steps per call against one step per call, the same loop step on real batches.
          "steps_per_dispatch_speedup": steps_per_dispatch * real_s / seconds["real_multi"]}
         if steps_per_dispatch > 1 else {}),
  }


def entries() -> list[str]:
  """Every benchmark entry name: train steps, then the tasks of experiments/benchmarks."""
  from benchmarks import tasks
  return [*BENCHMARKS, *tasks()]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  load_before = os.getloadavg()[0]
  if FLAGS.model in BENCHMARKS:
    result = run(FLAGS.model, FLAGS.windows, FLAGS.window_seconds, FLAGS.peak_size,
                 FLAGS.population, FLAGS.steps_per_dispatch)
  else:
    from benchmarks import tasks
    registry = tasks()
    if FLAGS.model not in registry:
      raise app.UsageError(f"unknown benchmark {FLAGS.model!r}; expected one of {entries()}")
    task = registry[FLAGS.model]
    has_peer = "peers" in inspect.signature(task).parameters
    if FLAGS.peers and not has_peer:
      raise app.UsageError(f"{FLAGS.model!r} has no peer library to compare with")
    kwargs = {"peers": FLAGS.peers, "repeats": FLAGS.repeats} if has_peer else {}
    result = {"model": FLAGS.model,
              **task(FLAGS.windows, FLAGS.window_seconds, FLAGS.peak_size, **kwargs)}
  result["load_average"] = [load_before, os.getloadavg()[0]]  # 1-minute, before and after
  if FLAGS.json:
    print(json.dumps(result))
  else:
    for k, v in result.items():
      print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")


if __name__ == "__main__":
  cli.run(main)
