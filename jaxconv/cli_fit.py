"""``jaxconv fit PATH``: fit a memory-game policy to LLM naming-game logs and predict the collective outcomes.

``add_parser(commands)`` adds the ``fit`` subcommand; ``run(args)`` returns one JSON-ready dict (``fit_path``
does the work and is importable); ``text(result)`` is a readable version. Bad values raise ValueError with one line
naming the value.

The game files of PATH (baseline, committed-minority and ``evolved_from`` runs) are grouped by model (from the
file names; nothing depends on which models) and, within a model, by their set of names and memory H (``--names
Q,M`` keeps the files with exactly those names). For each group: the policy fitted by maximum likelihood with
bootstrap uncertainty, train and held-out log-likelihood per choice of every policy and baseline
(:mod:`jaxconv.estimate.fit`), and, with ``--replicas`` > 0, predicted vs observed winners, stop times and
critical masses (:mod:`jaxconv.estimate.predict`).
"""

from pathlib import Path

from jaxconv.estimate.fit import FAMILIES

DEFAULTS = {"policy": "softmax", "bootstrap": 50, "replicas": 10_000, "folds": 5, "seed": 0}


def add_parser(commands) -> None:
    """Add ``fit`` to the top-level subparsers ``commands``."""
    fit = commands.add_parser("fit", help="fit a policy to LLM logs; held-out likelihood; predicted vs observed")
    fit.add_argument("path", help="a zip file, a folder or a single log file")
    fit.add_argument("--names", help="comma-separated names, e.g. Q,M: only the files with exactly these names")
    fit.add_argument("--policy", default=DEFAULTS["policy"], help=" | ".join(FAMILIES))
    fit.add_argument("--bootstrap", type=int, default=DEFAULTS["bootstrap"], help="resamples of the runs (0: none)")
    fit.add_argument(
        "--replicas",
        type=int,
        default=DEFAULTS["replicas"],
        help="simulated replicas per prediction (0: no prediction)",
    )
    fit.add_argument("--folds", type=int, default=DEFAULTS["folds"], help="held-out folds over runs")
    from jaxconv.cli import seed

    fit.add_argument("--seed", type=seed, default=DEFAULTS["seed"])
    fit.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict:
    """The ``fit`` command: :func:`fit_path` with the parsed arguments."""
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    names = None if args.names is None else parse_names(args.names)
    return fit_path(
        args.path,
        names=names,
        policy=args.policy,
        bootstrap=args.bootstrap,
        replicas=args.replicas,
        folds=args.folds,
        seed=args.seed,
    )


def parse_names(text: str) -> list[str]:
    """'Q,M' -> ['Q', 'M']; ValueError naming the text if a name is empty or repeated."""
    names = [n.strip() for n in text.split(",")]
    if len(names) < 2 or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"--names must list two or more distinct names separated by commas, got {text!r}")
    return names


def fit_path(
    path,
    *,
    names: list[str] | None = None,
    policy: str = DEFAULTS["policy"],
    bootstrap: int = DEFAULTS["bootstrap"],
    replicas: int = DEFAULTS["replicas"],
    folds: int = DEFAULTS["folds"],
    seed: int = DEFAULTS["seed"],
) -> dict:
    """Fit and predict every (model, names, H) group of the game files in ``path`` (module docstring)."""
    import jax

    from jaxconv.data import load_logs, tidy_dataset
    from jaxconv.estimate.fit import check_settings, fit_choices
    from jaxconv.estimate.likelihood import GAME_KINDS, choice_data, name_groups
    from jaxconv.estimate.predict import compare

    check_settings(policy, bootstrap, folds)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be an integer >= 0, got {replicas!r}")
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    collection = load_logs(path)
    games = [log for log in collection.files if log.meta.kind in GAME_KINDS and log.runs]
    if not games:
        raise ValueError(f"no game runs (baseline, committed-minority or evolved files) in {path}")
    models: dict[str, list] = {}
    for log in games:
        models.setdefault(log.meta.model or "unknown", []).append(log)

    key = jax.random.key(seed)
    out = {
        "source": str(path),
        "policy": policy,
        "settings": {"names": names, "bootstrap": bootstrap, "replicas": replicas, "folds": folds, "seed": seed},
        "models": {},
        "skipped": [{"file": s.file, "run": s.run, "reason": s.reason} for s in collection.skipped],
    }
    found = set()
    for model, logs in models.items():
        tidy = tidy_dataset(logs)
        groups, not_fitted = [], []
        for (name_set, memory), files in name_groups(tidy).items():
            found.add(",".join(tidy.names[files[0]]))
            if names is not None and name_set != frozenset(names):
                continue
            order = names or tidy.names[files[0]]
            data = choice_data(tidy, order, memory)
            if data.n_runs < 2:
                not_fitted.append({"names": list(order), "memory": memory, "reason": "fewer than 2 runs"})
                continue
            fitted = fit_choices(data, policy, bootstrap=bootstrap, folds=folds, seed=seed)
            group = fitted.report
            if replicas:
                key, sub = jax.random.split(key)
                in_group = [log for log in logs if log.name in data.files]
                group["prediction"] = compare(fitted.policy, in_group, data.names, memory, data.payoffs, replicas, sub)
            groups.append(group)
        if groups or not_fitted:
            out["models"][model] = {
                "groups": groups,
                "not_fitted": not_fitted,
                "tidy_mismatches": len(tidy.mismatches),
            }
    if not out["models"]:
        raise ValueError(f"no game file has exactly the names {','.join(names)!r}; found {sorted(found)}")
    return out


def text(result: dict) -> str:
    """A readable summary of a :func:`fit_path` result: per model and group the fitted parameters, the
    log-likelihoods and the predictions."""
    lines = [f"source: {result['source']}  policy: {result['policy']}"]
    for model, entry in result["models"].items():
        for group in entry["groups"]:
            lines.append(
                f"{model} names {','.join(group['names'])} H={group['memory']}: "
                f"{group['n_runs']} runs, {group['n_choices']} choices"
            )
            for name, value in group["parameters"].items():
                per_name = value.items() if "estimate" not in value else [(None, value)]
                lines += [f"  {name}{f'[{label}]' if label else ''} = {_estimate(stats)}" for label, stats in per_name]
            for name, score in group["log_likelihood_per_choice"].items():
                lines.append(f"  LL/choice {name}: train {score['train']:.4f}, held-out {score['held_out']:.4f}")
            prediction = group.get("prediction", {})
            for base in prediction.get("baseline", []):
                observed, predicted = base["observed"], base["predicted"]
                shares = {k: round(v, 3) for k, v in predicted["winner_share"].items()}
                lines.append(f"  N={base['n_agents']} winners observed {observed['winners']}, predicted {shares}")
                lines.append(
                    f"  N={base['n_agents']} mean stop rounds observed {observed['stop_rounds']['mean']}, "
                    f"predicted {predicted['stop_rounds']['mean']}"
                )
            for series in prediction.get("tipping", []):
                lines.append(
                    f"  N={series['n_agents']} {series['incumbent']} -> {series['pushed']}: critical k observed "
                    f"{series['observed']['critical_k']}, predicted {series['predicted']['critical_k']}"
                )
    return "\n".join(lines)


def _estimate(stats: dict) -> str:
    interval = f", bootstrap 95% [{stats['low']:.3g}, {stats['high']:.3g}]" if "low" in stats else ""
    free = "" if stats["identified"] else " (not identified: the prior holds it)"
    return f"{stats['estimate']:.4g} (laplace sd {stats['laplace_sd']:.2g}{interval}){free}"
