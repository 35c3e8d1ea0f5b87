"""RBM benchmark: CD-1 train-step throughput (784 x 500, batch 100) against the matmul peak."""


def _cd1_mnist(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Examples/s of the CD-1 step of rbm_mnist.py's model (500 hidden units, batch 100) on a
  constant binary batch, and its useful GFLOP/s as a fraction of the in-process float32 matmul
  peak. Useful FLOPs: the five B x D x H products of CD-1 (v0 W, h0 W^T, v1 W, and the two
  gradient products), 10 B D H; the step's monitoring (reconstruction error, free energy)
  is not counted."""
  import os

  import jax
  import jax.numpy as jnp

  from genjax import config as gconfig
  from genjax import timing
  from genjax.families import rbm

  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "rbm_mnist.py")
  config = gconfig.load(path).unlock()
  config.model.cd_k = 1
  config.model.visible_bias_init = "zero"  # no data needed: a constant batch
  b, d, h = config.data.batch_size, 784, config.model.num_hidden
  state = rbm.create_state(jax.random.key(0), config)
  v = (jax.random.uniform(jax.random.key(1), (b, 28, 28, 1)) < 0.3).astype(jnp.float32)
  batch = {"image": v, "label": jnp.zeros((b,), jnp.int32)}
  step = jax.jit(rbm.train_step, donate_argnums=0)
  holder = {"state": state}
  key = jax.random.key(2)

  def cd1():
    holder["state"], metrics = step(holder["state"], batch, key)
    return metrics

  seconds = timing.time_interleaved({"step": cd1, "peak": timing.matmul_fn(peak_size)},
                                    windows, window_seconds)
  flops = 10 * b * d * h
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  gflops = flops / seconds["step"] / 1e9
  return {"backend": jax.default_backend(), "batch": b, "visible": d, "hidden": h,
          "steps_per_sec": 1.0 / seconds["step"], "examples_per_sec": b / seconds["step"],
          "flops_per_step": flops, "gflops_per_sec": gflops,
          "matmul_peak_gflops_per_sec": peak, "fraction_of_peak": gflops / peak}


TASKS = {"rbm_cd1_mnist": _cd1_mnist}
