"""genjax.nn.conv against flax's Conv and ConvTranspose: parameters, outputs, gradients; and
the `conv_impl` switch between them, layer by layer and in every network built on them."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax.families import gan, neural_classifier, vae
from genjax.nn import conv
from genjax.nn.classifiers import LeNet5, SmallCNN
from genjax.nn.cnn import DomainCNN
from genjax.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genjax.nn.vae import VAENet

# (name, transposed, in_channels, (H, W), features, kernel, strides, padding). The
# penalty's double backprop runs through every Conv, and through a few ConvTransposes
# (it only matters for a critic, and the transposed layer reuses the same two ops).
CASES = [
    # The DCGAN generator's transposed convolutions: 1 -> 3 -> 6 -> 13 -> 28.
    ("g1", True, 64, (1, 1), 256, (3, 3), (2, 2), "VALID"),
    ("g2", True, 256, (3, 3), 128, (4, 4), (1, 1), "VALID"),
    ("g3", True, 128, (6, 6), 64, (3, 3), (2, 2), "VALID"),
    ("g4", True, 64, (13, 13), 1, (4, 4), (2, 2), "VALID"),
    # DCGAN discriminator (h = 16) and WGAN-GP critic / cGAN discriminator (h = 64, and
    # 1 + 10 class planes in): 28 -> 13 -> 5 -> 1.
    ("d1", False, 1, (28, 28), 16, (4, 4), (2, 2), "VALID"),
    ("d2", False, 16, (13, 13), 32, (4, 4), (2, 2), "VALID"),
    ("d3", False, 32, (5, 5), 1, (4, 4), (2, 2), "VALID"),
    ("c1", False, 11, (28, 28), 64, (4, 4), (2, 2), "VALID"),
    ("c2", False, 64, (13, 13), 128, (4, 4), (2, 2), "VALID"),
    ("c3", False, 128, (5, 5), 1, (4, 4), (2, 2), "VALID"),
    # Odd shapes: stride 1, non-square images and kernels, one channel in or out, kernel
    # larger or smaller than the stride, windows that leave pixels unread, and the
    # other paddings flax takes.
    ("conv_stride1_same", False, 3, (7, 9), 5, (3, 3), (1, 1), "SAME"),
    ("conv_rect_1ch", False, 1, (10, 7), 1, (3, 2), (2, 1), "VALID"),
    ("conv_big_kernel", False, 2, (12, 11), 3, (5, 5), (2, 3), ((1, 2), (0, 3))),
    ("conv_small_kernel", False, 3, (11, 10), 2, (2, 1), (3, 2), "VALID"),
    ("convt_stride1_rect", True, 1, (4, 5), 1, (3, 2), (1, 1), "VALID"),
    ("convt_big_kernel_same", True, 2, (4, 5), 3, (5, 4), (2, 3), "SAME"),
    ("convt_small_kernel", True, 3, (3, 4), 2, (2, 1), (3, 2), ((1, 3), (2, 0))),
    # lax's 'VALID' with a kernel smaller than the stride gives i*s rows, not PyTorch's
    # (i-1)*s + k; PyTorch's ConvTranspose2d(k, s, padding=p, output_padding=op) is the
    # explicit pairs (k-1-p, k-1-p+op) (and a flipped kernel: `transpose_kernel`).
    ("convt_valid_kernel_below_stride", True, 2, (3, 4), 2, (2, 2), (3, 3), "VALID"),
    ("convt_torch_k4_s2_p1", True, 3, (5, 6), 2, (4, 4), (2, 2), ((2, 2), (2, 2))),
    ("convt_torch_k3_s2_p1_op1", True, 3, (4, 5), 2, (3, 3), (2, 2), ((1, 2), (1, 2))),
]
PENALTY = {"g3", "convt_big_kernel_same", "convt_small_kernel"} | {
    c[0] for c in CASES if not c[1]}
BATCH = 2


@pytest.fixture(autouse=True)
def _float32_products():
  """Full float32 products and convolutions. On CPU that is the default; on a GPU the default
  takes TF32 (a 10-bit mantissa) and flax's and our convolutions then differ by ~1e-3 (4e-4 to
  9e-4 relative in the networks below on an H200), rounding the comparisons cannot see past."""
  with jax.default_matmul_precision("float32"):
    yield


def _key(seed: int) -> jax.Array:
  """A key of the "rbg" generator: threefry's hash takes XLA seconds to compile per shape."""
  return jax.random.key(seed, impl="rbg")


