"""The blended objective of genjax.classical.hybrid (lambda log p(x, y) + (1 - lambda) log p(y | x)
for Bernoulli NB, Gaussian NB and LDA): its value against the models' densities computed
independently, its gradient against finite differences, lambda = 1's optimum against the closed
forms, lambda = 0 against logistic regression, the trade-off along lambda, and bad weights."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from genjax import config as gconfig
from genjax import train, workdir
from genjax.classical import hybrid, logistic
from genjax.families import classical

MODELS = tuple(hybrid.MODELS)
CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
EPS32 = float(np.finfo(np.float32).eps)
NUM_CLASSES = 3
HP = {"bernoulli_nb": {"alpha": 1.0, "binarize": 0.0}, "gaussian_nb": {"var_smoothing": 0.05},
      "lda": {"shrinkage": 0.2}}


def toy(n_per_class: int = 30, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Three overlapping Gaussian classes in d dimensions, features of unequal scales."""
  rng = np.random.default_rng(seed)
  centres_CxD = rng.normal(size=(NUM_CLASSES, d))
  y_N = np.repeat(np.arange(NUM_CLASSES), n_per_class).astype(np.int32)
  x_NxD = centres_CxD[y_N] + rng.normal(size=(len(y_N), d)) * np.linspace(0.5, 2.0, d)
  return x_NxD.astype(np.float32), y_N


def as64(tree):
  """Every floating leaf as float64 (call inside jax.enable_x64)."""
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64)
                      if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)


def start64(name: str, x_NxD, y_N):
  """hybrid.start's (u0, const, phi) in float64 (inside jax.enable_x64)."""
  _, u0, const, phi_NxF = hybrid.start(name, x_NxD, y_N, NUM_CLASSES, None, **HP[name])
  return as64(u0), as64(const), as64(phi_NxF)


def perturbed(u: dict, scale: float, seed: int) -> dict:
  leaves, tree = jax.tree.flatten(u)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [a + scale * jax.random.normal(k, a.shape, a.dtype)
                                   for a, k in zip(leaves, keys, strict=True)])


