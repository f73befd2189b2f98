"""Maximum-likelihood fits of memory-game policies to LLM choices, held-out checks and bootstrap uncertainty.

A :class:`Family` maps unconstrained arrays to a policy. Families fitted by L-BFGS (optax):

- ``softmax``: :class:`~jaxconv.policies.SoftmaxSurrogate` with free ``bias`` (W,), ``win_stay``, ``lose_shift``,
  ``own_weight``, ``partner_weight`` and ``recency`` in (0, 1) (logistic). Fixed, because the likelihood cannot
  tell them apart from the others: ``temperature = 1`` (dividing every score by T is the same as scaling every
  weight), ``copy_partner = 0`` (copying the last partner is win-stay plus lose-shift of the same size), and the
  bias is centred (sum 0: adding a constant to every name changes nothing).
- ``best-response``: :class:`~jaxconv.policies.BestResponse` with ``payoff_weight = 0`` and a free ``sharpness``
  (log scale): noisy best response to the partners' names in memory.

Baselines: ``uniform`` (nothing to fit) and ``lookup``: the empirical table P(name | own and partner names of the
last d rounds) with additive smoothing, read off the counts of the training runs.

Fits maximise the log-likelihood plus a weak Gaussian prior, sd ``PRIOR_SD`` on every raw parameter: with
near-deterministic agents some weights barely change the likelihood (once a name is chosen with probability
1 - 1e-9, a larger win-stay weight gains nothing), and the prior makes the optimum unique there without moving
the parameters the data do constrain (its weight per choice is 1 / (2 sd^2 n_choices)). Each parameter's
``laplace_sd`` (posterior sd from the curvature at the estimate, through the transforms) tells which are which:
about ``PRIOR_SD`` or more for a parameter the data leave free (``identified`` False).

Every fit is a weighting of runs (:mod:`jaxconv.estimate.likelihood`), so the full-data fit, the K held-out folds
and the B bootstrap resamples run one compiled optimiser on different weights (the folds and resamples start from
the full-data estimate):

- held-out log-likelihood: K-fold over runs, stratified by file (each file's runs shuffled and dealt to the folds in
  turn); each fold is fitted on the other runs and scored on its own; per choice = total held-out log-likelihood
  over all choices / number of choices. ``train`` is the full-data fit scored on all choices.
- held-out log-likelihood over files (``held_out_files``, when the data have two files or more): leave one file
  out, the same way; a file is a condition (population size, committed-minority series), so this asks whether the
  policy carries over to a condition it was not fitted on.
- bootstrap: runs resampled with replacement within each file, refitted; mean, sd and the 2.5-97.5% percentile
  interval of each parameter.
- round dependence (:func:`round_dependence`): whether splitting the empirical table P(name | memory window) by
  population round improves the held-out log-likelihood (it would if agents changed with the round in ways their
  window does not show).
"""

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxconv.estimate.likelihood import ChoiceData, choice_counts, mean_log_likelihood, state_log_probs
from jaxconv.policies import BestResponse, LookupTable, Policy, SoftmaxSurrogate

ITERATIONS = 500  # at most this many L-BFGS steps per fit
TOLERANCE = 1e-6  # a fit stops once the gradient norm of the objective (per choice) is below
CONVERGED = 1e-4  # a fit whose final gradient norm is larger is reported as not converged
PRIOR_SD = 5.0  # sd of the Gaussian prior on every raw parameter


@dataclass(frozen=True, eq=False)
class Family:
    """A parametric policy family: ``init(W) -> raw`` (a dict of arrays), ``policy(raw) -> Policy`` and
    ``parameters(policy) -> {name: value}`` (the reported, constrained values)."""

    name: str
    init: Callable[[int], dict]
    policy: Callable[[dict], Policy]
    parameters: Callable[[Policy], dict]