def _normal(seed: int, shape) -> jax.Array:
  """Standard-normal float32 test data, drawn by numpy (nothing to compile)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def _modules(transposed, features, kernel, strides, padding, **kwargs):
  """(flax's module, ours), built from the same arguments: the classes `conv_impl` 'xla' and
  'matmul' pick."""
  ref, ours = (conv.conv_layers(impl)[int(transposed)] for impl in ("xla", "matmul"))
  args = dict(features=features, kernel_size=kernel, strides=strides, padding=padding,
              kernel_init=nn.initializers.normal(0.3), bias_init=nn.initializers.normal(0.5))
  args.update(kwargs)
  return ref(**args), ours(**args)


def _close(ours, ref, what=""):
  """Equal to float32 tolerance, relative to the largest entry of the reference."""
  scale = max(float(np.max(np.abs(ref))), 1e-3)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=2e-4, atol=2e-5 * scale,
                             err_msg=what)


def _everything(module, variables, x, weights, penalise):
  """Output; gradients of a linear functional wrt (params, input); and (if `penalise`)
  the parameter gradient of a gradient penalty sum_b ||d f / d x_b||, f nonlinear."""
  out = module.apply(variables, x)
  linear = lambda v, x: jnp.sum(module.apply(v, x) * weights)
  grads = jax.grad(linear, argnums=(0, 1))(variables, x)

  def penalty(v):
    dx = jax.grad(lambda x: jnp.sum(jnp.tanh(module.apply(v, x)) * weights))(x)
    return jnp.sum(jnp.sqrt(jnp.sum(dx**2, axis=(1, 2, 3))))

  return out, grads, jax.grad(penalty)(variables) if penalise else {}


def _random_like(key, tree):
  """Normal draws in the shapes of `tree` (ShapeDtypeStructs), kernels scaled by
  1/sqrt(fan-in) so that the tanh below stays off its flat tails."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  scale = lambda shape: 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) == 4 else 0.3
  return treedef.unflatten([scale(leaf.shape) * jax.random.normal(k, leaf.shape, leaf.dtype)
                            for k, leaf in zip(keys, leaves, strict=True)])


@pytest.mark.parametrize("name,transposed,cin,hw,features,kernel,strides,padding", CASES,
                         ids=[c[0] for c in CASES])
def test_matches_flax(name, transposed, cin, hw, features, kernel, strides, padding):
  """Same parameter tree from init; same outputs, gradients and penalty gradients (jit)."""
  ref, ours = _modules(transposed, features, kernel, strides, padding)
  key = _key(sum(map(ord, name)))
  x = _normal(0, (BATCH, *hw, cin))
  theirs, mine = jax.eval_shape(ref.init, key, x), jax.eval_shape(ours.init, key, x)
  assert jax.tree.structure(mine) == jax.tree.structure(theirs)
  assert jax.tree.leaves(mine) == jax.tree.leaves(theirs)  # shapes and dtypes

  @jax.jit
  def run(x):
    variables = _random_like(jax.random.fold_in(key, 1), theirs)
    weights = jax.random.normal(jax.random.fold_in(key, 2),
                                jax.eval_shape(ref.apply, variables, x).shape)
    penalise = name in PENALTY
    return (_everything(ref, variables, x, weights, penalise),
            _everything(ours, variables, x, weights, penalise))

  expected, got = run(x)
  assert got[0].shape == expected[0].shape
  leaves = lambda t: [t[0], *jax.tree.leaves(t[1][0]), t[1][1], *jax.tree.leaves(t[2])]
  n_params = len(jax.tree.leaves(theirs))
  names = ["output"] + ["grad params"] * n_params + ["grad input"] + \
      ["penalty grad params"] * len(jax.tree.leaves(expected[2]))
  for what, a, b in zip(names, leaves(got), leaves(expected), strict=True):
    _close(a, b, f"{name}: {what}")


@pytest.mark.parametrize("transposed", [False, True])
def test_default_init_matches_flax(transposed):
  """flax's own defaults (lecun-normal kernel, zero bias, 'SAME'): the same draws, since
  the parameters have the same names, shapes and creation order."""
  ref, ours = (nn.ConvTranspose, conv.ConvTranspose) if transposed else (nn.Conv, conv.Conv)
  x = jnp.zeros((1, 6, 5, 3))
  init = jax.jit(lambda k: (ref(4, (3, 2)).init(k, x), ours(4, (3, 2)).init(k, x)))
  theirs, mine = init(_key(3))
  assert jax.tree.structure(mine) == jax.tree.structure(theirs)
  for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_array_equal(a, b)


def test_transpose_kernel_matches_flax():
  ref, ours = _modules(True, 4, (4, 3), (2, 2), "VALID", transpose_kernel=True)
  x = _normal(0, (2, 5, 6, 3))
  variables = jax.jit(ref.init)(_key(1), x)
  assert variables["params"]["kernel"].shape == (4, 3, 4, 3)
  _close(jax.jit(ours.apply)(variables, x), jax.jit(ref.apply)(variables, x))


@pytest.mark.parametrize("transposed", [False, True])
def test_batch_dimensions_follow_flax(transposed):
  """No batch axis, or several, as flax: flattened for the convolution, then restored."""
  ref, ours = _modules(transposed, 3, (3, 3), (2, 2), "VALID")
  x = _normal(0, (2, 3, 7, 7, 2))
  variables = jax.jit(ref.init)(_key(1), x[0, 0])
  for inputs in (x, x[0, 0]):
    expected = jax.jit(ref.apply)(variables, inputs)
    got = jax.jit(ours.apply)(variables, inputs)
    assert got.shape == expected.shape
    _close(got, expected)


def test_vmap_over_examples_matches_batched_call():
  _, ours = _modules(True, 4, (4, 4), (2, 2), "VALID")
  x = _normal(0, (3, 5, 5, 2))
  variables = jax.jit(ours.init)(_key(1), x)
  per_example = jax.jit(jax.vmap(lambda xi: ours.apply(variables, xi[None])[0]))(x)
  _close(per_example, jax.jit(ours.apply)(variables, x))


def test_parameters_load_across_modules():
  """Parameters that ours initialised apply in flax's module with the same result."""
  ref, ours = _modules(False, 8, (4, 4), (2, 2), "VALID")
  x = _normal(0, (2, 13, 13, 3))
  variables = jax.jit(ours.init)(_key(1), x)
  _close(jax.jit(ref.apply)(variables, x), jax.jit(ours.apply)(variables, x))


def test_dtype_follows_flax():
  ref, ours = _modules(True, 4, (3, 3), (2, 2), "VALID", dtype=jnp.bfloat16)
  x = _normal(0, (2, 4, 4, 3))
  variables = jax.jit(ref.init)(_key(1), x)
  assert variables["params"]["kernel"].dtype == jnp.float32
  mine, theirs = jax.jit(ours.apply)(variables, x), jax.jit(ref.apply)(variables, x)
  assert mine.dtype == theirs.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(mine, np.float32), np.asarray(theirs, np.float32),
                             rtol=0.05, atol=0.05)


