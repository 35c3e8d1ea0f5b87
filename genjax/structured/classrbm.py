"""Classification RBM over (x, one-hot y): free energies, exact p(y | x), Gibbs, gradients.

Larochelle & Bengio (2008), Larochelle, Mandel, Pascanu & Bengio (JMLR 2012). Binary visible
units x (D), a one-hot label y (C) and binary hidden units h (H) with energy

  E(x, y, h) = -x.b - d_y - h.c - x W h - U_y h,

so the hidden units are conditionally independent given (x, y) and

  p(h_j = 1 | x, y) = sigmoid(c_j + (xW)_j + U_yj),
  p(x_i = 1 | h) = sigmoid(b_i + (W h)_i),      p(y | h) = softmax_y(d_y + (U h)_y),
  F(x, y) = -x.b - d_y - sum_j softplus(c_j + (xW)_j + U_yj),
  p(y | x) = softmax_y(-F(x, y))                  (exact: C free energies, no partition function).

Every gradient here is the difference of two expected sufficient statistics (`statistics`):
d log p(x, y) = S(x, y) - E_model[S] (estimated by CD-k / persistent CD over the joint),
d log p(y | x) = S(x, y) - E_{y' ~ p(y' | x)}[S(x, y')] (exact), and
d log p(x) = E_{y ~ p(y | x)}[S(x, y)] - E_model[S] (the semi-supervised term). Pure functions,
no config: genjax.families.classrbm trains them, genjax.structured.ais anneals them.
"""

import itertools

import jax
import jax.numpy as jnp
from flax import struct

from genjax import rng

# Above this many hidden units, enumerating 2^H hidden states is refused (use AIS).
MAX_ENUMERATED_HIDDEN = 20


@struct.dataclass
class ClassRBMParams:
  """Weights W_DxH (visible-hidden) and U_CxH (label-hidden); biases b_D, c_H and d_C."""

  w: jax.Array
  u: jax.Array
  b: jax.Array
  c: jax.Array
  d: jax.Array


# ------------------------------------------------------------------------------ energies


def free_energy(params: ClassRBMParams, x_BxD: jax.Array, y_BxC: jax.Array) -> jax.Array:
  """F(x, y) = -x.b - y.d - sum_j softplus(c_j + (xW)_j + (yU)_j) of one-hot (float) labels;
  shape (B,): p(x, y) = exp(-F(x, y)) / Z."""
  a_BxH = x_BxD @ params.w + y_BxC @ params.u + params.c
  return -x_BxD @ params.b - y_BxC @ params.d - jnp.sum(jax.nn.softplus(a_BxH), axis=-1)


def _hidden_inputs(params: ClassRBMParams, x_BxD: jax.Array) -> jax.Array:
  """c + xW + U_y for every class y: shape (B, C, H) (one [B, D] x [D, H] matmul)."""
  return (x_BxD @ params.w + params.c)[:, None, :] + params.u[None, :, :]