EXTRAS = ("first", "unanimity", "lapse")  # optional SoftmaxSurrogate terms a family can add
LAPSE_START = -6.0  # raw (logit) start of the lapse rate: 0.25%


def _softmax_family(extras: tuple[str, ...] = ()) -> Family:
    """The softmax family, with the optional terms ``extras`` (of ``EXTRAS``): ``first`` a separate empty-memory
    bias (W,), centred; ``unanimity`` a bonus for the name of a unanimous full memory; ``lapse`` a tremble rate in
    (0, 1) (logistic)."""
    unknown = set(extras) - set(EXTRAS)
    if unknown:
        raise ValueError(f"unknown softmax terms {sorted(unknown)}; choose from {list(EXTRAS)}")

    def init(n_names: int) -> dict:
        zero = jnp.float32(0.0)
        weights = ("win_stay", "lose_shift", "own_weight", "partner_weight", "recency_logit")
        raw = {"bias": jnp.zeros(n_names)} | {name: zero for name in weights}
        if "first" in extras:
            raw["first_bias"] = jnp.zeros(n_names)
        if "unanimity" in extras:
            raw["unanimity"] = zero
        if "lapse" in extras:
            raw["lapse_logit"] = jnp.float32(LAPSE_START)
        return raw

    def policy(raw: dict) -> SoftmaxSurrogate:
        return SoftmaxSurrogate(
            raw["bias"] - raw["bias"].mean(),
            win_stay=raw["win_stay"],
            lose_shift=raw["lose_shift"],
            own_weight=raw["own_weight"],
            partner_weight=raw["partner_weight"],
            recency=jax.nn.sigmoid(raw["recency_logit"]),
            first_bias=raw["first_bias"] - raw["first_bias"].mean() if "first" in extras else None,
            unanimity=raw.get("unanimity"),
            lapse=jax.nn.sigmoid(raw["lapse_logit"]) if "lapse" in extras else None,
        )

    def parameters(policy: SoftmaxSurrogate) -> dict:
        names = ("bias", "win_stay", "lose_shift", "own_weight", "partner_weight", "recency")
        names += tuple(n for n in ("first_bias", "unanimity", "lapse") if getattr(policy, n) is not None)
        return {name: getattr(policy, name) for name in names}

    return Family("+".join(("softmax",) + tuple(extras)), init, policy, parameters)


SOFTMAX = _softmax_family()
RICHER = tuple(_softmax_family(extras) for extras in (("first",), ("unanimity",), ("first", "unanimity"), EXTRAS))
BEST_RESPONSE = Family(
    "best-response",
    lambda n_names: {"log_sharpness": jnp.float32(0.0)},
    lambda raw: BestResponse(0.0, jnp.exp(raw["log_sharpness"])),
    lambda policy: {"sharpness": policy.sharpness},
)
FAMILIES = {family.name: family for family in (SOFTMAX, *RICHER, BEST_RESPONSE)}
PER_NAME = ("bias", "first_bias")  # parameters reported per name


def policy_from_parameters(name: str, parameters: dict, fixed: dict, names: list[str]) -> Policy:
    """The policy of a fitted group as ``jaxconv fit --json`` reports it (``policy``, ``parameters`` with an
    ``estimate`` per parameter, per name for the bias, and the ``fixed`` ones); ValueError naming what is missing."""
    if name.split("+")[0] == SOFTMAX.name:
        try:
            bias = [parameters["bias"][n]["estimate"] for n in names]
            weights = {k: v["estimate"] for k, v in parameters.items() if k not in PER_NAME}
            if "first_bias" in parameters:
                weights["first_bias"] = [parameters["first_bias"][n]["estimate"] for n in names]
            return SoftmaxSurrogate(bias, **weights, **fixed)
        except (KeyError, TypeError) as error:
            raise ValueError(f"fitted softmax parameters lack {error}") from None
    if name == BEST_RESPONSE.name:
        return BestResponse(0.0, parameters["sharpness"]["estimate"])
    raise ValueError(f"unknown policy {name!r}; choose one of {list(FAMILIES)}")


