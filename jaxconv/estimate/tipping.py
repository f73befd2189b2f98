"""Finite-population tipping thresholds: stochastic root finding with score-function gradients vs a brute-force sweep.

A committed minority (agents that always use name B=1) overturns a population prepared on name A=0 once it is
large enough. With N agents and a fixed horizon of T steps, let f = 1 if the population has flipped by T (naming
game: every uncommitted agent holds only B, ``committed_flip``; best-response game: >= 95% of the uncommitted
agents' latest choices are B, ``flipped``).

**Relaxation.** "k of the N agents are committed" is an integer. A continuous committed fraction p is obtained by
committing each of the N agents independently with probability p, so the committed count is K ~ Binomial(N, p)
and the flip probability is the binomial mixture

    P(flip | p) = sum_k Binom(k; N, p) P(flip | k),

a polynomial in p, smooth, increasing from 0 to 1 when P(flip | k) does. The threshold p_c(N) estimated here is
the p at which this *mixture* crosses 1/2. It is not the k at which P(flip | k) crosses 1/2 divided by N: the
mixture is P(flip | k) smoothed over k with a standard deviation sqrt(N p (1 - p)), so the two agree up to that
smoothing (for a sharp step at k*, the mixture crosses 1/2 at the p where k* is the median of Binomial(N, p), i.e.
p_c ~ (k* - 1/2 + O(1)) / N), and for large N the difference vanishes as O(1/N). Both methods below estimate the
same mixture threshold, so they can be compared. K is drawn per replica by inverse CDF from a uniform u, so runs
with the same key at two values of p share their u and their simulation keys (common random numbers).

**Gradient.** d/dp Binom(k; N, p) = Binom(k; N, p) (k - N p) / (p (1 - p)), so

    dP(flip | p)/dp = E[(f - b) (K - N p) / (p (1 - p))],

the score-function (likelihood-ratio) estimator, unbiased for any baseline b independent of the replica's own
(f, K); b = the leave-one-out mean of f over the other replicas of the batch. (The estimate is then the sample
covariance of f and the score, with ddof=1.)

**Methods.** ``threshold_by_gradient``: stochastic Newton iteration on P(flip | p) = 1/2 (safeguarded: Newton
steps when the gradient is significantly positive, Robbins-Monro steps -a_t (P - 1/2) with decreasing a_t when
not, bisection of the bracket of p values known to lie on either side); once a Newton step is within the noise the
iterate is frozen and replicas are added there until the delta-method standard error of p - (P - 1/2)/g reaches the
target. ``threshold_by_sweep``: P(flip | p) on a grid, p_c from a logistic fit (or linear interpolation between
the bracketing points). Both report ``simulated_interactions``, the interactions simulated in total (replicas x
steps x interactions per step), to compare their costs at equal precision.

Everything is compiled once per (game structure, horizon, chunk size): p and K are data, never constants of a
trace, so new p values and new batch sizes (run in chunks of a fixed size) do not recompile.
"""

import math
from functools import lru_cache

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats
from scipy.optimize import brentq
from scipy.special import expit

from jaxconv import engine
from jaxconv.criteria import FLIP_THRESHOLD

DEFAULT_CHUNK = 64  # replicas per compiled call (rounded up to a multiple of the number of devices)
P_MIN, P_MAX = 1e-4, 0.9999  # committed probabilities stay inside (0, 1), where the score is defined
FLIP_KEYS = {"NamingGame": "committed_flip", "MemoryGame": "flipped"}


# ----- the relaxation ---------------------------------------------------------------------------------------------
def binomial_counts(uniforms, n_agents: int, p: float) -> np.ndarray:
    """K ~ Binomial(n_agents, p) by inverse CDF: the smallest k with CDF(k) >= u, for each u (float64 in [0, 1)).
    Monotone in p for a fixed u, so two values of p with the same uniforms give coupled counts."""
    _check_probability(p, closed=True)
    cdf = stats.binom.cdf(np.arange(n_agents + 1), n_agents, p)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, np.asarray(uniforms, float), side="left"), n_agents).astype(np.int32)