def _sigmoid_softplus(z: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(sigmoid(z), softplus(z)) from one exp(-|z|) per entry: over the [B, C, H] hidden inputs
  the two transcendental passes were about 40 % of the CD-1 hybrid step."""
  e = jnp.exp(-jnp.abs(z))
  r = 1.0 / (1.0 + e)
  return jnp.where(z >= 0, r, e * r), jnp.maximum(z, 0.0) + jnp.log1p(e)


def class_forward(params: ClassRBMParams, x_BxD: jax.Array) -> tuple[jax.Array, jax.Array]:
  """p(h = 1 | x, y) for every class y, shape (B, C, H), and -F(x, y) for every y, shape
  (B, C): what both the exact p(y | x) and the data's statistics need, from one x W product
  and one exp per hidden input."""
  o_BxCxH, softplus_BxCxH = _sigmoid_softplus(_hidden_inputs(params, x_BxD))
  scores_BxC = (x_BxD @ params.b)[:, None] + params.d + jnp.sum(softplus_BxCxH, axis=-1)
  return o_BxCxH, scores_BxC


def class_scores(params: ClassRBMParams, x_BxD: jax.Array) -> jax.Array:
  """-F(x, y) for every class y, shape (B, C)."""
  return class_forward(params, x_BxD)[1]


def log_p_y_given_x(params: ClassRBMParams, x_BxD: jax.Array) -> jax.Array:
  """Exact log p(y | x) = log_softmax_y(-F(x, y)), shape (B, C)."""
  return jax.nn.log_softmax(class_scores(params, x_BxD), axis=-1)


def hidden_log_weight(params: ClassRBMParams, h_KxH: jax.Array) -> jax.Array:
  """log sum_{x, y} exp(-E(x, y, h)) = h.c + sum_i softplus(b_i + (W h)_i) + logsumexp_y
  (d_y + (U h)_y), shape (K,): the hidden marginal's unnormalised log-probability (x and y
  summed out), what AIS over the hidden units anneals."""
  return (h_KxH @ params.c + jnp.sum(jax.nn.softplus(h_KxH @ params.w.T + params.b), axis=-1)
          + jax.nn.logsumexp(h_KxH @ params.u.T + params.d, axis=-1))


def exact_log_partition(params: ClassRBMParams) -> jax.Array:
  """log Z = logsumexp over all 2^H hidden states of hidden_log_weight (tiny models, tests)."""
  num_hidden = params.c.shape[0]
  if num_hidden > MAX_ENUMERATED_HIDDEN:
    raise ValueError(f"enumerating 2^{num_hidden} hidden states is too many (at most "
                     f"2^{MAX_ENUMERATED_HIDDEN}); use AIS")
  states_KxH = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=num_hidden)),
                           params.c.dtype)
  return jax.nn.logsumexp(hidden_log_weight(params, states_KxH))


# ------------------------------------------------------------------------------ conditionals


def hidden_probs(params: ClassRBMParams, x_BxD: jax.Array, y_BxC: jax.Array) -> jax.Array:
  """p(h = 1 | x, y), shape (B, H)."""
  return jax.nn.sigmoid(x_BxD @ params.w + y_BxC @ params.u + params.c)


def visible_probs(params: ClassRBMParams, h_BxH: jax.Array) -> jax.Array:
  """p(x = 1 | h), shape (B, D)."""
  return jax.nn.sigmoid(h_BxH @ params.w.T + params.b)


def label_log_probs(params: ClassRBMParams, h_BxH: jax.Array) -> jax.Array:
  """log p(y | h) = log_softmax(d + U h), shape (B, C)."""
  return jax.nn.log_softmax(h_BxH @ params.u.T + params.d, axis=-1)


def sample_labels(key: jax.Array, log_p_BxC: jax.Array, axis_name: str | None = None) -> jax.Array:
  """One-hot draws from the rows of log_p_BxC, shape (B, C); one key per example of the global
  batch (genjax.rng.example_keys), so N devices draw what one device draws."""
  keys = rng.example_keys(key, log_p_BxC.shape[0], axis_name)
  y_B = jax.vmap(jax.random.categorical)(keys, log_p_BxC)
  return jax.nn.one_hot(y_B, log_p_BxC.shape[-1], dtype=log_p_BxC.dtype)


def _bernoulli(key: jax.Array, p_BxK: jax.Array, axis_name: str | None) -> jax.Array:
  return rng.bernoulli(key, p_BxK, axis_name).astype(p_BxK.dtype)


def gibbs_step(params: ClassRBMParams, x_BxD: jax.Array, y_BxC: jax.Array, key: jax.Array,
               axis_name: str | None = None,
               clamp_labels: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One block Gibbs sweep h ~ p(h | x, y), then x' ~ p(x | h) and y' ~ p(y | h) (y kept
  when `clamp_labels`). Returns (x' sampled, y' one-hot, p(x' = 1 | h))."""
  return _gibbs_step_from(params, hidden_probs(params, x_BxD, y_BxC), y_BxC, key, axis_name,
                          clamp_labels)


