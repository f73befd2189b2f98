"""Gradient estimators of convention dynamics: bias, variance and variance x cost, against the exact Markov chain.

Derivatives of ensemble observables after a fixed horizon of T interactions (``jaxconv.relax``), estimated by

- score function (``ScoreFunction``, leave-one-out baseline of ``relax.expectation``): unbiased;
- straight-through Gumbel-softmax (``GumbelSoftmax(t)``: exact forward samples, soft backward) and the fully relaxed
  one (``straight_through=False``) at several temperatures t: biased;
- ``Expected``: the deterministic expected dynamics of the representation (choices replaced by their
  probabilities; the pair schedule stays random): biased;
- central finite differences with common random numbers (``Sample``, the same keys at x +- h): bias O(h^2);
- ``relax.stochastic_derivative`` (discrete pathwise, StochasticAD-like) when jaxconv provides it: unbiased.

Settings (complete graph, random sequential pairs):

- memory game, N=3, H=2, 2 names, ``SoftmaxSurrogate(bias=(0, 0.4), win_stay=1.5, partner_weight=0.5)``, empty
  start: d(share of name 1 among the latest choices)/d(bias of name 1) and d(success rate)/d(win_stay), T = 6, 12, 24;
- binary naming game (vocabulary 2, prepared on name 0, each agent committed to name 1 independently with
  probability p, beta = 0.6), T = 4N: d(committed-only share)/d(beta) and /d(p) at p = 0.3, and d/dp at the
  tipping point p* where the exact P(flip within T) is steepest in p (N = 5, 6); d/d(beta) and d/dp at p = 0.3 for
  N = 5, 6, 10, 20, 50.

Truth: ``jaxconv.exact`` (lumped chains; binomial mixture over the number committed) up to N=20; for N=50 a long
score-function run (``--reference-factor`` times the replicas, independent keys) whose standard error enters the
bias's. Every estimator runs B batches of R replicas (B x R independent replicas); bias = mean - truth, its SE
from the batches; per-replica variance = R x Var(batch estimate); seconds per replica = median batch time / R after
compilation; variance x cost = per-replica variance x seconds per replica (the variance of an estimate that costs
one second: lower is better).
"""

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save

from jaxconv import MemoryGame, NamingGame, SoftmaxSurrogate, exact, relax
from jaxconv.choosers import Expected, GumbelSoftmax, Sample, ScoreFunction

MEMORY_N, MEMORY_H, MEMORY_THETA = 3, 2, (0.4, 1.5)  # (bias of name 1, win_stay)
BETA, P_BASE, ROUNDS = 0.6, 0.3, 4  # naming game: beta, committed probability, horizon T = ROUNDS * N
UNBIASED = ("score function", "stochastic derivative")
OBSERVABLES = ("committed_share", "success_rate")


def extra(parser):
    parser.add_argument("--replicas", type=int, default=None, help="replicas per batch R (default 1024, quick 256)")
    parser.add_argument("--batches", type=int, default=None, help="batches B per estimate (default 32, quick 12)")
    parser.add_argument(
        "--reference-factor", type=int, default=8, help="score-function reference: this many times the replicas"
    )


# ----- games as functions of a parameter vector ----------------------------------------------------------------------
def memory_base(n_agents=MEMORY_N):
    policy = SoftmaxSurrogate(jnp.array([0.0, MEMORY_THETA[0]]), win_stay=MEMORY_THETA[1], partner_weight=0.5)
    return MemoryGame(n_agents, 2, MEMORY_H, policy=policy, stop=None)


def naming_base(n_agents):
    return NamingGame(n_agents, vocabulary=2, beta=BETA, committed_mode="converted", initial="prepared")


def build(base, v):
    """``(game, committed_probability or None)`` at parameters ``v``: memory game (bias of name 1, win_stay), naming
    game (beta, p). Built by replacing the base game's arrays (a game cannot be constructed inside ``jax.jit``)."""
    if isinstance(base, MemoryGame):
        game = eqx.tree_at(
            lambda g: (g.policy.bias, g.policy.win_stay), base, (jnp.stack([jnp.zeros_like(v[0]), v[0]]), v[1])
        )
        return game, None
    return eqx.tree_at(lambda g: g.beta, base, v[0]), v[1]