def binomial_mixture(flip_by_count, p) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(flip | p) = sum_k Binom(k; N, p) P(flip | k) and its derivative in p, from ``flip_by_count`` =
    P(flip | k) for k = 0..N; ``p`` a number or an array."""
    flip_by_count = np.asarray(flip_by_count, float)
    n = len(flip_by_count) - 1
    p = np.asarray(p, float)[..., None]
    k = np.arange(n + 1)
    pmf = stats.binom.pmf(k, n, p)
    # d/dp pmf = n (pmf(k-1; n-1) - pmf(k; n-1))
    dpmf = n * (stats.binom.pmf(k - 1, n - 1, p) - stats.binom.pmf(k, n - 1, p))
    return (pmf * flip_by_count).sum(-1), (dpmf * flip_by_count).sum(-1)


def score_statistics(flips, counts, n_agents: int, p: float, batches=None) -> dict:
    """P(flip | p), its score-function derivative, their standard errors and covariance, from replicas with flip
    indicators ``flips`` and committed counts ``counts``.

    Without ``batches`` all replicas were run at p. ``batches``, a list of (p_j, replicas_j) in the order of the
    replicas, pools replicas run at other committed probabilities by multiple importance sampling (balance
    heuristic): each replica is weighted by w(K) = Binom(K; N, p) / q(K), q = sum_j (R_j / R) Binom(K; N, p_j) the
    mixture they were drawn from, so that mean(w f) and mean(w (f - b) score) stay unbiased for P(flip | p) and its
    derivative (b = the leave-one-out mean of w f). P_hat uses the committed count as a control variate:
    mean(w f - c w (K - N p)), since E[w (K - N p)] = 0 exactly, with c the regression coefficient of w f on
    w (K - N p) (removes the part of the flip's variance that the count explains, about half near p_c). The
    covariance of (P_hat, g_hat) is estimated from the replica terms within each batch (the batches are strata)."""
    f = np.asarray(flips, float)
    k = np.asarray(counts)
    r = len(f)
    if r < 2:
        raise ValueError(f"the score-function gradient needs at least 2 replicas, got {r}")
    if batches is None:
        weight = np.ones(r)
    else:
        if sum(size for _, size in batches) != r:
            raise ValueError(f"batches hold {sum(size for _, size in batches)} replicas, not {r}")
        support = np.arange(n_agents + 1)
        mixture = sum(size / r * stats.binom.pmf(support, n_agents, q) for q, size in batches)
        target = stats.binom.pmf(support, n_agents, p)
        weight = np.divide(target, mixture, out=np.zeros_like(target), where=mixture > 0)[k]
    score = (k - n_agents * p) / (p * (1.0 - p))
    weighted = weight * f
    baseline = (weighted.sum() - weighted) / (r - 1)  # leave-one-out: independent of the replica's own draw
    terms = weight * (f - baseline) * score
    # control variate for P_hat: E[w (K - N p)] = 0 exactly, and f rises with K
    control = weight * (k - n_agents * p)
    spread = np.var(control)
    beta = float(np.cov(weighted, control)[0, 1] / spread) if spread > 0 else 0.0
    value_terms = weighted - beta * control
    # covariance of the means (P_hat, g_hat): the batches are strata of fixed sizes, so within-batch covariances
    pairs = np.stack([value_terms, terms])
    sizes = [r] if batches is None else [size for _, size in batches]
    edges = np.cumsum([0] + sizes)
    covariance = (
        sum(
            (stop - start) * np.cov(pairs[:, start:stop])
            for start, stop in zip(edges[:-1], edges[1:])
            if stop - start > 1
        )
        / r**2
    )
    return {
        "p": float(p),
        "replicas": r,
        "effective_replicas": float(weight.sum() ** 2 / max((weight**2).sum(), 1e-300)),
        "P_flip": float(value_terms.mean()),
        "P_flip_se": float(math.sqrt(covariance[0, 0])),
        "gradient": float(terms.mean()),
        "gradient_se": float(math.sqrt(covariance[1, 1])),
        "covariance": covariance,
    }


def newton_estimate(statistics: dict, level: float = 0.5) -> tuple[float, float]:
    """p - (P_hat - level) / g_hat and its delta-method standard error from the covariance of (P_hat, g_hat)."""
    p, value, gradient = statistics["p"], statistics["P_flip"], statistics["gradient"]
    if not gradient > 0:
        return math.nan, math.inf
    jacobian = np.array([-1.0 / gradient, (value - level) / gradient**2])
    variance = float(jacobian @ statistics["covariance"] @ jacobian)
    return p - (value - level) / gradient, math.sqrt(max(variance, 0.0))


# ----- simulation ---------------------------------------------------------------------------------------------
def flip_key(game) -> str:
    """The summary entry that says whether a replica flipped to the committed name."""
    name = type(game).__name__
    if name not in FLIP_KEYS:
        raise ValueError(f"tipping needs a NamingGame or a MemoryGame, got {name}")
    if name == "NamingGame" and game.committed_mode != "converted":
        raise ValueError("tipping needs committed_mode='converted' (committed agents are drawn from the N)")
    return FLIP_KEYS[name]


def simulate_counts(key, game, n_steps: int, counts, *, chunk_size: int | None = None) -> np.ndarray:
    """Flip indicators of replicas with committed counts ``counts`` (one replica per entry, its simulation key split
    from ``key``), each run for ``n_steps`` steps of ``game``. Compiled once per game structure, horizon and chunk
    size; any number of replicas and any counts reuse it."""
    counts = np.asarray(counts, np.int32)
    if counts.ndim != 1 or len(counts) == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {counts.shape}")
    n_agents = game.n_agents
    if counts.min() < 0 or counts.max() > n_agents:
        raise ValueError(f"committed counts must be in [0, {n_agents}], got {counts.min()}..{counts.max()}")
    return _simulate(jax.random.split(key, len(counts)), game, n_steps, counts, chunk_size)


def _simulate(keys, game, n_steps, counts, chunk_size):
    engine.check_steps(n_steps, 1)
    flip = flip_key(game)
    n_devices = jax.local_device_count()
    chunk = -(-(chunk_size or DEFAULT_CHUNK) // n_devices) * n_devices
    static = eqx.filter(game, eqx.is_array, inverse=True)
    arrays = eqx.filter(game, eqx.is_array)
    runner = _runner(static, n_steps, flip, n_devices)
    mesh = Mesh(np.array(jax.local_devices()[:n_devices]), ("replicas",))
    sharding = NamedSharding(mesh, P("replicas"))
    out = []
    for start in range(0, len(counts), chunk):
        part_keys, part_counts = keys[start : start + chunk], counts[start : start + chunk]
        n_real = len(part_counts)
        pad = chunk - n_real
        part_keys = jnp.concatenate([part_keys, jnp.repeat(part_keys[-1:], pad, axis=0)])
        part_counts = np.concatenate([part_counts, np.repeat(part_counts[-1:], pad)])
        result = runner(jax.device_put(part_keys, sharding), jax.device_put(jnp.asarray(part_counts), sharding), arrays)
        out.append(np.asarray(jax.device_get(result))[:n_real])
    return np.concatenate(out).astype(bool)


@lru_cache(maxsize=32)
def _runner(static, n_steps, flip, n_devices):
    def one_replica(key, count, arrays):
        game = eqx.tree_at(lambda g: g.n_committed, eqx.combine(arrays, static), count)
        state, _ = engine.simulate(key, game, n_steps, n_steps)
        return game.summarize(state)[flip]

    def replicas(keys, counts, arrays):
        return jax.vmap(one_replica, in_axes=(0, 0, None))(keys, counts, arrays)

    mesh = Mesh(np.array(jax.local_devices()[:n_devices]), ("replicas",))
    sharded = jax.shard_map(
        replicas, mesh=mesh, in_specs=(P("replicas"), P("replicas"), P()), out_specs=P("replicas"), check_vma=False
    )
    # the engine's CPU compile options (YNNPACK fusions off), if this version of the engine has them
    options = getattr(engine, "_compiler_options", lambda: None)()
    return jax.jit(sharded, compiler_options=options)


def replica_draws(key, n_replicas: int) -> tuple[np.ndarray, jax.Array]:
    """Per-replica uniforms (float64, for the inverse-CDF draw of K) and simulation keys, from ``key``."""
    uniform_key, simulation_key = jax.random.split(key)
    words = np.asarray(jax.random.bits(uniform_key, (n_replicas, 2), jnp.uint32), np.uint64)
    uniforms = ((words[:, 0] << np.uint64(21)) ^ (words[:, 1] >> np.uint64(11))).astype(float) * 2.0**-53
    return uniforms, jax.random.split(simulation_key, n_replicas)


def run_at_probability(key, game, n_steps: int, p: float, n_replicas: int, *, chunk_size: int | None = None) -> dict:
    """``n_replicas`` replicas at committed probability p: each draws K ~ Binomial(N, p) (inverse CDF of its
    uniform) and runs ``n_steps`` steps with K committed agents. Returns the flip indicators ``flips``, the counts
    ``counts``, P(flip | p) and the score-function estimate of dP(flip | p)/dp with standard errors and their
    covariance (``score_statistics``), and ``simulated_interactions``. The same key at another p gives the same
    uniforms and simulation keys (common random numbers)."""
    _check_probability(p, closed=False)
    _check_count("n_replicas", n_replicas, 2)
    uniforms, keys = replica_draws(key, n_replicas)
    counts = binomial_counts(uniforms, game.n_agents, p)
    flips = _simulate(keys, game, n_steps, counts, chunk_size)
    out = score_statistics(flips, counts, game.n_agents, p)
    out.update(flips=flips, counts=counts, simulated_interactions=_interactions(game, n_steps, n_replicas))
    return out


def _interactions(game, n_steps: int, n_replicas: int) -> int:
    return int(n_replicas) * int(n_steps) * int(game.interactions_per_step)


# ----- sensitivities of the threshold ------------------------------------------------------------------------
def threshold_sensitivities(
    key,
    game,
    n_steps: int,
    p_c: float,
    *,
    n_batches: int = 16,
    replicas_per_batch: int = 256,
    confidence: float = 0.95,
) -> dict:
    """dp_c/dtheta for every float parameter theta of ``game`` (the policy's weights, beta, payoffs), by the
    implicit function theorem on g(p, theta) = P(flip | p, theta) - 1/2 at the threshold:
    dp_c/dtheta = -(dg/dtheta) / (dg/dp).

    Both derivatives are score-function estimates through the differentiable evaluation (``jaxconv.relax``, each
    agent committed with probability ``p_c``), ``n_batches`` batches of ``replicas_per_batch`` replicas; standard
    errors by the delta method from the batches' covariance. Returns ``{"sensitivities": {name: value},
    "sensitivities_se": {...}, "sensitivities_interval": {...}, "dP_dp": ..., "dP_dp_se": ...,
    "simulated_interactions": ...}`` (names like ``policy.bias`` hold a list per name)."""
    from jaxconv import relax
    from jaxconv.choosers import ScoreFunction

    flip_key(game)
    _check_probability(p_c, closed=False)
    _check_count("n_batches", n_batches, 2)
    _check_count("replicas_per_batch", replicas_per_batch, 2)
    _check_confidence(confidence)
    base = eqx.tree_at(lambda g: g.n_committed, game, jnp.int32(0))
    parameters, static = eqx.partition(base, eqx.is_inexact_array)
    names = [jax.tree_util.keystr(path).lstrip(".") for path, _ in jax.tree_util.tree_flatten_with_path(parameters)[0]]
    record_every = _checkpoint_block(n_steps)
    threshold = FLIP_THRESHOLD if type(game).__name__ == "MemoryGame" else 1.0 - 1e-6

    def flip_probability(parameters, p, batch_key):
        def flipped(observations):
            return (observations["committed_share"][-1] >= threshold).astype(jnp.float32)

        game = eqx.combine(parameters, static)
        return relax.expectation(
            batch_key,
            game,
            ScoreFunction(),
            flipped,
            replicas_per_batch,
            n_steps,
            record_every,
            committed_probability=p,
        )[0]

    gradient = jax.jit(jax.vmap(jax.grad(flip_probability, argnums=(0, 1)), in_axes=(None, None, 0)))
    by_theta, by_p = gradient(parameters, jnp.float32(p_c), jax.random.split(key, n_batches))
    by_p = np.asarray(by_p, float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    values, errors, intervals = {}, {}, {}
    for name, leaf, parameter in zip(names, jax.tree.leaves(by_theta), jax.tree.leaves(parameters)):
        leaf = np.asarray(leaf, float).reshape(n_batches, -1)
        ratio = -leaf.mean(axis=0) / by_p.mean()
        covariance = np.array([np.cov(column, by_p) for column in leaf.T])  # (P, 2, 2) over batches
        variance = covariance[:, 0, 0] + ratio**2 * covariance[:, 1, 1] + 2 * ratio * covariance[:, 0, 1]
        se = np.sqrt(np.maximum(variance, 0.0) / n_batches) / abs(by_p.mean())
        shape = np.shape(parameter)
        values[name] = ratio.reshape(shape).tolist()
        errors[name] = se.reshape(shape).tolist()
        intervals[name] = np.stack([ratio - z * se, ratio + z * se], axis=-1).reshape(shape + (2,)).tolist()
    return {
        "sensitivities": values,
        "sensitivities_se": errors,
        "sensitivities_interval": intervals,
        "dP_dp": float(by_p.mean()),
        "dP_dp_se": float(by_p.std(ddof=1) / np.sqrt(n_batches)),
        "simulated_interactions": _interactions(game, n_steps, n_batches * replicas_per_batch),
    }


def _checkpoint_block(n_steps: int) -> int:
    """The divisor of ``n_steps`` nearest sqrt(n_steps): blocks of that many steps are rematerialised in the
    backward pass, so memory and recomputation both grow as sqrt(n_steps)."""
    divisors = [d for d in range(1, n_steps + 1) if n_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - math.sqrt(n_steps)))


# ----- gradient method ----------------------------------------------------------------------------------------
def threshold_by_gradient(
    key,
    game,
    n_steps: int,
    *,
    p0: float = 0.2,
    target_se: float = 0.003,
    initial_replicas: int = 64,
    max_replicas: int = 1 << 16,
    max_iterations: int = 40,
    max_step: float = 0.1,
    confidence: float = 0.95,
    chunk_size: int | None = None,
) -> dict:
    """p_c where P(flip | p) = 1/2, by stochastic Newton iteration with score-function gradients.

    Each iteration runs a batch of replicas at the current p, then estimates P(flip | p) and g = dP/dp there from
    every replica run so far (importance-weighted to p, ``score_statistics``) and steps:

    - Newton, p <- p - (P_hat - 1/2) / g_hat (at most ``max_step``), when g_hat > 3 x its standard error;
    - otherwise Robbins-Monro, p <- p - a_t (P_hat - 1/2) with a_t = 2 max_step / (1 + t) decreasing over such steps;
    - a step that leaves the bracket (the p values where a batch's P_hat was significantly above or below 1/2)
      bisects the bracket instead; p stays in [1e-4, 0.9999].

    Batches have ``initial_replicas`` replicas until a Newton step is within twice the standard error of the
    estimate; then they grow (at most doubling the pooled replicas), each sized so that the pooled standard error
    should reach ``target_se``. It stops
    when the delta-method standard error of p_c = p - (P_hat - 1/2) / g_hat at the current p is at most
    ``target_se`` and p_c is within twice that of p (or at ``max_replicas`` replicas or ``max_iterations``).

    Returns p_c, p_c_se, p_c_interval (normal, ``confidence``), iterations, simulated_interactions, replicas (all
    batches), converged (target reached), p_final (the last iterate), P_flip and gradient there with their standard
    errors, and the history of iterations."""
    _check_probability(p0, closed=False)
    if isinstance(target_se, bool) or not (isinstance(target_se, (int, float)) and target_se > 0):
        raise ValueError(f"target_se must be a number > 0, got {target_se!r}")
    _check_count("initial_replicas", initial_replicas, 2)
    _check_count("max_replicas", max_replicas, initial_replicas)
    _check_count("max_iterations", max_iterations, 1)
    if isinstance(max_step, bool) or not (isinstance(max_step, (int, float)) and 0 < max_step < 1):
        raise ValueError(f"max_step must be a number in (0, 1), got {max_step!r}")
    _check_confidence(confidence)
    flip_key(game)
    n_agents = game.n_agents
    chunk = chunk_size or DEFAULT_CHUNK

    p, low, high = float(p0), P_MIN, P_MAX
    robbins_monro_steps = 0
    flips, counts, batches = [], [], []
    history, total = [], 0
    batch = initial_replicas
    for iteration in range(max_iterations):
        run = run_at_probability(jax.random.fold_in(key, iteration), game, n_steps, p, batch, chunk_size=chunk)
        total += run["simulated_interactions"]
        flips.append(run["flips"])
        counts.append(run["counts"])
        batches.append((p, batch))
        pooled = score_statistics(np.concatenate(flips), np.concatenate(counts), n_agents, p, batches)
        estimate, se = newton_estimate(pooled)
        value, gradient = pooled["P_flip"], pooled["gradient"]
        reliable = gradient > 0 and gradient > 3 * pooled["gradient_se"]
        record = {
            "iteration": iteration,
            "p": p,
            "batch_replicas": batch,
            "replicas": pooled["replicas"],
            "effective_replicas": pooled["effective_replicas"],
            "P_flip": value,
            "gradient": gradient,
            "gradient_se": pooled["gradient_se"],
            "p_c": estimate,
            "p_c_se": se,
        }
        history.append(record)

        # the bracket: p values where this batch's flip fraction is significantly above or below 1/2
        margin = 2.0 * math.sqrt(0.25 / batch)
        batch_value = float(run["flips"].mean())
        if batch_value > 0.5 + margin:
            high = min(high, p)
        elif batch_value < 0.5 - margin:
            low = max(low, p)

        if reliable:
            close = abs(estimate - p) <= 2 * se
            if close and se <= target_se:
                record["step"] = "done"
                break
            if pooled["replicas"] >= max_replicas:
                record["step"] = "max_replicas"
                break
            record["step"] = "newton"
            step = float(np.clip(estimate - p, -max_step, max_step))
            # size the next batch from the standard error the estimate will have at the root (P_hat = 1/2 there, so
            # only P_hat's error counts), not the current one that includes the g_hat error of a Newton correction
            at_root = pooled["P_flip_se"] / gradient
            batch = _next_batch(pooled["replicas"], at_root, target_se, chunk) if close else initial_replicas
        else:
            if pooled["replicas"] >= max_replicas:
                record["step"] = "max_replicas"
                break
            record["step"] = "robbins-monro"
            step = -2.0 * max_step / (1 + robbins_monro_steps) * (value - 0.5)
            robbins_monro_steps += 1
            batch = initial_replicas
        batch = max(2, min(batch, max_replicas - pooled["replicas"]))
        p = _inside(p + step, low, high)

    final = history[-1]
    z = stats.norm.ppf(0.5 + confidence / 2)
    estimate, se = final["p_c"], final["p_c_se"]
    return {
        "method": "gradient",
        "p_c": float(estimate),
        "p_c_se": float(se),
        "p_c_interval": [float(estimate - z * se), float(estimate + z * se)],
        "confidence": confidence,
        "converged": final.get("step") == "done",
        "target_se": float(target_se),
        "iterations": len(history),
        "simulated_interactions": int(total),
        "replicas": int(final["replicas"]),
        "p_final": float(final["p"]),
        "P_flip": pooled["P_flip"],
        "P_flip_se": pooled["P_flip_se"],
        "gradient": pooled["gradient"],
        "gradient_se": pooled["gradient_se"],
        "history": history,
    }


def _inside(p: float, low: float, high: float) -> float:
    """``p`` if strictly inside the bracket (low, high), else the bracket's midpoint; within [P_MIN, P_MAX]."""
    p = float(np.clip(p, P_MIN, P_MAX))
    return p if low < p < high else 0.5 * (low + high)


def _next_batch(pooled: int, se: float, target_se: float, chunk: int) -> int:
    """Replicas to add so that the pooled standard error ``se`` (~ 1/sqrt(replicas)) reaches the target: at least
    one chunk, at most 2x the pooled count, rounded up to whole chunks."""
    needed = pooled * ((se / target_se) ** 2 - 1.0)
    add = int(np.clip(math.ceil(needed), chunk, 2 * pooled))
    return -(-add // chunk) * chunk


# ----- brute-force sweep --------------------------------------------------------------------------------------
def threshold_by_sweep(
    key,
    game,
    n_steps: int,
    *,
    grid=None,
    n_replicas: int = 256,
    fit: str = "mixture",
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    chunk_size: int | None = None,
) -> dict:
    """p_c where P(flip | p) = 1/2 from P(flip | p) on a grid (default 16 points over [0, 0.5]), each point
    ``n_replicas`` independent replicas of the same relaxation (K ~ Binomial(N, p)).

    ``fit="mixture"``: maximum likelihood of the grid's flip counts under P(flip | p) = sum_k Binom(k; N, p)
    sigmoid(a + b k / N), i.e. a logistic P(flip | k) seen through the relaxation's exact binomial mixture; p_c
    solves the fitted mixture = 1/2; standard error by the delta method from the Fisher information. (A plain
    logistic curve in p is biased here: the mixture is not symmetric about p_c.) ``fit="linear"``: linear
    interpolation between the grid points bracketing 1/2, standard error from a bootstrap over replicas. When
    fewer than two grid points have a flip fraction strictly between 0 and 1 the grid does not resolve the curve:
    p_c is the linear interpolation and its standard error the grid spacing / sqrt(12) (``resolution_limited``).
    ``bracketed`` says whether the grid straddles 1/2 at all (p_c is nan if not)."""
    grid = np.linspace(0.0, 0.5, 16) if grid is None else np.asarray(grid, float)
    if grid.ndim != 1 or len(grid) < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
        raise ValueError(f"grid must be at least 2 increasing values of p, got {grid.tolist()}")
    if grid[0] < 0 or grid[-1] > 1:
        raise ValueError(f"grid values must be in [0, 1], got {grid.tolist()}")
    _check_count("n_replicas", n_replicas, 2)
    if fit not in ("mixture", "linear"):
        raise ValueError(f"unknown fit {fit!r}; choose one of ['mixture', 'linear']")
    _check_confidence(confidence)
    flip_key(game)
    n_agents = game.n_agents

    keys, counts = [], []
    for index, p in enumerate(grid):
        uniforms, point_keys = replica_draws(jax.random.fold_in(key, index), n_replicas)
        keys.append(point_keys)
        counts.append(binomial_counts(uniforms, n_agents, float(p)))
    flips = _simulate(jnp.concatenate(keys), game, n_steps, np.concatenate(counts), chunk_size)
    successes = flips.reshape(len(grid), n_replicas).sum(axis=1)
    fraction = successes / n_replicas

    linear = _linear_crossing(grid, fraction)
    interior = int(np.sum((successes > 0) & (successes < n_replicas)))
    resolution_limited = interior < 2
    estimate, se = math.nan, math.nan
    if not resolution_limited and fit == "mixture":
        estimate, se = _mixture_threshold(grid, successes, n_replicas, n_agents, linear)
    if not math.isfinite(estimate):  # linear fit, or the mixture fit failed
        estimate = linear
        if resolution_limited:
            se = float(np.diff(grid).max()) / math.sqrt(12.0) if math.isfinite(linear) else math.nan
        else:
            rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
            boot = rng.binomial(n_replicas, fraction, size=(n_bootstrap, len(grid))) / n_replicas
            crossings = np.array([_linear_crossing(grid, b) for b in boot])
            se = float(np.nanstd(crossings, ddof=1)) if np.isfinite(crossings).sum() > 1 else math.nan
    z = stats.norm.ppf(0.5 + confidence / 2)
    return {
        "method": "sweep",
        "fit": fit,
        "p_c": float(estimate),
        "p_c_se": float(se),
        "p_c_interval": [float(estimate - z * se), float(estimate + z * se)],
        "confidence": confidence,
        "bracketed": bool(math.isfinite(linear)),
        "resolution_limited": bool(resolution_limited),
        "p_c_linear": float(linear),
        "grid": grid.tolist(),
        "P_flip": fraction.tolist(),
        "P_flip_se": np.sqrt(fraction * (1 - fraction) / n_replicas).tolist(),
        "replicas_per_point": n_replicas,
        "simulated_interactions": _interactions(game, n_steps, len(grid) * n_replicas),
    }


def _linear_crossing(grid, fraction) -> float:
    """Linear interpolation of the first p at which the flip fraction reaches 1/2 from below (nan if none)."""
    for (p0, y0), (p1, y1) in zip(zip(grid, fraction), zip(grid[1:], fraction[1:])):
        if y0 < 0.5 <= y1:
            return float(p0 + (0.5 - y0) * (p1 - p0) / (y1 - y0))
    return math.nan


def _mixture_threshold(grid, successes, n_replicas, n_agents, start, iterations: int = 200) -> tuple[float, float]:
    """Fit P(flip | p) = sum_k Binom(k; N, p) sigmoid(a + b k/N) to binomial counts on the grid (Fisher scoring with
    step halving, float64) and return the p where it is 1/2 with its delta-method standard error; (nan, nan) if the
    fit does not converge to an increasing curve."""
    x = np.arange(n_agents + 1) / n_agents
    pmf = stats.binom.pmf(np.arange(n_agents + 1), n_agents, grid[:, None])  # (G, N + 1)
    y = np.asarray(successes, float)

    def curve(theta):
        s = expit(theta[0] + theta[1] * x)
        ds = s * (1.0 - s)
        mean = np.clip(pmf @ s, 1e-12, 1 - 1e-12)
        return mean, np.stack([pmf @ ds, pmf @ (ds * x)], axis=1)

    def log_likelihood(mean):
        return float(np.sum(y * np.log(mean) + (n_replicas - y) * np.log1p(-mean)))

    def information(mean, jacobian):
        return jacobian.T @ ((n_replicas / (mean * (1.0 - mean)))[:, None] * jacobian)

    centre = start if math.isfinite(start) else float(grid[np.argmin(np.abs(y / n_replicas - 0.5))])
    slope = 8.0 / max(float(np.diff(grid).mean()), 1e-3)
    theta = np.array([-slope * centre, slope])
    mean, jacobian = curve(theta)
    current = log_likelihood(mean)
    for _ in range(iterations):
        fisher = information(mean, jacobian)
        gradient = jacobian.T @ ((y - n_replicas * mean) / (mean * (1.0 - mean)))
        try:
            step = np.linalg.solve(fisher, gradient)
        except np.linalg.LinAlgError:
            return math.nan, math.nan
        for _ in range(40):  # step halving: never decrease the likelihood
            trial = theta + step
            trial_mean, trial_jacobian = curve(trial)
            if log_likelihood(trial_mean) >= current - 1e-12:
                break
            step = step / 2
        converged = np.max(np.abs(step)) < 1e-9 * (1 + np.max(np.abs(theta)))
        theta, mean, jacobian, current = trial, trial_mean, trial_jacobian, log_likelihood(trial_mean)
        if converged:
            break
    else:
        return math.nan, math.nan
    if not theta[1] > 0:
        return math.nan, math.nan
    flip_by_count = expit(theta[0] + theta[1] * x)
    if not (binomial_mixture(flip_by_count, 0.0)[0] < 0.5 < binomial_mixture(flip_by_count, 1.0)[0]):
        return math.nan, math.nan
    estimate = brentq(lambda p: float(binomial_mixture(flip_by_count, p)[0]) - 0.5, 0.0, 1.0, xtol=1e-12)
    # implicit function: dp_c/dtheta = -(dM/dtheta) / (dM/dp) at p_c
    pmf_c = stats.binom.pmf(np.arange(n_agents + 1), n_agents, estimate)
    ds = flip_by_count * (1.0 - flip_by_count)
    d_theta = np.array([pmf_c @ ds, pmf_c @ (ds * x)])
    d_p = float(binomial_mixture(flip_by_count, estimate)[1])
    try:
        covariance = np.linalg.inv(information(mean, jacobian))
    except np.linalg.LinAlgError:
        return math.nan, math.nan
    jac = -d_theta / d_p
    return float(estimate), float(math.sqrt(max(jac @ covariance @ jac, 0.0)))


# ----- checks -------------------------------------------------------------------------------------------------
def _check_probability(p, closed: bool) -> None:
    ok = isinstance(p, (int, float, np.floating)) and not isinstance(p, bool) and math.isfinite(p)
    if closed and not (ok and 0.0 <= p <= 1.0):
        raise ValueError(f"p must be a number in [0, 1], got {p!r}")
    if not closed and not (ok and 0.0 < p < 1.0):
        raise ValueError(f"p must be a number in (0, 1) (the score needs p(1 - p) > 0), got {p!r}")


def _check_count(label: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")


def _check_confidence(confidence) -> None:
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")


__all__ = [
    "binomial_counts",
    "binomial_mixture",
    "flip_key",
    "newton_estimate",
    "replica_draws",
    "run_at_probability",
    "score_statistics",
    "simulate_counts",
    "threshold_by_gradient",
    "threshold_by_sweep",
    "threshold_sensitivities",
]