def _gibbs_step_from(params: ClassRBMParams, ph_BxH: jax.Array, y_BxC: jax.Array,
                     key: jax.Array, axis_name: str | None,
                     clamp_labels: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
  """gibbs_step given p(h = 1 | x, y) of its start."""
  k_h, k_x, k_y = jax.random.split(key, 3)
  h = _bernoulli(k_h, ph_BxH, axis_name)
  px = visible_probs(params, h)
  y = y_BxC if clamp_labels else sample_labels(k_y, label_log_probs(params, h), axis_name)
  return _bernoulli(k_x, px, axis_name), y, px


def gibbs_chain(params: ClassRBMParams, x_BxD: jax.Array, y_BxC: jax.Array, key: jax.Array,
                num_steps: int, axis_name: str | None = None, clamp_labels: bool = False,
                start_hidden_probs_BxH: jax.Array | None = None
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`num_steps` block Gibbs sweeps from (x, y) (a `lax.scan`, the key folded with the sweep's
  index). `start_hidden_probs_BxH`: p(h = 1 | x, y) of the start where the caller has it (CD
  from the data: class_forward's probabilities at the labels), which saves the first sweep's
  x W product; the draws are the same. Returns the last sweep's (x sampled, y one-hot,
  p(x = 1 | h))."""

  def body(carry, t):
    x, y, _ = carry
    return gibbs_step(params, x, y, jax.random.fold_in(key, t), axis_name, clamp_labels), None

  carry, first = (x_BxD, y_BxC, x_BxD), 0
  if start_hidden_probs_BxH is not None and num_steps > 0:
    carry = _gibbs_step_from(params, start_hidden_probs_BxH, y_BxC, jax.random.fold_in(key, 0),
                             axis_name, clamp_labels)
    first = 1
  if first < num_steps:  # CD-1 from known probabilities: no loop left (not even an empty one)
    carry, _ = jax.lax.scan(body, carry, jnp.arange(first, num_steps))
  return carry


# ------------------------------------------------------------------------------ gradients


def statistics(params: ClassRBMParams, x_BxD: jax.Array, q_BxC: jax.Array) -> ClassRBMParams:
  """Batch means of the sufficient statistics -dE/dtheta, in expectation over y ~ q(y) (rows
  of q_BxC: one-hot labels, or a distribution such as p(y | x)) and h ~ p(h | x, y).

  Each is -dF(x, y)/dtheta summed over y with weights q_y: x h^T, e_y h^T, x, h and e_y, with h
  replaced by p(h = 1 | x, y). (Rows of q need not sum to 1: weights N p(x, y) over all N
  visible states give the model's exact expectation.) Returns a ClassRBMParams of the same
  shapes as `params`.
  """
  return statistics_from_probs(x_BxD, q_BxC, class_forward(params, x_BxD)[0])


def statistics_from_probs(x_BxD: jax.Array, q_BxC: jax.Array,
                          o_BxCxH: jax.Array) -> ClassRBMParams:
  """`statistics` given the hidden probabilities o_BxCxH = p(h = 1 | x, y) of every class
  (class_forward's first output, shared with p(y | x)). The W statistic is one product x^T g
  with g = sum_y q_y o_y, whatever q is."""
  qo_BxCxH = q_BxC[:, :, None] * o_BxCxH
  g_BxH = jnp.sum(qo_BxCxH, axis=1)
  n = x_BxD.shape[0]
  return ClassRBMParams(w=x_BxD.T @ g_BxH / n, u=jnp.sum(qo_BxCxH, axis=0) / n,
                        b=jnp.sum(q_BxC, -1) @ x_BxD / n, c=jnp.mean(g_BxH, 0),
                        d=jnp.mean(q_BxC, 0))


def sample_statistics(params: ClassRBMParams, x_BxD: jax.Array,
                      y_BxC: jax.Array) -> ClassRBMParams:
  """`statistics` at one-hot labels y (the chains' states): the same numbers from one [B, H]
  sigmoid instead of C, since only the labelled class's hidden probabilities are weighted."""
  h_BxH = hidden_probs(params, x_BxD, y_BxC)
  n = x_BxD.shape[0]
  return ClassRBMParams(w=x_BxD.T @ h_BxH / n, u=y_BxC.T @ h_BxH / n,
                        b=jnp.sum(y_BxC, -1) @ x_BxD / n, c=jnp.mean(h_BxH, 0),
                        d=jnp.mean(y_BxC, 0))


def _difference(a: ClassRBMParams, b: ClassRBMParams) -> ClassRBMParams:
  return jax.tree.map(jnp.subtract, a, b)


def discriminative_gradient(params: ClassRBMParams, x_BxD: jax.Array,
                            y_BxC: jax.Array) -> ClassRBMParams:
  """The exact gradient of mean_B log p(y | x): S(x, y) - E_{y' ~ p(y' | x)}[S(x, y')]
  (`statistics`; the visible biases' part cancels to 0).

  The statistics are linear in the label weights, so this is one pass, statistics with weights
  y - p(y | x): a forward and a backward [B, D] x [D, H] product, as fast as jax.grad of
  log_p_y_given_x (4.7 ms against 6.2 ms for two passes at D 784, H 500, B 100, 2 shared cores).
  """
  o_BxCxH, scores_BxC = class_forward(params, x_BxD)
  p_BxC = jnp.exp(jax.nn.log_softmax(scores_BxC, axis=-1))
  return statistics_from_probs(x_BxD, y_BxC - p_BxC, o_BxCxH)


def cd_gradient(params: ClassRBMParams, x0_BxD: jax.Array, q0_BxC: jax.Array,
                xk_MxD: jax.Array, yk_MxC: jax.Array) -> ClassRBMParams:
  """The CD / persistent-CD estimate of a log-likelihood gradient: the data's statistics
  (x0 with label distribution q0: one-hot labels for log p(x, y), p(y | x0) for log p(x))
  minus those of the chains' states (xk, yk)."""
  return _difference(statistics(params, x0_BxD, q0_BxC), statistics(params, xk_MxD, yk_MxC))