def observe(which):
    """The observable at the last record: ``OBSERVABLES[which]`` (``which`` a traced int, one compilation)."""
    return lambda o: jnp.where(which == 0, o["committed_share"][-1], o["success_rate"][-1])


# ----- estimators: one batch of R replicas -> one estimate ----------------------------------------------------------
@eqx.filter_jit
def chooser_gradient(key, base, v0, direction, which, chooser, n_replicas, n_steps):
    def value(x):
        game, p = build(base, v0 + x * direction)
        return relax.expectation(
            key, game, chooser, observe(which), n_replicas, n_steps, n_steps, committed_probability=p
        )[0]

    return jax.grad(value)(jnp.float32(0.0))


@eqx.filter_jit
def finite_difference(key, base, v0, direction, which, h, n_replicas, n_steps):
    def value(x):
        game, p = build(base, v0 + x * direction)
        return relax.expectation(
            key, game, Sample(), observe(which), n_replicas, n_steps, n_steps, committed_probability=p
        )[0]

    return (value(h) - value(-h)) / (2.0 * h)  # same key: common random numbers


@eqx.filter_jit
def _stochastic_derivative(key, base, v0, index, which, n_replicas, n_steps):
    def build_scalar(x):
        return build(base, v0.at[index].set(x))

    return relax.stochastic_derivative(key, build_scalar, v0[index], observe(which), n_replicas, n_steps, n_steps)[0]


_EAGER = []  # set when relax.stochastic_derivative cannot be traced under jit


def stochastic_derivative(key, base, v0, index, which, n_replicas, n_steps):
    """``relax.stochastic_derivative`` along parameter ``index``; jitted when it can be, else called as is."""
    if not _EAGER:
        try:
            return _stochastic_derivative(key, base, v0, index, which, n_replicas, n_steps)
        except Exception as error:  # not traceable: time it eagerly
            print(f"  stochastic_derivative not jittable ({type(error).__name__}): timed un-jitted")
            _EAGER.append(True)
    return _stochastic_derivative.__wrapped__(key, base, v0, index, which, n_replicas, n_steps)


def estimators(temperatures, steps):
    """``(label, family, parameter, make(setting) -> batch function key -> estimate)``."""
    rows = [("score function", "score function", None)]
    rows += [(f"ST-Gumbel t={t:g}", "straight-through Gumbel", t) for t in temperatures]
    rows += [(f"relaxed Gumbel t={t:g}", "relaxed Gumbel", t) for t in temperatures]
    rows += [("expected", "expected", None)]
    rows += [(f"finite diff h={h:g}", "finite difference", h) for h in steps]
    if hasattr(relax, "stochastic_derivative"):
        rows += [("stochastic derivative", "stochastic derivative", None)]
    return rows


def batch_function(family, parameter, setting, n_replicas):
    base, v0, index, which, n_steps = (setting[k] for k in ("base", "v0", "index", "which", "n_steps"))
    v0 = jnp.asarray(v0, jnp.float32)
    direction = jnp.zeros(2, jnp.float32).at[index].set(1.0)
    which_array = jnp.int32(which)
    choosers = {
        "score function": lambda: ScoreFunction(),
        "straight-through Gumbel": lambda: GumbelSoftmax(parameter),
        "relaxed Gumbel": lambda: GumbelSoftmax(parameter, straight_through=False),
        "expected": lambda: Expected(),
    }
    if family in choosers:
        chooser = choosers[family]()
        return lambda key: chooser_gradient(key, base, v0, direction, which_array, chooser, n_replicas, n_steps)
    if family == "finite difference":
        h = jnp.float32(parameter)
        return lambda key: finite_difference(key, base, v0, direction, which_array, h, n_replicas, n_steps)
    if family == "stochastic derivative":
        index_array = jnp.int32(index)
        return lambda key: stochastic_derivative(key, base, v0, index_array, which_array, n_replicas, n_steps)
    raise ValueError(family)