def test_circular_padding_is_not_implemented():
  x = jnp.zeros((1, 8, 8, 2))
  for module in (conv.Conv(3, (3, 3), padding="CIRCULAR"),
                 conv.ConvTranspose(3, (3, 3), padding="CIRCULAR")):
    with pytest.raises(NotImplementedError, match="CIRCULAR"):
      jax.eval_shape(module.init, _key(0), x)


def test_one_dimensional_kernels_are_not_implemented():
  with pytest.raises(NotImplementedError, match="2-D"):
    jax.eval_shape(conv.Conv(3, (3,)).init, _key(0), jnp.zeros((1, 8, 2)))


# ------------------------------------------------------------------ conv_impl: matmul | xla | auto


def test_conv_layers_are_flax_or_ours():
  assert conv.conv_layers("xla") == (nn.Conv, nn.ConvTranspose)
  assert conv.conv_layers("matmul") == (conv.Conv, conv.ConvTranspose)
  # flax names submodules after their class: the same names, so the same parameter tree.
  assert [c.__name__ for c in conv.conv_layers("xla")] == ["Conv", "ConvTranspose"]
  assert [c.__name__ for c in conv.conv_layers("matmul")] == ["Conv", "ConvTranspose"]


def test_auto_is_matmul_on_cpu_and_xla_elsewhere(monkeypatch):
  if jax.default_backend() == "cpu":
    assert conv.resolve_conv_impl("auto") == "matmul"
    assert conv.conv_layers() == (conv.Conv, conv.ConvTranspose)
  for backend, impl in (("cpu", "matmul"), ("gpu", "xla"), ("tpu", "xla")):
    monkeypatch.setattr(conv.jax, "default_backend", lambda backend=backend: backend)
    assert conv.resolve_conv_impl("auto") == impl
    assert conv.resolve_conv_impl() == impl
    for explicit in ("matmul", "xla"):
      assert conv.resolve_conv_impl(explicit) == explicit
  with pytest.raises(ValueError, match="conv_impl"):
    conv.resolve_conv_impl("cudnn")