def independent_terms(name: str, params: dict, x_NxD: np.ndarray, y_N: np.ndarray) -> dict:
  """Mean log p(x, y), mean log p(y | x) and the log prior of fitted-form params, in NumPy
  float64 from the densities' textbook forms and the raw rows (no statistics, no hooks)."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  x_NxD = x_NxD.astype(np.float64)
  n, d = x_NxD.shape
  hp = HP[name]
  if name == "bernoulli_nb":
    b_NxD = (x_NxD > hp["binarize"]).astype(np.float64)
    prob_CxD = np.exp(p["log_p_CxD"])
    jll_NxC = (b_NxD @ np.log(prob_CxD).T + (1 - b_NxD) @ np.log1p(-prob_CxD).T
               + p["log_prior_C"])
    log_prior = hp["alpha"] * np.sum(np.log(prob_CxD) + np.log1p(-prob_CxD))
  elif name == "gaussian_nb":
    mean_CxD, var_CxD = p["mean_CxD"], p["var_CxD"]
    jll_NxC = p["log_prior_C"] + np.stack([
        np.sum(-0.5 * np.log(2 * np.pi * var_CxD[c]) - 0.5 * (x_NxD - mean_CxD[c]) ** 2
               / var_CxD[c], axis=1) for c in range(NUM_CLASSES)], axis=1)
    epsilon = hp["var_smoothing"] * np.max(np.var(x_NxD, axis=0))
    count_C = np.bincount(y_N, minlength=NUM_CLASSES)
    log_prior = -0.5 * epsilon * np.sum(count_C[:, None] / var_CxD)
  else:
    cov_DxD = p["chol_DxD"] @ p["chol_DxD"].T
    jll_NxC = p["log_prior_C"] + np.stack([
        multivariate_normal(p["mean_CxD"][c], cov_DxD).logpdf(x_NxD)
        for c in range(NUM_CLASSES)], axis=1)
    centred_NxD = x_NxD - np.stack([x_NxD[y_N == c].mean(0) for c in range(NUM_CLASSES)])[y_N]
    within_DxD = centred_NxD.T @ centred_NxD / n
    s = hp["shrinkage"]
    a, tau = s * n / (1 - s), np.trace(within_DxD) / d
    log_prior = -0.5 * a * (np.linalg.slogdet(cov_DxD)[1] + tau * np.trace(np.linalg.inv(cov_DxD)))
  rows = np.arange(n)
  return {"joint": np.mean(jll_NxC[rows, y_N]),
          "conditional": np.mean((jll_NxC - logsumexp(jll_NxC, axis=1, keepdims=True))[rows, y_N]),
          "log_prior": log_prior, "scale": np.mean(np.abs(jll_NxC[rows, y_N]))}


@pytest.mark.parametrize("name", MODELS)
def test_objective_is_the_blend_of_the_independent_densities(name):
  x_NxD, y_N = toy()
  n = len(y_N)
  with jax.enable_x64(True):
    u0, const, phi_NxF = start64(name, x_NxD, y_N)
    for seed in (1, 2):
      u = perturbed(u0, 0.3, seed)  # away from the closed form, where nothing vanishes
      got = hybrid.terms(name, u, const, phi_NxF, jnp.asarray(y_N))
      want = independent_terms(name, got["params"], x_NxD, y_N)
      # The objective's constants are float32 statistics: sums of N rows, each within
      # N eps32 of the exact sum relative to the sum of the absolute values summed.
      tol = n * EPS32 * want["scale"]
      assert float(got["joint"]) == pytest.approx(want["joint"], abs=tol)
      assert float(got["conditional"]) == pytest.approx(want["conditional"], abs=tol)
      assert float(got["log_prior"]) == pytest.approx(want["log_prior"],
                                                     abs=n * EPS32 * abs(want["log_prior"]))
      for lam in (0.0, 0.3, 1.0):
        value = hybrid.objective(name, u, const, phi_NxF, jnp.asarray(y_N), lam)
        expected = -(lam * want["joint"] + (1 - lam) * want["conditional"]
                     + want["log_prior"] / n)
        assert float(value) == pytest.approx(expected, abs=2 * tol + n * EPS32 * abs(
            want["log_prior"]) / n)


@pytest.mark.parametrize("name", MODELS)
def test_gradient_matches_central_differences_in_float64(name):
  x_NxD, y_N = toy(n_per_class=8, d=3)
  with jax.enable_x64(True):
    u0, const, phi_NxF = start64(name, x_NxD, y_N)
    v0, unravel = ravel_pytree(perturbed(u0, 0.3, 3))
    f = jax.jit(lambda v: hybrid.objective(name, unravel(v), const, phi_NxF, jnp.asarray(y_N),
                                           0.4))
    g = jax.grad(f)(v0)
    h = 1e-5
    for seed in range(3):
      dir_P = jax.random.normal(jax.random.key(seed), v0.shape, jnp.float64)
      fd = (f(v0 + h * dir_P) - f(v0 - h * dir_P)) / (2 * h)
      # Central differences err by h^2 |f'''| / 6 (f''' of order 10 here: ~2e-10) plus
      # eps64 |f| / h (~1e-10); 1e-7 leaves room and still fails on any wrong term.
      assert float(g @ dir_P) == pytest.approx(float(fd), rel=1e-7, abs=1e-7)


def curvature(name: str, u: dict, const: dict, phi_NxF, y_N, lam: float) -> tuple[float, float]:
  """The smallest and largest Hessian eigenvalues of the float64 objective at u, the smallest
  outside its null directions (the prior logits' common shift; LDA's unused upper triangle)."""
  v, unravel = ravel_pytree(u)
  eig = np.linalg.eigvalsh(np.asarray(jax.hessian(
      lambda w: hybrid.objective(name, unravel(w), const, phi_NxF, y_N, lam))(v)))
  return float(np.min(eig[eig > 1e-9 * eig.max()])), float(eig.max())


@pytest.mark.parametrize("name", MODELS)
def test_lbfgs_at_joint_weight_one_reproduces_the_closed_form(name):
  x_NxD, y_N = toy()
  closed = hybrid.module(name).fit(x_NxD, y_N, NUM_CLASSES, **HP[name])
  # hybrid.fit at 1 is the closed-form fit itself, bit for bit.
  jax.tree.map(np.testing.assert_array_equal, hybrid.fit(name, x_NxD, y_N, NUM_CLASSES,
                                                         joint_weight=1.0, **HP[name]), closed)
  _, u0, const32, phi32 = hybrid.start(name, x_NxD, y_N, NUM_CLASSES, None, **HP[name])
  tol = 1e-5
  fitted = hybrid.fit_lbfgs(name, x_NxD, y_N, NUM_CLASSES, joint_weight=1.0, tol=tol,
                            u_start=perturbed(u0, 0.5, 7), **HP[name])
  assert int(fitted["num_iterations"]) > 1
  assert float(fitted["grad_norm"]) <= tol  # stopped by the gradient test, not float precision

  yj = jnp.asarray(y_N)
  g32 = ravel_pytree(jax.grad(lambda u: hybrid.objective(name, u, const32, phi32, yj, 1.0))(
      u0))[0]
  with jax.enable_x64(True):
    u64, const, phi_NxF = start64(name, x_NxD, y_N)
    v64, unravel = ravel_pytree(u64)
    f = lambda v: hybrid.objective(name, unravel(v), const, phi_NxF, yj, 1.0)
    g64 = jax.grad(f)(v64)
    mu, top = curvature(name, u64, const, phi_NxF, yj, 1.0)
    # The closed form is the exact objective's optimum (its smoothing is the prior): it is
    # float32-rounded params (a few ulps of each, 16 eps32 |u| in all), so the exact gradient
    # there is at most the largest curvature times that. A prior off by 20 % fails this by
    # orders of magnitude.
    rounding = 16 * EPS32 * float(jnp.linalg.norm(v64))
    assert float(jnp.linalg.norm(g64)) <= top * rounding
    # How far from the optimum a point with gradient norm <= tol can be: (tol + the float32
    # gradient's error + the closed form's rounding) / the smallest curvature, doubled for the
    # quadratic model's error; each output then moves at most |its gradient in u| times that.
    radius = 2 * (tol + float(jnp.linalg.norm(g32 - g64)) + top * rounding) / mu
    core = hybrid.module(name)

    def outputs(v):
      params = hybrid.terms(name, unravel(v), const, phi_NxF, yj)["params"]
      return {**{k: params[k] for k in closed if k != "threshold"},
              "log_proba": core.log_proba(params, jnp.asarray(x_NxD, jnp.float64))}

    jac = jax.jacobian(outputs)(v64)
    reach = jax.tree.map(lambda j: radius * np.linalg.norm(
        np.asarray(j).reshape(-1, j.shape[-1]), axis=1).reshape(j.shape[:-1]), jac)
  got = {**{k: fitted[k] for k in reach if k != "log_proba"},
         "log_proba": core.log_proba(fitted, x_NxD)}
  want = {**{k: closed[k] for k in reach if k != "log_proba"},
          "log_proba": core.log_proba(closed, x_NxD)}
  for k in reach:
    diff = np.abs(np.asarray(got[k], np.float64) - np.asarray(want[k], np.float64))
    # plus float32's rounding of the outputs themselves (a few ulps of each)
    bound = reach[k] + 8 * EPS32 * (1 + np.abs(np.asarray(want[k], np.float64)))
    assert np.all(diff <= bound), (k, float(np.max(diff - bound)))


def test_discriminative_bernoulli_nb_predicts_as_logistic_regression():
  """Separable by feature 0; features 1-8 are one noisy copy of the label (70 % agreement),
  counted eight times by naive Bayes's independence. The generative fit follows the copies
  where they disagree with feature 0; the discriminative fit, like logistic regression on the
  same binary features, follows feature 0."""
  n_per_class, copies = 50, 8
  y_N = np.repeat([0, 1], n_per_class).astype(np.int32)
  agree_N = np.tile(np.arange(n_per_class) < 35, 2)  # exactly 70 % in each class
  z_N = np.where(agree_N, y_N, 1 - y_N)
  x_NxD = np.column_stack([y_N] + [z_N] * copies).astype(np.float32)
  test_x = np.array([[x0] + [z] * copies for x0 in (0, 1) for z in (0, 1)], np.float32)
  hp = {"alpha": 1.0, "binarize": 0.5}
  generative = hybrid.fit("bernoulli_nb", x_NxD, y_N, 2, joint_weight=1.0, **hp)
  discriminative = hybrid.fit("bernoulli_nb", x_NxD, y_N, 2, joint_weight=0.0, tol=1e-6, **hp)
  lr = logistic.fit(x_NxD, y_N, 2, l2=1e-3)
  from genjax.classical import bernoulli_nb
  want = np.asarray(logistic.predict(lr, test_x))
  np.testing.assert_array_equal(want, test_x[:, 0])  # logistic regression follows feature 0
  # The dial matters here: the generative fit follows the eight copies (log 51 < 8 log(36/16)).
  np.testing.assert_array_equal(bernoulli_nb.predict(generative, test_x), test_x[:, 1])
  np.testing.assert_array_equal(bernoulli_nb.predict(discriminative, test_x), want)
  # The Beta prior at full weight keeps the separable fit's logits finite.
  assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(discriminative))


def test_given_class_priors_stay_fixed():
  x_NxD, y_N = toy()
  priors_C = np.array([0.2, 0.3, 0.5], np.float32)
  for name in ("bernoulli_nb", "lda"):
    fitted = hybrid.fit(name, x_NxD, y_N, NUM_CLASSES, priors_C, joint_weight=0.5, **HP[name])
    np.testing.assert_array_equal(fitted["log_prior_C"], np.log(priors_C))
    free = hybrid.fit(name, x_NxD, y_N, NUM_CLASSES, joint_weight=0.5, **HP[name])
    # free priors move off the class frequencies (1/3 each) at joint_weight < 1
    assert np.max(np.abs(np.exp(free["log_prior_C"]) - 1 / 3)) > 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_conditional_likelihood_rises_as_joint_weight_falls(name):
  """With the prior P shared, the objective is lambda J' + (1 - lambda) C' with J' = J + P / N
  and C' = C + P / N, so exact optima have C' non-increasing and J - C (the mean log p(x))
  non-decreasing in lambda; an optimum within eps of its objective moves the first bound by at
  most (b eps_a + a eps_b) / (b - a) between weights a < b. Solved in float64 by the same
  L-BFGS, eps from the final gradient norm and the curvature (g^2 / 2 mu)."""
  x_NxD, y_N = toy(n_per_class=20, d=3)
  yj = jnp.asarray(y_N)
  with jax.enable_x64(True):
    u0, const, phi_NxF = start64(name, x_NxD, y_N)
    n = phi_NxF.shape[0]

    @jax.jit
    def solve(lam, u_init):
      fun = lambda u: hybrid.objective(name, u, const, phi_NxF, yj, lam)
      return logistic.minimize_lbfgs(fun, u_init, max_iter=2000, tol=1e-9)

    path, u = [], u0
    for lam in (1.0, 0.75, 0.5, 0.25, 0.0):  # each from the previous optimum
      u, info = solve(jnp.float64(lam), u)
      t = hybrid.terms(name, u, const, phi_NxF, yj)
      mu, _ = curvature(name, u, const, phi_NxF, yj, lam)
      path.append({"lam": lam, "cond": float(t["conditional"] + t["log_prior"] / n),
                   "marginal": float(t["joint"] - t["conditional"]),
                   "eps": float(info["grad_norm"]) ** 2 / (2 * mu) + 1e-14})
  for hi, lo in zip(path[:-1], path[1:], strict=True):  # hi has the larger lambda
    b, a = hi["lam"], lo["lam"]
    assert lo["cond"] >= hi["cond"] - (b * lo["eps"] + a * hi["eps"]) / (b - a)
    assert hi["marginal"] >= lo["marginal"] - (lo["eps"] + hi["eps"]) / (b - a)
  # and the dial moves something: the discriminative end fits the labels better
  assert path[-1]["cond"] > path[0]["cond"] + 1e-3


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_joint_weight_fails_in_one_line_before_anything_compiles(bad):
  config = classical.experiment_config("iris", name="bernoulli_nb")
  config.model.joint_weight = bad
  # No training split at all: create_state refuses before it reads one, or traces the fit.
  with pytest.raises(ValueError, match=r"model\.joint_weight") as e:
    classical.create_state(jax.random.key(0), config, None)
  assert "\n" not in str(e.value) and "[0, 1]" in str(e.value)
  with pytest.raises(ValueError, match=r"model\.joint_weight") as e:
    hybrid.fit("lda", None, None, NUM_CLASSES, joint_weight=bad)
  assert "\n" not in str(e.value)
  with pytest.raises(ValueError, match=r"model\.joint_weight"):  # not silently 1.0
    hybrid.fit("lda", None, None, NUM_CLASSES, joint_weight=True)


def test_joint_weight_only_on_models_with_a_joint_likelihood():
  for name in classical.MODELS:
    c = classical.experiment_config("iris", name=name)
    assert ("joint_weight" in c.model) == (name in MODELS)
    if name in MODELS:
      assert c.model.joint_weight == 1.0 and c.model.max_iter == hybrid.DEFAULT_MAX_ITER
  # The command line cannot add the field to kNN (ml_collections' unknown field) ...
  with pytest.raises(AttributeError):
    gconfig.load(f"{CONFIGS / 'knn.py'}:iris").model.joint_weight = 0.5
  # ... and a config built by hand with one fails in one line, naming the models that have it.
  for name in ("knn", "logistic", "linear_svm"):
    config = classical.experiment_config("iris", name=name)
    config.model.joint_weight = 0.5
    with pytest.raises(ValueError, match=rf"model\.joint_weight: '{name}' has no joint") as e:
      classical.create_state(jax.random.key(0), config, None)
    assert "\n" not in str(e.value) and "bernoulli_nb, gaussian_nb, lda" in str(e.value)
  config = classical.experiment_config("iris", name="lda")
  config.model.max_iter = 0
  with pytest.raises(ValueError, match=r"model\.max_iter must be a positive integer"):
    classical.create_state(jax.random.key(0), config, None)


def test_joint_weight_through_the_loop_and_the_workdir(tmp_path):
  """A blended fit through the loop equals the core's on the same rows, results.json says its
  weight, and the same workdir refuses another weight."""
  config = gconfig.load(f"{CONFIGS / 'gaussian_nb.py'}:iris")
  config.train.progress = False
  config.model.joint_weight = 0.5
  results = train.train_and_evaluate(config, str(tmp_path))
  assert results["joint_weight"] == 0.5
  assert json.loads((tmp_path / "results.json").read_text())["joint_weight"] == 0.5
  _, _, state = train.restore_for_eval(str(tmp_path))
  split = train.load_split(config, "train")
  x_NxD, y_N = classical.training_rows(split)
  want = hybrid.fit("gaussian_nb", x_NxD, y_N, 3, joint_weight=0.5,
                    **classical._core_kwargs(config.model.hp.to_dict()))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.params), jax.device_get(want))
  fitted = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert fitted[0]["num_iterations"] >= 1 and "grad_norm" in fitted[0]
  config.model.joint_weight = 0.25
  with pytest.raises(workdir.WorkdirError, match=r"model\.joint_weight 0\.5 -> 0\.25"):
    train.train_and_evaluate(config, str(tmp_path))
