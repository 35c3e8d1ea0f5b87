"""Layer-by-layer times of flax's Conv/ConvTranspose and genjax.nn.conv's, against the matmul peak.

  python experiments/profile_conv.py                    # every layer, batch 128
  python experiments/profile_conv.py --layers=G2,C2 --windows=9

For each convolution of the DCGAN generator (G1-G4), the DCGAN discriminator (D1-D3,
width 16) and the WGAN-GP critic / conditional-GAN discriminator (C1-C3, width 64, 11
input planes) it times, under jit:

  fwd   the layer's output;
  grad  gradients wrt its input and parameters of sum(tanh(layer(x)) * c);
  gp    (Conv layers only) the parameter gradient of sum_b (||d f / d x_b|| - 1)^2 for
        that f: the double backprop of a gradient penalty.

Times are medians over interleaved windows, a window of each function in turn, so
that all of them see the same background load; the float32 peak is a 2048 x 2048
matmul timed among them. FLOPs are those of the matrix products in genjax.nn.conv's
compiled program (after XLA's dead-code elimination): exactly the convolution's
multiply-adds, with no zero taps or padded windows, i.e. 1, 3 and 5 times the layer's
forward FLOPs for fwd, grad and gp. The fractions of peak of both columns use them.
"""

import json
import math
import re

from absl import flags

from genjax import cli

flags.DEFINE_string("layers", "G1,G2,G3,G4,D1,D2,D3,C1,C2,C3", "Layers to profile.")
flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_integer("windows", 7, "Timed windows per function; the median is reported.")
flags.DEFINE_float("window_seconds", 0.3, "Approximate length of each timed window.")
flags.DEFINE_bool("json", False, "Print one JSON line per row instead of a table.")
FLAGS = flags.FLAGS

# name: (transposed, in channels, input side, features, kernel, stride)
LAYERS = {
    "G1": (True, 64, 1, 256, 3, 2),
    "G2": (True, 256, 3, 128, 4, 1),
    "G3": (True, 128, 6, 64, 3, 2),
    "G4": (True, 64, 13, 1, 4, 2),
    "D1": (False, 1, 28, 16, 4, 2),
    "D2": (False, 16, 13, 32, 4, 2),
    "D3": (False, 32, 5, 1, 4, 2),
    "C1": (False, 11, 28, 64, 4, 2),
    "C2": (False, 64, 13, 128, 4, 2),
    "C3": (False, 128, 5, 1, 4, 2),
}


# "%name = f32[2,3]{1,0} op(%a, %b), attributes": name, dimensions, op, operands, rest.
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT )?%([\w.\-]+) = \w+\[([\d,]*)\]\S*\s+([\w\-]+)\((.*?)\)(.*)$")


def compiled_dot_flops(hlo_text: str) -> int:
  """2 * multiply-adds of every dot in an optimised HLO module, fusion bodies included."""
  shapes, dots = {}, []
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if match:
      name, dims, op, operands, rest = match.groups()
      shapes[name] = [int(d) for d in dims.split(",") if d]
      if op == "dot":
        dots.append((name, re.findall(r"%([\w.\-]+)", operands)[0], rest))
  total = 0
  for name, lhs, rest in dots:
    contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
    dims = [int(d) for d in contracting.group(1).split(",") if d] if contracting else []
    total += 2 * math.prod(shapes[name]) * math.prod(shapes[lhs][d] for d in dims)
  return total


def layer_functions(name: str, batch: int) -> tuple[dict, dict]:
  """{(impl, direction): thunk} for flax ('ref') and genjax ('ours'); FLOPs per direction."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  from genjax.nn import conv

  transposed, cin, side, features, k, s = LAYERS[name]
  # model.conv_impl's two choices: flax's XLA convolutions ('xla') and genjax's ('matmul').
  impls = {"ref": conv.conv_layers("xla")[int(transposed)],
           "ours": conv.conv_layers("matmul")[int(transposed)]}
  modules = {impl: cls(features, (k, k), (s, s), padding="VALID",
                       kernel_init=nn.initializers.normal(0.02))
             for impl, cls in impls.items()}
  x = jax.random.normal(jax.random.key(0), (batch, side, side, cin))
  variables = modules["ref"].init(jax.random.key(1), x)
  c = jax.random.normal(jax.random.key(2), jax.eval_shape(modules["ref"].apply, variables,
                                                           x).shape)
  fns, flops = {}, {}
  for impl, module in modules.items():
    score = lambda v, x, module=module: jnp.sum(jnp.tanh(module.apply(v, x)) * c)

    def penalty(v, x, score=score):
      dx = jax.grad(score, argnums=1)(v, x)
      return jnp.sum((jnp.sqrt(jnp.sum(dx**2, axis=(1, 2, 3))) - 1.0) ** 2)

    directions = {"fwd": module.apply, "grad": jax.grad(score, argnums=(0, 1))}
    if not transposed:
      directions["gp"] = jax.grad(penalty)
    for direction, fn in directions.items():
      compiled = jax.jit(fn).lower(variables, x).compile()
      fns[(impl, direction)] = lambda f=compiled: f(variables, x)
      if impl == "ours":
        flops[direction] = compiled_dot_flops(compiled.as_text())
  return fns, flops


def profile(layers: list[str], batch: int, windows: int, window_seconds: float) -> list[dict]:
  """One row per (layer, direction): times, speedup and fractions of the matmul peak."""
  rows = []
  from genjax import timing
  peak = timing.matmul_fn(2048)
  for name in layers:
    fns, flops = layer_functions(name, batch)
    seconds = timing.time_interleaved({"peak": peak, **fns}, windows, window_seconds)
    peak_flops = 2 * 2048**3 / seconds["peak"]
    for direction in flops:
      ref, ours = seconds[("ref", direction)], seconds[("ours", direction)]
      rows.append({"layer": name, "direction": direction, "ref_ms": 1e3 * ref,
                   "ours_ms": 1e3 * ours, "speedup": ref / ours, "gflop": flops[direction] / 1e9,
                   "ref_fraction_of_peak": flops[direction] / ref / peak_flops,
                   "fraction_of_peak": flops[direction] / ours / peak_flops,
                   "peak_gflops": peak_flops / 1e9})
  return rows


def main(argv):
  del argv
  rows = profile(FLAGS.layers.split(","), FLAGS.batch, FLAGS.windows, FLAGS.window_seconds)
  if FLAGS.json:
    for row in rows:
      print(json.dumps(row))
    return
  print(f"{'layer':5s} {'direction':9s} {'GFLOP':>7s} {'ref ms':>9s} {'ours ms':>9s} "
        f"{'speedup':>8s} {'ref/peak':>9s} {'ours/peak':>9s} {'peak GF/s':>9s}")
  for r in rows:
    print(f"{r['layer']:5s} {r['direction']:9s} {r['gflop']:7.3f} {r['ref_ms']:9.2f} "
          f"{r['ours_ms']:9.2f} {r['speedup']:8.1f} {r['ref_fraction_of_peak']:9.2f} "
          f"{r['fraction_of_peak']:9.2f} {r['peak_gflops']:9.0f}")


if __name__ == "__main__":
  cli.run(main)