def family(name: str) -> Family:
    """The family called ``name``; ValueError naming it if unknown."""
    if name not in FAMILIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {list(FAMILIES)}")
    return FAMILIES[name]


def check_settings(policy: str, bootstrap: int, folds: int) -> Family:
    """The family called ``policy``, after checking the numbers of resamples (>= 0) and folds (>= 2); ValueError
    naming the bad value."""
    for label, value, low in (("bootstrap", bootstrap, 0), ("folds", folds, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    return family(policy)


# ----- optimisation ---------------------------------------------------------------------------------------------
@dataclass
class Fits:
    """``F`` fits of one family: ``raw`` (dict of arrays with leading axis F), ``log_likelihood`` (F,) per choice
    on each fit's own weighted data (prior excluded), ``gradient_norm`` (F,) of the objective at the end."""

    family: Family
    raw: dict
    log_likelihood: np.ndarray
    gradient_norm: np.ndarray

    def policy(self, index: int) -> Policy:
        return self.family.policy(jax.tree.map(lambda x: x[index], self.raw))

    def parameters(self) -> dict[str, np.ndarray]:
        """Reported parameters of every fit, each with leading axis F."""
        return {
            k: np.asarray(v)
            for k, v in jax.vmap(lambda r: self.family.parameters(self.family.policy(r)))(self.raw).items()
        }


def fit_runs(
    family: Family,
    data: ChoiceData,
    run_weights,
    start: dict | None = None,
    iterations: int = ITERATIONS,
    prior_sd: float = PRIOR_SD,
) -> Fits:
    """Fits of ``family`` (maximum likelihood with the weak prior) under each row of run weights ``(F, n_runs)``,
    one after the other (one compiled program), each from ``start`` (raw values; default ``family.init``) until the
    gradient norm is below ``TOLERANCE`` or after ``iterations`` L-BFGS steps."""
    start = family.init(data.n_names) if start is None else start
    results = [
        _minimize(family, data.n_names, data.states, choice_counts(data, w), start, iterations, prior_sd)
        for w in np.atleast_2d(run_weights)
    ]
    raw = jax.tree.map(lambda *xs: jnp.stack(xs), *[r[0] for r in results])
    value, norm = (np.array([float(r[i]) for r in results]) for i in (1, 2))
    return Fits(family, raw, -value, norm)


@eqx.filter_jit
def _minimize(family: Family, n_names: int, states, counts: jax.Array, start: dict, iterations: int, prior_sd):
    """L-BFGS on minus the log posterior per choice of ``counts`` ``(S, W)``: (raw, final minus mean
    log-likelihood, final gradient norm)."""
    n_choices = jnp.sum(counts)

    def minus_log_likelihood(raw):
        return -mean_log_likelihood(state_log_probs(family.policy(raw), states, n_names), counts)

    def loss(raw):
        prior = sum(jnp.sum(x**2) for x in jax.tree.leaves(raw)) / (2 * prior_sd**2 * n_choices)
        return minus_log_likelihood(raw) + prior

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def running(carry):
        _, _, step, norm = carry
        return (step < iterations) & (norm > TOLERANCE)

    def step(carry):
        raw, opt_state, count, _ = carry
        value, grad = value_and_grad(raw, state=opt_state)
        updates, opt_state = solver.update(grad, opt_state, raw, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(raw, updates), opt_state, count + 1, optax.tree.norm(grad)

    carry = (start, solver.init(start), jnp.int32(0), jnp.float32(jnp.inf))
    raw = jax.lax.while_loop(running, step, carry)[0]
    return raw, minus_log_likelihood(raw), optax.tree.norm(jax.grad(loss)(raw))


def laplace_sd(family: Family, data: ChoiceData, raw: dict, prior_sd: float = PRIOR_SD) -> dict[str, np.ndarray]:
    """Posterior sd of each reported parameter at ``raw`` (Laplace approximation: inverse curvature of the log
    posterior of all choices, negative curvature clipped to 0, mapped through the transforms by the delta method)."""
    flat, unravel = ravel_pytree(raw)
    counts = choice_counts(data)

    def log_likelihood(x):
        log_probs = state_log_probs(family.policy(unravel(x)), data.states, data.n_names)
        return mean_log_likelihood(log_probs, counts) * jnp.sum(counts)

    def reported(x):
        return ravel_pytree(family.parameters(family.policy(unravel(x))))[0]

    hessian = np.asarray(jax.hessian(log_likelihood)(flat), np.float64)
    curvature, vectors = np.linalg.eigh(-(hessian + hessian.T) / 2)
    covariance = vectors @ np.diag(1 / (np.maximum(curvature, 0) + prior_sd**-2)) @ vectors.T
    jacobian = np.asarray(jax.jacobian(reported)(flat), np.float64)
    sd = np.sqrt(np.einsum("ij,jk,ik->i", jacobian, covariance, jacobian))
    _, unravel_reported = ravel_pytree(family.parameters(family.policy(raw)))
    return {name: np.asarray(value) for name, value in unravel_reported(jnp.asarray(sd)).items()}


def laplace_draws(
    family: Family,
    data: ChoiceData,
    raw: dict,
    n_draws: int,
    seed: int = 0,
    prior_sd: float = PRIOR_SD,
) -> list[dict]:
    """``n_draws`` raw parameter vectors from the Laplace approximation of the posterior at ``raw`` (Gaussian, the
    inverse curvature of the log posterior of all choices as covariance), for predictions that integrate over
    parameter uncertainty. The first draw is ``raw`` itself."""
    flat, unravel = ravel_pytree(raw)
    counts = choice_counts(data)

    def log_posterior(x):
        log_probs = state_log_probs(family.policy(unravel(x)), data.states, data.n_names)
        return mean_log_likelihood(log_probs, counts) * jnp.sum(counts) - jnp.sum(x**2) / (2 * prior_sd**2)

    hessian = np.asarray(jax.hessian(log_posterior)(flat), np.float64)
    curvature, vectors = np.linalg.eigh(-(hessian + hessian.T) / 2)
    root = vectors @ np.diag(1 / np.sqrt(np.maximum(curvature, prior_sd**-2)))
    rng = np.random.default_rng(seed)
    draws = [unravel(flat)]
    for _ in range(n_draws - 1):
        draws.append(unravel(jnp.asarray(np.asarray(flat) + root @ rng.standard_normal(len(flat)), jnp.float32)))
    return draws


# ----- resampling -----------------------------------------------------------------------------------------------
def fold_of_runs(data: ChoiceData, folds: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_runs,)`` fold of each run: each file's runs shuffled and dealt to the folds in turn (continuing where
    the previous file stopped, so small files do not all land in fold 0)."""
    if data.n_runs < 2:
        raise ValueError(f"held-out folds need at least 2 runs, the data have {data.n_runs}")
    folds = min(folds, data.n_runs)
    fold = np.empty(data.n_runs, dtype=np.int64)
    dealt = 0
    for f in range(len(data.files)):
        runs = rng.permutation(np.flatnonzero(data.run_file == f))
        fold[runs] = (dealt + np.arange(len(runs))) % folds
        dealt += len(runs)
    return fold


def bootstrap_weights(data: ChoiceData, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, n_runs)`` times each run is drawn when each file's runs are resampled with replacement."""
    weights = np.zeros((n_resamples, data.n_runs))
    for f in range(len(data.files)):
        runs = np.flatnonzero(data.run_file == f)
        for b in range(n_resamples):
            np.add.at(weights[b], rng.choice(runs, size=len(runs)), 1.0)
    return weights


# ----- the lookup-table baseline --------------------------------------------------------------------------------
def smoothed(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Rows of ``counts`` ``(..., W)`` as distributions with additive smoothing: ``(count + smoothing) / (total +
    W smoothing)`` (an empty row gives the uniform distribution)."""
    return (counts + smoothing) / (counts.sum(axis=-1, keepdims=True) + counts.shape[-1] * smoothing)


def lookup_table(data: ChoiceData, depth: int, smoothing: float = 1.0, run_weights=None) -> LookupTable:
    """P(name | own and partner names of the last ``depth`` rounds, index W = empty) estimated from the (weighted)
    choices: ``(count + smoothing) / (total + W smoothing)``; an unseen memory gives the uniform distribution."""
    if not 0 <= depth <= data.memory:
        raise ValueError(f"lookup depth must be in [0, H={data.memory}], got {depth}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing}")
    w = data.n_names
    cell = np.zeros(len(data.states.fill), dtype=np.int64)
    for h in range(depth):
        for names in (data.states.own, data.states.partner):
            cell = cell * (w + 1) + np.where(np.asarray(names[:, h]) < 0, w, np.asarray(names[:, h]))
    counts = np.zeros(((w + 1) ** (2 * depth), w))
    np.add.at(counts, cell, np.asarray(choice_counts(data, run_weights)))
    table = smoothed(counts, smoothing)
    return LookupTable(table.reshape((w + 1,) * (2 * depth) + (w,)))


# ----- does a choice depend on the round beyond the memory? ------------------------------------------------------
ROUND_BINS = (2, 4)  # the game choices split into this many equal-count bins of population round


def round_dependence(data: ChoiceData, fold: np.ndarray, bins=ROUND_BINS, smoothing: float = 1.0) -> dict:
    """Held-out check of round dependence: does a choice depend on the population round beyond the memory window?

    In the AI-norms protocol the prompt shows the last H rounds, "round" min(rounds played, H) + 1 and the window's
    score, all functions of the window, and a shuffled option order (not logged); so an agent can only depend on
    the round through its window. Compared on the K folds ``fold`` ``(n_runs,)`` of runs, per game choice: the
    held-out log-likelihood of the window table P(name | window) and of the tables P(name | window, round bin)
    for each number of ``bins`` (equal-count bins of ``data.round``), both ``(count + smoothing) / (total + W
    smoothing)``. ``gain``: the best binned table minus the window table; ``detected`` when positive. Single-prompt
    answers (round -1) are left out."""
    game = data.round >= 0
    edges = {n: np.quantile(data.round[game], np.arange(1, n) / n) for n in bins}
    cells = {"window": data.state[game]}
    for n, cuts in edges.items():
        cells[f"window_by_{n}_round_bins"] = data.state[game] * n + np.searchsorted(cuts, data.round[game], "right")
    run, choice = data.run[game], data.choice[game]
    report = {}
    for label, cell in cells.items():
        total = 0.0
        for k in range(int(fold.max()) + 1):
            train = fold[run] != k
            counts = np.zeros((int(cell.max()) + 1, data.n_names))
            np.add.at(counts, (cell[train], choice[train]), 1.0)
            total += np.log(smoothed(counts, smoothing)[cell[~train], choice[~train]]).sum()
        report[label] = float(total / game.sum())
    gain = max(report[label] for label in report if label != "window") - report["window"]
    return {
        "held_out": report,
        "round_bin_edges": {str(n): cuts.tolist() for n, cuts in edges.items()},
        "gain": gain,
        "detected": bool(gain > 0),
    }


# ----- do runs differ more than one policy allows? ---------------------------------------------------------------
def run_dispersion(probabilities: np.ndarray, data: ChoiceData, min_variance: float = 1.0, choices=None) -> dict:
    """Over-dispersion between runs, given ``probabilities`` ``(n_choices, W)`` of each choice's names (a policy's
    in the window of the choice, or an empirical table's). Per run, the residual ``r = sum_i (y_i - p_i)`` ``(W,)``
    of its choices (``y_i`` one-hot) and its covariance ``C = sum_i diag(p_i) - p_i p_i'``: given the windows the
    choices are independent draws, so if ``p`` is right ``r' C^+ r / (W - 1)`` has mean 1 whatever the dynamics.
    ``dispersion``: its mean over the runs whose ``trace C`` is at least ``min_variance`` (runs of near-certain
    choices carry no information), ``se`` = sqrt(2 / ((W - 1) runs)) (its chi-square value), ``per_file``. Well above
    1: the runs differ from one another (between conditions or within one) or ``p`` has the wrong form; with
    ``p`` from the window table of the same runs (flexible, fitted in-sample: its mean sits below 1 when nothing
    differs; counted over well-seen windows, where smoothing does not distort it), only the first remains.
    ``choices`` (bool ``(n_choices,)``, default all): the choices counted. ``dispersion`` None, with the ``reason``,
    when no run qualifies."""
    counted = np.ones(data.n_choices, bool) if choices is None else np.asarray(choices, bool)
    run, p = data.run[counted], probabilities[counted]
    eye = np.eye(data.n_names)
    residual = np.zeros((data.n_runs, data.n_names))
    np.add.at(residual, run, eye[data.choice[counted]] - p)
    covariance = np.zeros((data.n_runs, data.n_names, data.n_names))
    np.add.at(covariance, run, p[:, :, None] * (eye - p[:, None, :]))
    used = np.trace(covariance, axis1=1, axis2=2) >= min_variance
    if not used.any():
        return {"dispersion": None, "runs": 0, "reason": f"no run has a choice variance of at least {min_variance}"}
    inverse = np.linalg.pinv(covariance[used], hermitian=True)
    statistic = np.einsum("rw,rwv,rv->r", residual[used], inverse, residual[used]) / (data.n_names - 1)
    run_file = data.run_file[used]
    return {
        "dispersion": float(statistic.mean()),
        "se": float(np.sqrt(2.0 / ((data.n_names - 1) * used.sum()))),
        "runs": int(used.sum()),
        "per_file": {
            data.files[f]: {"dispersion": float(statistic[run_file == f].mean()), "runs": int(np.sum(run_file == f))}
            for f in np.unique(run_file)
        },
    }


WELL_SEEN = 20  # the window-table dispersion counts the choices made in windows seen at least this often


def window_table_probabilities(data: ChoiceData, smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(n_choices, W)`` P(name | the choice's whole window) read off all the choices, ``(count + smoothing) /
    (total + W smoothing)``, and ``(n_choices,)`` the number of choices made in each choice's window."""
    counts = np.zeros((len(data.states.fill), data.n_names))
    np.add.at(counts, (data.state, data.choice), 1.0)
    return smoothed(counts, smoothing)[data.state], counts.sum(axis=1)[data.state]


# ----- one group of choices -------------------------------------------------------------------------------------
@dataclass
class GroupFit:
    """Result of :func:`fit_choices`: the full-data fit's ``policy`` and a JSON-ready ``report``."""

    policy: Policy
    report: dict
    family: Family | None = None
    raw: dict | None = None
    bootstrap_raw: list | None = None  # raw estimates of the bootstrap resamples


def fit_choices(
    data: ChoiceData,
    policy: str = "softmax",
    *,
    bootstrap: int = 50,
    folds: int = 5,
    seed: int = 0,
    lookup_depths: tuple[int, ...] = (1, 2),
    smoothing: float = 1.0,
    prior_sd: float = PRIOR_SD,
    held_out_outcomes: Callable[[list[Policy], np.ndarray], dict] | None = None,
) -> GroupFit:
    """Fit ``policy`` (a family name) to ``data`` with bootstrap uncertainty; train and held-out log-likelihood per
    choice of every family, the uniform policy and lookup tables of each depth (module docstring).

    ``policy="auto"`` picks the softmax family of the best held-out log-likelihood; with ``held_out_outcomes``
    (called with a family's per-fold policies and the ``(n_runs,)`` fold of each run, returning a dict with a
    boolean ``consistent``, e.g. :func:`jaxconv.estimate.predict.held_out_outcomes`), the best among the families
    whose held-out collective outcomes are consistent with the observed ones (among all when none is)."""
    main = check_settings(SOFTMAX.name if policy == "auto" else policy, bootstrap, folds)
    auto = policy == "auto"
    main = None if auto else main
    rng = np.random.default_rng(seed)
    fold = fold_of_runs(data, folds, rng)
    n_folds = int(fold.max()) + 1
    resamples = bootstrap_weights(data, bootstrap, rng)
    file_fold = np.unique(data.run_file, return_inverse=True)[1]  # leave one file out (with two files or more)
    splits = {"held_out": fold}  # score label -> (n_runs,) fold of each run; each fold fitted without its runs
    if file_fold.max() > 0:
        splits["held_out_files"] = file_fold

    def held_out(policies: list[Policy], which: np.ndarray) -> float:
        """Log-likelihood per choice, each fold's choices scored by the policy fitted without them."""
        total = sum(_summed_log_likelihood(p, data, which == k) for k, p in enumerate(policies))
        return total / data.n_choices

    def without_each(which: np.ndarray) -> np.ndarray:
        """``(K, n_runs)`` run weights of the K fits, each without one fold of ``which``."""
        return np.stack([which != k for k in range(int(which.max()) + 1)]).astype(float)

    scores, estimates_of = {}, {}
    for name, fam in FAMILIES.items():
        full = fit_runs(fam, data, np.ones(data.n_runs), prior_sd=prior_sd)
        estimate = jax.tree.map(lambda x: x[0], full.raw)
        scores[name] = {"train": float(full.log_likelihood[0])}
        gradient_norms, fold_policies = [full.gradient_norm], {}
        for label, which in splits.items():
            refits = fit_runs(fam, data, without_each(which), estimate, prior_sd=prior_sd)
            fold_policies[label] = [refits.policy(k) for k in range(int(which.max()) + 1)]
            scores[name][label] = held_out(fold_policies[label], which)
            gradient_norms.append(refits.gradient_norm)
        scores[name]["converged"] = bool(np.all(np.concatenate(gradient_norms) < CONVERGED))
        estimates_of[name] = (full, estimate)
        if auto and held_out_outcomes is not None and name.startswith(SOFTMAX.name):
            scores[name]["held_out_outcomes"] = held_out_outcomes(fold_policies["held_out"], fold)
    if main is None:  # auto: the softmax family of the best held-out log-likelihood (and consistent outcomes)
        candidates = [n for n in FAMILIES if n.startswith(SOFTMAX.name)]
        consistent = [n for n in candidates if scores[n].get("held_out_outcomes", {}).get("consistent", True)]
        policy = max(consistent or candidates, key=lambda n: scores[n]["held_out"])
        main = FAMILIES[policy]
    fitted, start = estimates_of[main.name]
    uniform = float(-np.log(data.n_names))
    scores["uniform"] = {"train": uniform} | {label: uniform for label in splits}
    for depth in lookup_depths:
        score = {"train": _summed_log_likelihood(lookup_table(data, depth, smoothing), data) / data.n_choices}
        for label, which in splits.items():
            score[label] = held_out([lookup_table(data, depth, smoothing, w) for w in without_each(which)], which)
        scores[f"lookup_depth_{depth}"] = score | {"smoothing": smoothing}

    resampled = fit_runs(main, data, resamples, start, prior_sd=prior_sd) if bootstrap else None
    estimates = {k: v[0] for k, v in fitted.parameters().items()}
    boot = resampled.parameters() if bootstrap else {k: v[:0] for k, v in fitted.parameters().items()}
    laplace = laplace_sd(main, data, start, prior_sd)
    parameters = {
        name: _describe(estimates[name], laplace[name], boot[name], prior_sd, data.names if name in PER_NAME else None)
        for name in estimates
    }
    log_probs = state_log_probs(fitted.policy(0), data.states, data.n_names)
    table, seen = window_table_probabilities(data, smoothing)
    report = {
        "policy": policy,
        "selected_by": _selected_by(auto, held_out_outcomes is not None),
        "names": list(data.names),
        "memory": data.memory,
        "files": list(data.files),
        "n_runs": data.n_runs,
        "n_choices": data.n_choices,
        "n_memory_states": int(len(data.states.fill)),
        "parameters": parameters,
        "fixed": {"temperature": 1.0, "copy_partner": 0.0} if policy.startswith("softmax") else {"payoff_weight": 0.0},
        "prior_sd": prior_sd,
        "log_likelihood_per_choice": scores,
        "folds": n_folds,
        "file_folds": int(file_fold.max()) + 1 if "held_out_files" in splits else 0,
        "round_dependence": round_dependence(data, fold, smoothing=smoothing),
        "run_dispersion": {
            "policy": run_dispersion(np.exp(np.asarray(log_probs, np.float64))[data.state], data),
            "window_table": run_dispersion(table, data, choices=seen >= WELL_SEEN) | {"min_window_choices": WELL_SEEN},
        },
        "bootstrap": {
            "resamples": bootstrap,
            "converged": int(np.sum(resampled.gradient_norm < CONVERGED)) if bootstrap else 0,
        },
    }
    draws = [jax.tree.map(lambda x, b=b: x[b], resampled.raw) for b in range(bootstrap)] if bootstrap else []
    return GroupFit(fitted.policy(0), report, main, start, draws)


def _selected_by(auto: bool, outcomes: bool) -> str:
    if not auto:
        return "given"
    if not outcomes:
        return "held-out log-likelihood among the softmax families"
    return (
        "held-out log-likelihood among the softmax families whose held-out collective outcomes are consistent "
        "with the observed (among all when none is)"
    )


def _summed_log_likelihood(policy: Policy, data: ChoiceData, runs=None) -> float:
    """Sum of the log-probabilities of the choices of the runs selected by ``runs`` (bool, default all)."""
    weights = np.ones(data.n_runs) if runs is None else np.asarray(runs, float)
    counts = choice_counts(data, weights)
    return float(mean_log_likelihood(state_log_probs(policy, data.states, data.n_names), counts) * counts.sum())


def _describe(estimate, laplace, resampled, prior_sd: float, names: tuple[str, ...] | None) -> dict:
    """Estimate, Laplace sd and bootstrap mean, sd and 95% percentile interval; per name when ``names`` is given."""
    if names is not None:
        return {n: _describe(estimate[i], laplace[i], resampled[:, i], prior_sd, None) for i, n in enumerate(names)}
    out = {"estimate": float(estimate), "laplace_sd": float(laplace), "identified": bool(laplace < prior_sd / 2)}
    if len(resampled):
        low, high = np.percentile(resampled, [2.5, 97.5])
        out |= {"mean": float(resampled.mean()), "sd": float(resampled.std(ddof=1) if len(resampled) > 1 else 0.0)}
        out |= {"low": float(low), "high": float(high)}
    return out


__all__ = [
    "BEST_RESPONSE",
    "FAMILIES",
    "SOFTMAX",
    "Family",
    "Fits",
    "GroupFit",
    "bootstrap_weights",
    "check_settings",
    "family",
    "fit_choices",
    "fit_runs",
    "fold_of_runs",
    "laplace_draws",
    "lookup_table",
    "policy_from_parameters",
    "round_dependence",
    "run_dispersion",
    "window_table_probabilities",
]