def measure(estimate, key, n_batches, n_replicas):
    """Mean, SE, per-replica variance and seconds per replica of a batch estimator (compiled by a first call)."""
    start = time.perf_counter()
    jax.block_until_ready(estimate(jax.random.fold_in(key, 10**6)))
    compile_seconds = time.perf_counter() - start
    values, seconds = [], []
    for b in range(n_batches):
        start = time.perf_counter()
        values.append(float(jax.block_until_ready(estimate(jax.random.fold_in(key, b)))))
        seconds.append(time.perf_counter() - start)
    values = np.array(values)
    finite = np.isfinite(values)
    mean = float(values[finite].mean()) if finite.any() else math.nan
    se = float(values[finite].std(ddof=1) / math.sqrt(finite.sum())) if finite.sum() > 1 else math.nan
    return {
        "mean": mean,
        "se": se,
        "n_nonfinite_batches": int((~finite).sum()),
        "per_replica_variance": se**2 * finite.sum() * n_replicas,
        "seconds_per_replica": float(np.median(seconds)) / n_replicas,
        "first_call_seconds": compile_seconds,
    }


# ----- exact truth --------------------------------------------------------------------------------------------------
def exact_memory(theta, n_steps, observable):
    policy = SoftmaxSurrogate(jnp.stack([0.0, theta[0]]), win_stay=theta[1], partner_weight=0.5)
    oracle = {"committed_share": "pushed_share", "success_rate": "success_rate"}[observable]
    return exact.memory_chain_expectation(policy, MEMORY_N, MEMORY_H, n_steps, oracle, lump=True)


def exact_naming(v, n_agents, n_steps):
    return exact.binomial_committed_expectation(v[1], n_agents, n_steps, "committed_only_share", beta=v[0], lump=True)


def tipping_point(n_agents, n_steps):
    """p where the exact P(all non-committed hold only name 1 after T) is steepest, from the integer-k chains."""
    flip = np.array(
        [
            float(exact.naming_chain_expectation(BETA, n_agents, n_steps, "committed_flip", committed=k, lump=True))
            for k in range(n_agents + 1)
        ]
    )
    grid = np.linspace(0.01, 0.99, 197)
    curve = np.array(
        [
            sum(math.comb(n_agents, k) * p**k * (1 - p) ** (n_agents - k) * flip[k] for k in range(n_agents + 1))
            for p in grid
        ]
    )
    slope = np.gradient(curve, grid)
    best = int(np.argmax(slope))
    return float(np.round(grid[best], 3)), float(curve[best]), float(slope[best]), grid, curve


def settings(quick):
    memory_horizons = (6,) if quick else (6, 12, 24)
    naming_sizes = (5,) if quick else (5, 6, 10, 20, 50)
    tipping_sizes = (5,) if quick else (5, 6)
    rows = []
    for n_steps in memory_horizons:
        base = memory_base()
        for index, which, label in ((0, 0, "d share(1)/d bias(1)"), (1, 1, "d success/d win_stay")):
            rows.append(
                {
                    "game": "memory",
                    "target": label,
                    "N": MEMORY_N,
                    "T": n_steps,
                    "p": None,
                    "base": base,
                    "v0": MEMORY_THETA,
                    "index": index,
                    "which": which,
                    "n_steps": n_steps,
                    "truth": lambda i=index, w=which, t=n_steps: jax.grad(exact_memory)(
                        jnp.array(MEMORY_THETA), t, OBSERVABLES[w]
                    )[i],
                }
            )
    tipping = {}
    for n_agents in naming_sizes:
        n_steps = ROUNDS * n_agents
        points = [(P_BASE, "p=0.3")]
        if n_agents in tipping_sizes:
            p_star, flip, slope, grid, curve = tipping_point(n_agents, n_steps)
            tipping[n_agents] = {"p_star": p_star, "P_flip": flip, "dP_dp": slope, "grid": grid, "curve": curve}
            points.append((p_star, "tipping"))
        base = naming_base(n_agents)
        for p, where in points:
            for index, label in ((0, "d share/d beta"), (1, "d share/d p")):
                if where == "tipping" and index == 0:
                    continue
                rows.append(
                    {
                        "game": "naming",
                        "target": f"{label} ({where})",
                        "N": n_agents,
                        "T": n_steps,
                        "p": p,
                        "base": base,
                        "v0": (BETA, p),
                        "index": index,
                        "which": 0,
                        "n_steps": n_steps,
                        "truth": None
                        if n_agents > 20
                        else lambda i=index, n=n_agents, t=n_steps, q=p: jax.grad(exact_naming)(
                            jnp.array([BETA, q]), n, t
                        )[i],
                    }
                )
    return rows, tipping