def test_family_builders_pass_conv_impl():
  """`model.conv_impl` reaches every convolutional network; configs without it get `auto`."""
  data = ml_collections.ConfigDict({"image_shape": (28, 28, 1)})

  def config(model):
    return ml_collections.ConfigDict({"model": model, "data": data})

  for impl in ("matmul", "xla", "auto"):
    g, d = gan.build_models(config(gan.model_config(arch="dcgan", conv_impl=impl)))
    assert g.conv_impl == d.conv_impl == impl
    assert vae.build_model(config(vae.model_config(arch="conv", conv_impl=impl))).conv_impl == impl
    for arch, fields in (("domain_cnn", {"widths": (4,), "feature_dim": 4}), ("lenet5", {}),
                         ("cnn", {})):
      model = {"arch": arch, "num_classes": 10, "conv_impl": impl, **fields}
      assert neural_classifier.build_model(config(model)).conv_impl == impl
  model = gan.model_config(arch="dcgan")
  del model["conv_impl"]  # a config saved before the field existed
  assert gan.build_models(config(model))[0].conv_impl == "auto"


# name: (module of conv_impl, input shape, apply kwargs). Tiny widths and batch 2: what is
# compared is the wiring (shapes, strides, paddings, names), which width does not change.
ARCHITECTURES = {
    "dcgan_generator": (lambda impl: DCGANGenerator(hidden=4, conv_impl=impl), (2, 8),
                        {"train": True}),
    "dcgan_discriminator": (lambda impl: DCGANDiscriminator(hidden=4, conv_impl=impl),
                            (2, 28, 28, 1), {"train": True}),
    # The WGAN-GP critic with spectral norm (which wraps the convolutions) on 1 + 2 planes.
    "critic_layer_norm_spectral": (
        lambda impl: DCGANDiscriminator(hidden=4, norm="layer", spectral_norm=True,
                                        conv_impl=impl), (2, 28, 28, 3), {"train": True}),
    "conv_vae": (lambda impl: VAENet(arch="conv", z_dims=(3,), hidden=((1,),),
                                     conv_hidden=(4, 4), conv_impl=impl), (2, 28, 28, 1), {}),
    "lenet5": (lambda impl: LeNet5(conv_impl=impl), (2, 28, 28, 1), {}),
    # Inference mode: in training mode its batch norm after the dense layer, over 2 examples,
    # amplifies the convolutions' rounding by up to 10x (the DCGAN's cover the training mode).
    "small_cnn": (lambda impl: SmallCNN(widths=(4, 8), convs_per_stage=2, hidden=8,
                                        conv_impl=impl), (2, 28, 28, 1), {"train": False}),
    "domain_cnn": (lambda impl: DomainCNN(widths=(4, 8, 8), feature_dim=8, conv_impl=impl),
                   (2, 28, 28, 1), {"train": False}),
}


