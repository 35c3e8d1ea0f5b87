"""2-D Conv and ConvTranspose built from matrix products: drop-in flax modules, fast on XLA CPU.

XLA's CPU convolutions (and most of all their transposes and gradients) run an order
of magnitude below its matrix products. Here a convolution is `im2col` (the kernel
windows gathered into rows) followed by one matrix product, and a transposed
convolution is one matrix product followed by `col2im` (each input pixel's k*k
outputs added into place). `im2col` and `col2im` are transposes of one another, and
each is the other's custom VJP, so gradients, and gradients of gradients (a WGAN-GP
penalty), stay in the same few fast ops: matrix products, pads, reshapes, transposes,
unit-stride slices and concatenations.

Both gather and scatter work phase by phase: with stride s, kernel tap u = s*q + r
touches output rows of phase r only, at coarse offset q, so a stride-s window of k
taps becomes ceil(k/s) unit-stride shifts of an s x s space-to-depth view of the
image rather than k strided slices.

The modules keep flax's parameter names, shapes and meanings (`kernel` (kh, kw, in,
out), `bias` (out,)), so checkpoints move between them and flax's `nn.Conv` and
`nn.ConvTranspose` unchanged, and give flax's outputs to float32 rounding.

Limits: reverse mode only (custom VJPs: `jax.grad` to any order, `jax.vmap`, `jit`
and `jax.checkpoint` work; `jax.jvp`, `jax.jacfwd` and so `jax.hessian` do not);
2-D kernels, no dilation, feature groups or masks; and the layout choices are tuned
for XLA:CPU. On an accelerator flax's own convolutions are the natural choice: the
networks built on these modules take a `conv_impl` field (`matmul`, `xla` or `auto`,
the config's `model.conv_impl`), which `conv_layers` turns into the module classes.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.linen.dtypes import promote_dtype
from flax.linen.linear import PrecisionLike, canonicalize_padding
from jax import lax

Padding = str | int | Sequence[int | tuple[int, int]]
_ZERO_PAD = (0, 0, 0)


class Windows(NamedTuple):
  """Where the windows of a stride-(sh, sw), (kh, kw) kernel lie on an h x w image.

  `extract_patches` gathers the ho x wo windows of an image of h x w pixels (rows and
  columns past the last window are never read); `overlap_add` is its transpose.
  """

  kh: int
  kw: int
  sh: int
  sw: int
  h: int
  w: int
  ho: int
  wo: int

  @property
  def phases(self) -> tuple[int, int]:
    """Coarse shifts per axis: ceil(k / s) taps share each phase."""
    return -(-self.kh // self.sh), -(-self.kw // self.sw)

  @property
  def coarse(self) -> tuple[int, int]:
    """Rows and columns of the s x s space-to-depth grid the windows cover."""
    qh, qw = self.phases
    return self.ho + qh - 1, self.wo + qw - 1


def _fit(x: jax.Array, rows: int, cols: int) -> jax.Array:
  """x (B, H, W, C) cropped or zero-padded at the bottom right to (B, rows, cols, C)."""
  config = [_ZERO_PAD, (0, rows - x.shape[1], 0), (0, cols - x.shape[2], 0), _ZERO_PAD]
  return lax.pad(x, jnp.zeros((), x.dtype), config)


def _gather(x: jax.Array, g: Windows) -> jax.Array:
  """im2col: x (B, h, w, C) -> windows (B, ho, wo, kh, kw, C)."""
  b, c = x.shape[0], x.shape[-1]
  qh, qw = g.phases
  m, n = g.coarse
  # Space to depth: pixel (m*sh + rh, n*sw + rw) -> coarse (m, n), phase (rh, rw).
  x = _fit(x, m * g.sh, n * g.sw).reshape(b, m, g.sh, n, g.sw, c).transpose(0, 1, 3, 2, 4, 5)
  # Tap (a*sh + rh, d*sw + rw) of window (i, j) is coarse pixel (i + a, j + d), phase
  # (rh, rw): a window is qh x qw shifted blocks of phases, side by side in tap order
  # (the last block of a kernel that is not a multiple of the stride has fewer phases).
  # Nested concatenations of at most 8 pieces each, which XLA fuses into one loop (a
  # flat one of more pieces it would build piece by piece).
  rows = []
  for a in range(qh):
    nh = min(g.sh, g.kh - a * g.sh)
    blocks = [x[:, a:a + g.ho, d:d + g.wo, :nh, :min(g.sw, g.kw - d * g.sw)] for d in range(qw)]
    rows.append(blocks[0] if qw == 1 else jnp.concatenate(blocks, axis=4))
  return rows[0] if qh == 1 else jnp.concatenate(rows, axis=3)


def _materialise(x: jax.Array) -> jax.Array:
  """x, computed once into memory rather than recomputed inside each of its consumers.

  XLA:CPU copies cheap elementwise producers (adds, pads, slices) into every consumer;
  fed to a batch norm, a sum of shifted windows would be rebuilt by each of its three
  or four passes, its shifted copies written out in full first (up to 30x slower). A
  division is "expensive", so XLA never duplicates it: dividing by a one it cannot
  fold (it does not simplify 0*x for floats) makes the whole sum one fused loop whose
  result every consumer reads. The select keeps infinities (0*inf is NaN) exact.
  """
  one = jnp.where(jnp.isfinite(x), 1 + 0 * x, 1)
  return x / one


def _scatter(z: jax.Array, g: Windows) -> jax.Array:
  """col2im, the transpose of `_gather`: windows (B, ho, wo, kh, kw, C) -> (B, h, w, C)."""
  b, c = z.shape[0], z.shape[-1]
  qh, qw = g.phases
  m, n = g.coarse
  zero = jnp.zeros((), z.dtype)
  out = None
  for a in range(qh):
    for d in range(qw):
      # Taps a*sh + rh (rh < sh) of window i land on coarse row i + a, phase rh; the
      # last group of a kernel that is not a multiple of the stride has fewer phases.
      nh, nw = min(g.sh, g.kh - a * g.sh), min(g.sw, g.kw - d * g.sw)
      taps = z[:, :, :, a * g.sh:a * g.sh + nh, d * g.sw:d * g.sw + nw]
      shifted = lax.pad(taps, zero, [_ZERO_PAD, (a, m - g.ho - a, 0), (d, n - g.wo - d, 0),
                                     (0, g.sh - nh, 0), (0, g.sw - nw, 0), _ZERO_PAD])
      out = shifted if out is None else out + shifted
  # Depth to space: coarse (m, n), phase (rh, rw) -> pixel (m*sh + rh, n*sw + rw).
  out = out.transpose(0, 1, 3, 2, 4, 5).reshape(b, m * g.sh, n * g.sw, c)
  return _materialise(_fit(out, g.h, g.w))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def extract_patches(x: jax.Array, windows: Windows) -> jax.Array:
  """The kernel windows of x (B, h, w, C): (B, ho, wo, kh, kw, C); VJP `overlap_add`."""
  return _gather(x, windows)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def overlap_add(z: jax.Array, windows: Windows) -> jax.Array:
  """Windows z (B, ho, wo, kh, kw, C) added into place on (B, h, w, C); VJP `extract_patches`."""
  return _scatter(z, windows)


# The forward rules call the functions themselves, not their bodies: differentiated a
# second time (a gradient penalty), the forward pass then goes through these same
# rules again instead of through autodiff of the pads and slices inside.
extract_patches.defvjp(lambda x, g: (extract_patches(x, g), None),
                       lambda g, _, ct: (overlap_add(ct, g),))
overlap_add.defvjp(lambda z, g: (overlap_add(z, g), None),
                   lambda g, _, ct: (extract_patches(ct, g),))


def _weight_grad(a: jax.Array, g: jax.Array, precision: PrecisionLike) -> jax.Array:
  """a.T @ g for a (M, K) and g (M, N): the gradient of a @ w wrt w."""
  if a.shape[1] >= 4 * g.shape[1]:
    # XLA:CPU's fast (YNNPACK) matmul takes its left operand row-major, contracted on its
    # last axis; a.T @ g goes to a slower kernel, at half speed or less when g is narrow
    # (a conv's few output channels against its k*k*C patch columns). (g.T @ a).T instead
    # transposes only g and the small result; the barriers keep XLA from folding the
    # transposes back into the product.
    g_t = lax.optimization_barrier(g.T)
    return lax.optimization_barrier(_matmul(g_t, a, precision)).T
  return lax.dot_general(a, g, (((0,), (0,)), ((), ())), precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul(a: jax.Array, b: jax.Array, precision: PrecisionLike = None) -> jax.Array:
  """a @ b for 2-D operands, whose weight gradient `_weight_grad` lays out."""
  return jnp.matmul(a, b, precision=precision)


def _matmul_bwd(precision, residuals, g):
  a, b = residuals
  return _matmul(g, b.T, precision), _weight_grad(a, g, precision)


_matmul.defvjp(lambda a, b, precision: (_matmul(a, b, precision), (a, b)), _matmul_bwd)


def _pairs(value: int | Sequence[int] | None, name: str) -> tuple[int, int]:
  """A 2-D size from 2 ints; strides may also be one int (or None, 1) for both axes."""
  if name == "strides" and (value is None or isinstance(value, int)):
    return (1, 1) if value is None else (value, value)
  value = tuple(value) if isinstance(value, Sequence) else (value,)
  if len(value) != 2 or not all(isinstance(v, int) for v in value):
    # flax reads an int kernel_size as a 1-D kernel, which is not implemented here.
    raise NotImplementedError(f"only 2-D convolutions: {name} must be 2 ints, got {value!r}")
  return value


def _explicit_padding(padding: Padding) -> str | list[tuple[int, int]]:
  """'VALID', 'SAME' or [(low, high)] * 2 (flax's forms); other modes are not implemented."""
  padding = canonicalize_padding(padding, 2)
  if isinstance(padding, str):
    if padding not in ("VALID", "SAME"):
      raise NotImplementedError(f"padding {padding!r} is not implemented; use 'VALID', 'SAME' "
                                "or explicit integers")
    return padding
  return [tuple(p) for p in padding]


def conv2d(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
           padding: Padding = "VALID", precision: PrecisionLike = None) -> jax.Array:
  """Cross-correlation of x (B, H, W, C) with kernel (kh, kw, C, F), as `lax.conv_general_dilated`.

  Padding is 'VALID', 'SAME' or explicit (low, high) pairs per spatial axis.
  """
  kh, kw, c, f = kernel.shape
  if x.shape[-1] != c:
    raise ValueError(f"input has {x.shape[-1]} channels, the kernel expects {c}")
  pads = _explicit_padding(padding)
  if pads == "SAME":
    pads = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, "SAME")
  if pads != "VALID" and any(p != (0, 0) for p in pads):
    x = lax.pad(x, jnp.zeros((), x.dtype), [_ZERO_PAD, (*pads[0], 0), (*pads[1], 0), _ZERO_PAD])
  b, h, w, _ = x.shape
  ho, wo = (h - kh) // strides[0] + 1, (w - kw) // strides[1] + 1
  if ho < 1 or wo < 1:
    raise ValueError(f"a {kh}x{kw} kernel does not fit a {h}x{w} (padded) input")
  patches = extract_patches(x, Windows(kh, kw, *strides, h, w, ho, wo))
  y = _matmul(patches.reshape(b * ho * wo, kh * kw * c), kernel.reshape(kh * kw * c, f),
              precision)
  return y.reshape(b, ho, wo, f)