def main():
    args = arguments(__doc__, extra)
    n_replicas = args.replicas or (256 if args.quick else 1024)
    n_batches = args.batches or (12 if args.quick else 32)
    temperatures = (0.1, 0.3, 1.0, 3.0)
    steps = (0.3, 0.1, 0.03)
    has_sd = hasattr(relax, "stochastic_derivative")
    if not has_sd:
        print("NOTE: jaxconv.relax has no stochastic_derivative yet: that estimator is left out")
    key = jax.random.key(args.seed)
    rows, tipping = settings(args.quick)
    started = time.perf_counter()
    results = []
    for s, setting in enumerate(rows):
        setting_key = jax.random.fold_in(key, s)
        name = f"{setting['game']} N={setting['N']} T={setting['T']}: {setting['target']}"
        if setting["truth"] is not None:
            truth, truth_se, truth_kind = float(setting["truth"]()), 0.0, "exact chain"
        else:
            ref = measure(
                batch_function("score function", None, setting, n_replicas),
                jax.random.fold_in(setting_key, 999),
                n_batches * args.reference_factor,
                n_replicas,
            )
            truth, truth_se = ref["mean"], ref["se"]
            truth_kind = f"score function, {n_batches * args.reference_factor * n_replicas} replicas"
        shown = f"{truth:.4f}" + (f" +- {truth_se:.4f}" if truth_se else "")
        print(f"{name}: truth {shown} ({truth_kind})  [{time.perf_counter() - started:.0f} s]")
        for e, (label, family, parameter) in enumerate(estimators(temperatures, steps)):
            if family == "finite difference" and setting["game"] == "naming":
                x0 = setting["v0"][setting["index"]]
                if not (0.0 <= x0 - parameter and x0 + parameter <= 1.0):
                    continue  # a probability outside [0, 1]
            numbers = measure(
                batch_function(family, parameter, setting, n_replicas),
                jax.random.fold_in(setting_key, e),
                n_batches,
                n_replicas,
            )
            bias = numbers["mean"] - truth
            bias_se = math.hypot(numbers["se"], truth_se)
            results.append(
                {k: setting[k] for k in ("game", "target", "N", "T", "p")}
                | {"estimator": label, "family": family, "parameter": parameter}
                | {"truth": truth, "truth_se": truth_se, "truth_kind": truth_kind}
                | numbers
                | {
                    "bias": bias,
                    "bias_se": bias_se,
                    "z": abs(bias) / bias_se if bias_se > 0 else math.inf,
                    "relative_bias": bias / abs(truth) if truth else math.nan,
                    "variance_x_cost": numbers["per_replica_variance"] * numbers["seconds_per_replica"],
                }
            )
    elapsed = time.perf_counter() - started

    print_table(results)
    failures = [r for r in results if r["family"] in UNBIASED and not r["z"] < 4]
    for r in failures:
        print(f"WARNING: unbiased estimator {r['estimator']} has |bias|/SE = {r['z']:.1f} on {r['game']} {r['target']}")
    print(summary(results))
    numbers = {
        "description": __doc__,
        "replicas_per_batch": n_replicas,
        "batches": n_batches,
        "temperatures": temperatures,
        "finite_difference_steps": steps,
        "stochastic_derivative": "included" if has_sd else "absent from jaxconv.relax: not measured",
        "tipping_points": {
            str(n): {k: v for k, v in t.items() if k not in ("grid", "curve")} for n, t in tipping.items()
        },
        "seconds": elapsed,
        "rows": results,
        "unbiased_failures": failures,
    }
    save(args.out, "gradient_estimators", numbers, figure(results, tipping, has_sd))