def _unit_scale(key, params):
  """Parameters redrawn so that activations are O(1) throughout (the DCGAN's N(0, 0.02)
  initialisation shrinks them to ~1e-7, where a comparison says little): weights
  N(0, 1/fan-in), biases and norm scales N(0, 0.3^2) around 0 and 1."""
  leaves, treedef = jax.tree.flatten_with_path(params)
  keys = jax.random.split(key, len(leaves))

  def draw(k, path, leaf):
    z = jax.random.normal(k, leaf.shape, leaf.dtype)
    if leaf.ndim >= 2:
      return z / np.sqrt(np.prod(leaf.shape[:-1]))
    return (1.0 if "scale" in jax.tree_util.keystr(path) else 0.0) + 0.3 * z

  return treedef.unflatten([draw(k, p, leaf) for k, (p, leaf) in zip(keys, leaves, strict=True)])


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architecture_same_parameters_and_outputs_with_either_impl(name):
  """Built with conv_impl 'matmul' and 'xla': the same variable tree (names, shapes, dtypes,
  so checkpoints move between them) and, from the same variables, the same outputs (and
  batch-norm statistics, in training mode) to float32 rounding."""
  make, shape, kwargs = ARCHITECTURES[name]
  ours, flax_ = make("matmul"), make("xla")
  key, x = _key(7), _normal(1, shape)
  mine = jax.eval_shape(lambda k: ours.init(k, x, **kwargs), key)
  theirs = jax.eval_shape(lambda k: flax_.init(k, x, **kwargs), key)
  assert jax.tree.structure(mine) == jax.tree.structure(theirs)
  assert jax.tree.leaves(mine) == jax.tree.leaves(theirs)
  mutable = ["batch_stats"] if kwargs.get("train") and "batch_stats" in mine else False

  @jax.jit
  def run(x):
    variables = ours.init(key, x, **kwargs)
    variables = {**variables, "params": _unit_scale(jax.random.fold_in(key, 1),
                                                    variables["params"])}
    return [m.apply(variables, x, **kwargs, mutable=mutable) for m in (ours, flax_)]

  got, expected = run(x)
  # Each output of a layer is a sum of fan-in products; its two implementations add them in
  # different orders (and XLA may fuse differently), which in float32 (eps = 2^-23) differs by
  # about eps * sqrt(fan-in) of the sum's scale for random-signed terms (eps * fan-in at worst,
  # never approached). O(1) activations carry each layer's error on to the next about unchanged,
  # so the differences add over the network's depth. Allowed: 4x that, relative to the largest
  # output; measured differences are 50-400x smaller, a wrong padding or stride is O(1).
  kernels = [leaf.shape for leaf in jax.tree.leaves(mine["params"]) if leaf.ndim >= 2]
  fan_in = max(int(np.prod(k[:-1])) for k in kernels)
  tol = 4 * len(kernels) * np.finfo(np.float32).eps * np.sqrt(fan_in)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
    assert a.shape == b.shape
    scale = float(np.max(np.abs(b)))
    assert scale > 1e-3, "the comparison needs activations well above float32's rounding"
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=tol * scale,
                               err_msg=f"{name}: max |difference| over the largest output")
