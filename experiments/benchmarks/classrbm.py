"""Classification RBM benchmark: its discriminative and CD-1 hybrid train steps (784 x 1,500
hidden, 10 classes, batch 100) against the in-process float32 matmul peak.

  python experiments/benchmark.py --model=classrbm_mnist --json
"""

NUM_HIDDEN = 1500  # the hybrid of Larochelle & Bengio (2008)
BATCH = 100


def step_flops(batch: int, visible: int, hidden: int, classes: int, hybrid: bool) -> int:
  """Useful FLOPs of one step, counted from the shapes as experiments/benchmarks/rbm.py counts
  CD-1 (2 per multiply-add of each matrix product; monitoring not counted).

  Discriminative (exact gradient of log p(y | x)): x W, and the W gradient x^T (h_y - h_p)
  (the data's hidden probabilities under the true label minus their mean under p(y | x)): two
  B x D x H products, 4 B D H; the label terms are [C, H] rows added, not products.
  Hybrid (joint_weight in (0, 1), CD-1): x W (shared by both objectives), h W^T, x' W and the
  W gradient x^T g - x'^T h' (one B x D x H product per state, the discriminative part folded
  into g), 10 B D H; plus the chain's label-hidden products y U, h U^T and y' U, 6 B C H.
  """
  if not hybrid:
    return 4 * batch * visible * hidden
  return 10 * batch * visible * hidden + 6 * batch * classes * hidden


def _steps(windows: int, window_seconds: float, peak_size: int) -> dict:
  """Examples/s of classrbm_mnist.py's discriminative (joint_weight 0) and hybrid (joint_weight
  0.0099, CD-1) train steps with 1,500 hidden units on a constant binary batch of 100, and
  their useful GFLOP/s (`step_flops`) as fractions of the in-process float32 matmul peak.
  `traced_flops_per_step`: every matrix product the traced step asks for (before XLA merges
  the repeated x W), for comparison."""
  import os

  import jax
  import jax.numpy as jnp

  from genjax import config as gconfig
  from genjax import timing
  from genjax.families import classrbm
  from genjax.flops import traced_dot_flops

  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                      "classrbm_mnist.py")
  key = jax.random.key(2)
  v = (jax.random.uniform(jax.random.key(1), (BATCH, 28, 28, 1)) < 0.3).astype(jnp.float32)
  batch = {"image": v, "label": jnp.arange(BATCH, dtype=jnp.int32) % 10}
  fns, out = {}, {}
  for name, joint_weight in (("discriminative", 0.0), ("hybrid", None)):
    config = gconfig.load(f"{path}:hybrid").unlock()
    config.data.batch_size = BATCH
    config.model.num_hidden = NUM_HIDDEN
    config.model.cd_k = 1
    config.model.visible_bias_init = "zero"  # no data needed: a constant batch
    if joint_weight is not None:
      config.model.joint_weight = joint_weight
    state = classrbm.create_state(jax.random.key(0), config)
    d, c = state.params.w.shape[0], state.params.u.shape[0]
    out[name] = {"joint_weight": float(config.model.joint_weight),
                 "flops_per_step": step_flops(BATCH, d, NUM_HIDDEN, c, name == "hybrid"),
                 "traced_flops_per_step": traced_dot_flops(jax.make_jaxpr(classrbm.train_step)(
                     state, batch, key).jaxpr)}
    step = jax.jit(classrbm.train_step, donate_argnums=0)
    holder = {"state": state}

    def run(step=step, holder=holder):
      holder["state"], metrics = step(holder["state"], batch, key)
      return metrics

    fns[name] = run

  seconds = timing.time_interleaved({**fns, "peak": timing.matmul_fn(peak_size)}, windows,
                                    window_seconds)
  peak = 2 * peak_size**3 / seconds["peak"] / 1e9
  result = {"backend": jax.default_backend(), "batch": BATCH, "visible": d, "hidden": NUM_HIDDEN,
            "classes": c, "matmul_peak_gflops_per_sec": peak}
  for name, info in out.items():
    s = seconds[name]
    gflops = info["flops_per_step"] / s / 1e9
    result.update({f"{name}_{k}": v for k, v in {
        **info, "steps_per_sec": 1.0 / s, "examples_per_sec": BATCH / s,
        "gflops_per_sec": gflops, "fraction_of_peak": gflops / peak}.items()})
  return result


TASKS = {"classrbm_mnist": _steps}
