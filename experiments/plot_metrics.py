"""Plot a workdir's metrics.jsonl as loss curves (one panel per metric) into a PNG.

  python experiments/plot_metrics.py --workdir=runs/gan_mnist --out=runs/gan_mnist/curves.png
"""

import os

from absl import flags

from genjax import cli

flags.DEFINE_string("workdir", None, "A training workdir holding metrics.jsonl.")
flags.DEFINE_string("out", None, "Output PNG (default: WORKDIR/curves.png).")
flags.DEFINE_list("metrics", None, "Metrics to plot (default: all).")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def plot(records: list[dict], out: str, names: list[str] | None = None) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = names or sorted({k for r in records for k in r if k != "step"})
  fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
  for ax, name in zip(axes[0], names, strict=True):
    points = [(r["step"], r[name]) for r in records if name in r]
    ax.plot(*zip(*points, strict=True), linewidth=1)
    ax.set_title(name)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out, dpi=100)
  plt.close(fig)


def main(argv):
  del argv
  from genjax.writers import read_metrics
  records = read_metrics(os.path.join(FLAGS.workdir, "metrics.jsonl"))
  if not records:
    raise ValueError(f"--workdir: no metrics in {FLAGS.workdir}/metrics.jsonl")
  out = FLAGS.out or os.path.join(FLAGS.workdir, "curves.png")
  plot(records, out, FLAGS.metrics)
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.run(main)
