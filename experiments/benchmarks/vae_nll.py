"""The k = 5000 importance-sampled test NLL of Burda et al.'s one-layer VAE: seconds per batch
of test images, the projection to the whole MNIST test set, and the fraction of the matmul peak.

  python experiments/benchmark.py --model=vae_nll_k5000 --json
"""

import math


def _nll_task(k: int, batch: int, chunk: int):
  def task(windows: int, window_seconds: float, peak_size: int) -> dict:
    import jax
    import numpy as np

    from genjax import timing
    from genjax.families import vae
    from genjax.flops import dense_macs
    from genjax.metrics import likelihood

    config = vae.experiment_config(**vae.burda_settings(1, "elbo", 1))
    state = vae.create_state(jax.random.key(0), config)
    fn = vae.log_weight_fn(state)
    x = (np.random.default_rng(0).random((batch, 784)) > 0.8).astype(np.float32)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(1), np.arange(batch))
    estimate = jax.jit(lambda x, keys: likelihood.importance_log_likelihood(fn, x, keys, k,
                                                                            chunk))
    x = jax.device_put(x)
    seconds = timing.time_interleaved({"nll": lambda: estimate(x, keys),
                                       "peak": timing.matmul_fn(peak_size)},
                                      max(1, windows // 2), window_seconds)
    # Per sample: the decoder (50-200-200-784) on it; per chunk: the encoder on the batch.
    decoder, _ = dense_macs((50, 200, 200, 784))
    encoder, _ = dense_macs((784, 200, 200, 100))
    flops = 2 * batch * (k * decoder + (k // chunk) * encoder)
    peak = 2 * peak_size**3 / seconds["peak"] / 1e9
    per_image = seconds["nll"] / batch
    return {"k": k, "batch": batch, "chunk": chunk, "seconds_per_batch": seconds["nll"],
            "images_per_sec": 1.0 / per_image,
            "projected_seconds_mnist_test": 10_000 * per_image,
            "gflops_per_sec": flops / seconds["nll"] / 1e9, "matmul_peak_gflops_per_sec": peak,
            "fraction_of_peak": flops / seconds["nll"] / 1e9 / peak,
            "flops_per_image": flops // batch, "log_mean_exp_finite": bool(math.isfinite(
                float(np.mean(estimate(x, keys)))))}

  return task


TASKS = {"vae_nll_k5000": _nll_task(5000, 20, 1000)}