def _transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
  """`lax.conv_transpose`'s (low, high) padding of the stride-dilated input for 'SAME'/'VALID'."""
  if padding == "SAME":
    total = k + s - 2
    low = k - 1 if s > k - 1 else -(-total // 2)
  else:
    total = k + s - 2 + max(k - s, 0)
    low = k - 1
  return low, total - low


def conv_transpose2d(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
                     padding: Padding = "VALID", transpose_kernel: bool = False,
                     precision: PrecisionLike = None) -> jax.Array:
  """Transposed convolution of x (B, H, W, C) with kernel (kh, kw, C, F), as `lax.conv_transpose`.

  That is the convolution of the stride-dilated input, padded as `padding` says
  ('VALID' and 'SAME' as lax computes them for a transposed convolution, or explicit
  (low, high) pairs), with the unflipped kernel; `transpose_kernel` takes a kernel
  (kh, kw, F, C) and flips it, giving the gradient of `conv2d`.
  """
  if transpose_kernel:
    kernel = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
  kh, kw, c, f = kernel.shape
  if x.shape[-1] != c:
    raise ValueError(f"input has {x.shape[-1]} channels, the kernel expects {c}")
  b, h, w, _ = x.shape
  (sh, sw), pads = strides, _explicit_padding(padding)
  if isinstance(pads, str):
    pads = [_transpose_pads(kh, sh, pads), _transpose_pads(kw, sw, pads)]
  # Input pixel i meets tap t at output i*s + k-1-t of the fully padded result (the
  # 'VALID' one): scattering with the flipped kernel puts its tap u = k-1-t at i*s + u.
  taps = jnp.flip(kernel, (0, 1)).transpose(2, 0, 1, 3).reshape(c, kh * kw * f)
  z = _matmul(x.reshape(b * h * w, c), taps, precision)
  full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
  y = overlap_add(z.reshape(b, h, w, kh, kw, f), Windows(kh, kw, sh, sw, full_h, full_w, h, w))
  # Other paddings crop (or zero-extend) the full result: low padding p keeps it from
  # row k-1-p on.
  edges = [(pads[0][0] - (kh - 1), pads[0][1] - (kh - 1), 0),
           (pads[1][0] - (kw - 1), pads[1][1] - (kw - 1), 0)]
  if any(e != _ZERO_PAD for e in edges):
    y = lax.pad(y, jnp.zeros((), y.dtype), [_ZERO_PAD, *edges, _ZERO_PAD])
  return y


def _flat_batch(x: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
  """x (*batch, H, W, C) as (B, H, W, C), and the batch shape to restore (flax's convention)."""
  if x.ndim < 3:
    raise ValueError(f"expected (*batch, H, W, C) inputs, got shape {x.shape}")
  batch = x.shape[:-3]
  return x.reshape((-1, *x.shape[-3:])), batch


class _ConvLayer(nn.Module):
  """What Conv and ConvTranspose share: flax's fields and their defaults, and the layer around
  the convolution (inputs flattened to one batch axis, the `kernel` and `bias` parameters,
  dtype promotion, the bias added). A subclass supplies `_convolve`."""

  features: int
  kernel_size: Sequence[int]
  strides: int | Sequence[int] | None = 1
  padding: Padding = "SAME"
  use_bias: bool = True
  dtype: jnp.dtype | None = None
  param_dtype: jnp.dtype = jnp.float32
  precision: PrecisionLike = None
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  def _kernel_channels(self, in_channels: int) -> tuple[int, int]:
    """The kernel's last two axes: (C, features)."""
    return in_channels, self.features

  def _convolve(self, x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    """(Transposed-)convolves inputs (*batch, H, W, C) -> (*batch, H', W', features)."""
    kernel_size = _pairs(self.kernel_size, "kernel_size")
    x, batch = _flat_batch(inputs)
    kernel = self.param("kernel", self.kernel_init,
                        (*kernel_size, *self._kernel_channels(x.shape[-1])), self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = self._convolve(x, kernel, _pairs(self.strides, "strides"))
    if bias is not None:
      y = y + bias
    return y.reshape((*batch, *y.shape[1:]))


class Conv(_ConvLayer):
  """2-D convolution, a drop-in for `flax.linen.Conv` on (*batch, H, W, C) inputs.

  Same parameters (`kernel` (kh, kw, C, features), `bias` (features,)), same defaults
  and the same output; padding is 'SAME', 'VALID' or explicit integers. Dilation,
  feature groups and masks are not supported.
  """

  def _convolve(self, x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    return conv2d(x, kernel, strides, self.padding, self.precision)


class ConvTranspose(_ConvLayer):
  """2-D transposed convolution, a drop-in for `flax.linen.ConvTranspose` (as `lax.conv_transpose`).

  Same parameters (`kernel` (kh, kw, C, features), or (kh, kw, features, C) with
  `transpose_kernel`; `bias` (features,)), same defaults and the same output;
  padding is 'SAME', 'VALID' or explicit integers. Dilation and masks are not
  supported.
  """

  strides: int | Sequence[int] | None = None
  transpose_kernel: bool = False

  def _kernel_channels(self, in_channels: int) -> tuple[int, int]:
    if self.transpose_kernel:
      return self.features, in_channels
    return in_channels, self.features

  def _convolve(self, x: jax.Array, kernel: jax.Array, strides: tuple[int, int]) -> jax.Array:
    return conv_transpose2d(x, kernel, strides, self.padding, self.transpose_kernel,
                            self.precision)


CONV_IMPLS = ("matmul", "xla", "auto")


def resolve_conv_impl(impl: str = "auto") -> str:
  """`matmul` (this module's Conv and ConvTranspose) or `xla` (flax's: XLA's convolutions).

  `auto` is `matmul` on XLA's CPU backend, where its convolutions are slow, and `xla` on
  GPU and TPU. It is read when a network is traced, from `jax.default_backend()`.
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"unknown conv_impl {impl!r}; expected one of {CONV_IMPLS}")
  if impl == "auto":
    return "matmul" if jax.default_backend() == "cpu" else "xla"
  return impl


def conv_layers(impl: str = "auto") -> tuple[type[nn.Module], type[nn.Module]]:
  """The (Conv, ConvTranspose) module classes of `impl` (see `resolve_conv_impl`).

  Both pairs have the same class names (flax's automatic submodule names) and create the
  same parameters, so a network has one parameter tree whichever it is built with.
  """
  if resolve_conv_impl(impl) == "xla":
    return nn.Conv, nn.ConvTranspose
  return Conv, ConvTranspose