def print_table(results):
    header = (
        "| game | N | T | derivative | truth | estimator | mean | bias +- SE | abs(bias)/SE | var/replica "
        "| s/replica | var x cost |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for r in results:
        truth = f"{r['truth']:.4f}" + ("" if r["truth_se"] == 0 else f" +- {r['truth_se']:.4f}")
        print(
            f"| {r['game']} | {r['N']} | {r['T']} | {r['target']} | {truth} | {r['estimator']} | {r['mean']:.4f} "
            f"| {r['bias']:+.4f} +- {r['bias_se']:.4f} | {r['z']:.1f} | {r['per_replica_variance']:.3g} "
            f"| {r['seconds_per_replica']:.2e} | {r['variance_x_cost']:.3g} |"
        )


def summary(results):
    lines = ["", "best variance x cost per derivative (among estimators with abs(bias)/SE < 4):"]
    keys = sorted({(r["game"], r["N"], r["T"], r["target"]) for r in results}, key=str)
    for key in keys:
        group = [r for r in results if (r["game"], r["N"], r["T"], r["target"]) == key and r["z"] < 4]
        if group:
            best = min(group, key=lambda r: r["variance_x_cost"])
            lines.append(
                f"  {key[0]} N={key[1]} T={key[2]} {key[3]}: {best['estimator']} ({best['variance_x_cost']:.3g})"
            )
    return "\n".join(lines)


# ----- figure -------------------------------------------------------------------------------------------------------
COLORS = {
    "score function": "k",
    "straight-through Gumbel": "tab:blue",
    "relaxed Gumbel": "tab:orange",
    "expected": "tab:green",
    "finite difference": "tab:purple",
    "stochastic derivative": "tab:red",
}


LIMIT = 3.0  # relative biases (and SEs) beyond LIMIT are drawn off scale


def _select(results, **where):
    return [r for r in results if all(r[k] == v for k, v in where.items())]


def _relative(r):
    """Relative bias and its SE (bias / |truth|)."""
    scale = abs(r["truth"]) if r["truth"] else math.nan
    return r["bias"] / scale, r["bias_se"] / scale


def _points(axis, xs, rows, color, marker, linestyle, offset=1.0):
    """Relative bias +- 1 SE against xs. Values beyond +-LIMIT or not finite: triangles on the frame; an SE beyond
    LIMIT: a hollow marker without its bar."""
    xs = np.asarray(xs, float) * offset
    y = np.array([_relative(r)[0] for r in rows])
    e = np.array([_relative(r)[1] for r in rows])
    inside = np.isfinite(y) & (np.abs(y) <= LIMIT)
    precise = inside & np.isfinite(e) & (e <= LIMIT)
    axis.plot(xs, np.where(inside, y, np.nan), color=color, ls=linestyle, lw=1.2)
    axis.errorbar(xs[precise], y[precise], e[precise], color=color, marker=marker, ls="none", ms=5, capsize=2)
    noisy = inside & ~precise
    axis.scatter(xs[noisy], y[noisy], marker=marker, facecolors="white", edgecolors=color, s=30, zorder=4)
    out = ~inside
    if out.any():
        up = np.nan_to_num(y, nan=1.0, posinf=1.0, neginf=-1.0) > 0
        for sign, marker_out in ((True, "^"), (False, "v")):
            chosen = out & (up == sign)
            edge = LIMIT * 0.95 * (1 if sign else -1)
            axis.scatter(
                xs[chosen],
                np.full(chosen.sum(), edge),
                marker=marker_out,
                color=color,
                s=45,
                zorder=5,
                edgecolors="k",
                linewidths=0.5,
            )


def _reference(axis, rows, color, dotted):
    """A temperature-independent estimator: its relative bias +- 1 SE as a band."""
    if rows:
        y, e = _relative(rows[0])
        if np.isfinite(y) and abs(y) <= LIMIT:
            axis.axhspan(y - e, y + e, color=color, alpha=0.2, lw=0)
            axis.axhline(y, color=color, lw=1.2, ls=":" if dotted else "-")


def _frame(axis, title, xlabel, ylabel=True):
    axis.axhline(0.0, color="0.5", lw=0.8, zorder=0)
    axis.set_ylim(-LIMIT, LIMIT)
    axis.set_xscale("log")
    axis.set_title(title, fontsize=9)
    axis.set_xlabel(xlabel)
    if ylabel:
        axis.set_ylabel("relative bias: (mean - truth) / |truth|")


def _handle(color, marker=None, linestyle="-", hollow=False, size=6):
    from matplotlib.lines import Line2D

    return Line2D(
        [], [], color=color, marker=marker, ls=linestyle, ms=size, markerfacecolor="white" if hollow else color
    )


def figure(results, tipping, has_sd):
    fig = plt.figure(figsize=(18, 11))
    grid = fig.add_gridspec(2, 4, hspace=0.5, wspace=0.32, top=0.86, bottom=0.16)
    horizons = sorted({r["T"] for r in results if r["game"] == "memory"})
    t_mem = 12 if 12 in horizons else horizons[0]
    n_small = min(r["N"] for r in results if r["game"] == "naming")
    p_star = f" p*={tipping[n_small]['p_star']:.2f}" if n_small in tipping else ""
    panels = [
        (
            dict(game="memory", T=t_mem, target="d share(1)/d bias(1)"),
            f"memory N=3, H=2, T={t_mem}\nd share(1) / d bias(1)",
        ),
        (
            dict(game="memory", T=t_mem, target="d success/d win_stay"),
            f"memory N=3, H=2, T={t_mem}\nd success rate / d win_stay",
        ),
        (
            dict(game="naming", N=n_small, target="d share/d beta (p=0.3)"),
            f"naming N={n_small}, T={ROUNDS * n_small}, p=0.3\nd committed-only share / d beta",
        ),
        (
            dict(game="naming", N=n_small, target="d share/d p (tipping)"),
            f"naming N={n_small}, T={ROUNDS * n_small}, tipping point{p_star}\nd committed-only share / d p",
        ),
    ]
    for column, (where, title) in enumerate(panels):
        axis = fig.add_subplot(grid[0, column])
        rows = _select(results, **where)
        if rows:
            title += f"  (exact {rows[0]['truth']:.3f})"
        for family, marker, ls, offset in (
            ("straight-through Gumbel", "o", "-", 0.95),
            ("relaxed Gumbel", "s", "--", 1.05),
        ):
            group = sorted(_select(rows, family=family), key=lambda r: r["parameter"])
            _points(axis, [r["parameter"] for r in group], group, COLORS[family], marker, ls, offset)
        for family in ("expected", "score function", "stochastic derivative"):
            _reference(axis, _select(rows, family=family), COLORS[family], family == "expected")
        _frame(axis, title, "Gumbel-softmax temperature t", column == 0)
        axis.set_xticks([0.1, 0.3, 1.0, 3.0], ["0.1", "0.3", "1", "3"])
        axis.minorticks_off()
    top = [
        (_handle(COLORS["straight-through Gumbel"], "o"), "straight-through Gumbel"),
        (_handle(COLORS["relaxed Gumbel"], "s", "--"), "relaxed Gumbel"),
        (_handle(COLORS["expected"], None, ":"), "expected (band: +-1 SE)"),
        (_handle(COLORS["score function"]), "score function (band: +-1 SE)"),
    ]
    if has_sd:
        top.append((_handle(COLORS["stochastic derivative"]), "stochastic derivative (band: +-1 SE)"))
    top += [
        (_handle("0.3", "^", "none", size=7), "off scale or not finite"),
        (_handle("0.3", "o", "none", hollow=True), "SE > 3 |truth| (bar omitted)"),
    ]
    fig.legend(*zip(*top), loc="upper center", bbox_to_anchor=(0.5, 0.935), ncol=len(top), fontsize=8, frameon=False)

    chosen = [
        ("score function", None, "o"),
        ("stochastic derivative", None, "D"),
        ("finite difference", 0.1, "s"),
        ("straight-through Gumbel", 0.3, "^"),
        ("relaxed Gumbel", 0.3, "v"),
        ("expected", None, "P"),
    ]
    bottom = []
    for column, (where, xkey, title, xlabel) in enumerate(
        (
            (
                dict(game="memory", target="d share(1)/d bias(1)"),
                "T",
                "memory N=3, H=2: d share(1) / d bias(1)\nagainst the horizon",
                "horizon T (interactions)",
            ),
            (
                dict(game="naming", target="d share/d p (p=0.3)"),
                "N",
                f"naming, T={ROUNDS}N, p=0.3: d committed-only share / d p\nagainst the population size",
                "population size N (agents)",
            ),
        )
    ):
        axis = fig.add_subplot(grid[1, column])
        rows = _select(results, **where)
        for k, (family, parameter, marker) in enumerate(chosen):
            group = sorted(_select(rows, family=family, parameter=parameter), key=lambda r: r[xkey])
            if group:
                _points(axis, [r[xkey] for r in group], group, COLORS[family], marker, "-", 1.0 + 0.025 * (k - 2.5))
                if column == 0:
                    tag = (
                        ""
                        if parameter is None
                        else (f" h={parameter:g}" if "finite" in family else f" t={parameter:g}")
                    )
                    bottom.append((_handle(COLORS[family], marker), family + tag))
        _frame(axis, title, xlabel, column == 0)
        xs = sorted({r[xkey] for r in rows})
        referenced = {r[xkey] for r in rows if r["truth_se"] > 0}
        axis.set_xticks(xs, [f"{x}" + ("*" if x in referenced else "") for x in xs])
        axis.minorticks_off()
        if referenced:
            axis.text(
                0.02,
                0.97,
                "* truth: long score-function run (its SE included)",
                transform=axis.transAxes,
                fontsize=7,
                va="top",
            )
    fig.legend(*zip(*bottom), loc="lower center", bbox_to_anchor=(0.27, 0.04), ncol=3, fontsize=8, frameon=False)

    axis = fig.add_subplot(grid[1, 2:])
    labels = list(dict.fromkeys(r["estimator"] for r in results))
    largest = max(r["N"] for r in results if r["game"] == "naming")
    series = [
        (dict(game="memory", T=t_mem, target="d share(1)/d bias(1)"), f"memory T={t_mem}: d share / d bias", "o"),
        (dict(game="memory", T=t_mem, target="d success/d win_stay"), f"memory T={t_mem}: d success / d win_stay", "s"),
        (dict(game="naming", N=n_small, target="d share/d beta (p=0.3)"), f"naming N={n_small}: d share / d beta", "^"),
        (
            dict(game="naming", N=n_small, target="d share/d p (tipping)"),
            f"naming N={n_small}: d share / d p (tipping)",
            "v",
        ),
    ]
    if largest != n_small:
        series.append(
            (
                dict(game="naming", N=largest, target="d share/d p (p=0.3)"),
                f"naming N={largest}: d share / d p (p=0.3)",
                "D",
            )
        )
    finite = [r["variance_x_cost"] for r in results if np.isfinite(r["variance_x_cost"]) and r["variance_x_cost"] > 0]
    low, high = np.min(finite) / 3, np.percentile(finite, 90) * 100
    handles = []
    for k, (where, label, marker) in enumerate(series):
        rows = {r["estimator"]: r for r in _select(results, **where)}
        x = np.array([i for i, name in enumerate(labels) if name in rows]) + 0.12 * (k - (len(series) - 1) / 2)
        rows = [rows[name] for name in labels if name in rows]
        y = np.array([r["variance_x_cost"] for r in rows])
        shown = np.isfinite(y) & (y > 0) & (y <= high)
        consistent = np.array([r["z"] < 4 for r in rows])
        color = ("tab:blue", "tab:orange", "tab:green", "tab:brown", "tab:pink")[k]
        axis.scatter(x[shown & consistent], y[shown & consistent], marker=marker, color=color, s=32)
        axis.scatter(
            x[shown & ~consistent], y[shown & ~consistent], marker=marker, facecolors="white", edgecolors=color, s=32
        )
        axis.scatter(
            x[~shown],
            np.full((~shown).sum(), high / 2.5),
            marker="^",
            color=color,
            s=40,
            edgecolors="k",
            linewidths=0.5,
        )
        handles.append((_handle(color, marker, "none"), label))
    handles += [
        (_handle("0.3", "o", "none", hollow=True), "hollow: abs(bias)/SE >= 4 (biased)"),
        (_handle("0.3", "^", "none"), "off scale or not finite"),
    ]
    axis.set_yscale("log")
    axis.set_ylim(low, high)
    axis.set_xlim(-0.6, len(labels) - 0.4)
    axis.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    axis.set_ylabel("variance x cost  ((derivative units)$^2$ s)")
    axis.set_title("cost-normalised variance: variance of an estimate that takes 1 s (lower is better)", fontsize=9)
    axis.grid(axis="y", which="major", alpha=0.3)
    axis.legend(*zip(*handles), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    note = "" if has_sd else "; stochastic derivative absent from jaxconv.relax: not shown"
    fig.suptitle(
        "Gradient estimators against exact derivatives (tiny systems: jaxconv.exact); error bars and bands: "
        f"+-1 SE{note}",
        fontsize=12,
    )
    return fig


if __name__ == "__main__":
    main()
