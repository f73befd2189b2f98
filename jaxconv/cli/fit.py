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

``--policy auto`` picks the softmax family (optional first-move bias, unanimity bonus, lapse) of the best held-out
log-likelihood. ``--collective`` also fits each group to its collective outcomes (:mod:`jaxconv.estimate.collective`:
choice likelihood plus simulated stop times and winners) and reports both fits side by side, each with the issue's
targets (``targets``: stop-time mean within 15%, winner shares inside the observed 95% binomial interval, critical
mass within one agent). Predictions integrate over parameter uncertainty: ``--draws`` parameter vectors from the
Laplace approximation share the replicas, and each predicted number has a 95% interval over the draws.
``--train baseline`` (or ``committed``) fits on the baseline (or committed-minority and evolved) runs only and
predicts every condition: the out-of-condition test. Files of one model written with and without its size
(``llama31_...``, ``llama31_70b_...``) are one model. Progress goes to stderr on a terminal or with ``--progress``;
conditions that could not be predicted are listed with the reason (``not_predicted``).
"""

from pathlib import Path

import numpy as np

from jaxconv.estimate.fit import FAMILIES

DEFAULTS = {
    "policy": "softmax",
    "bootstrap": 50,
    "replicas": 10_000,
    "folds": 5,
    "seed": 0,
    "draws": 10,
    "train": "all",
    "collective_steps": 60,
    "weight": 1.0,
}
TRAIN = {"all": ("game", "committed", "evolved"), "baseline": ("game",), "committed": ("committed", "evolved")}


def add_parser(commands) -> None:
    """Add ``fit`` to the top-level subparsers ``commands``."""
    fit = commands.add_parser("fit", help="fit a policy to LLM logs; held-out likelihood; predicted vs observed")
    fit.add_argument("path", help="a zip file, a folder or a single log file")
    fit.add_argument("--names", help="comma-separated names, e.g. Q,M: only the files with exactly these names")
    fit.add_argument("--policy", default=DEFAULTS["policy"], help=" | ".join([*FAMILIES, "auto"]))
    fit.add_argument("--collective", action="store_true", help="also fit the collective outcomes; both side by side")
    fit.add_argument("--train", default=DEFAULTS["train"], help="runs to fit: all | baseline | committed")
    fit.add_argument("--draws", type=int, default=DEFAULTS["draws"], help="parameter draws for predictions (1: none)")
    fit.add_argument("--collective-steps", type=int, default=DEFAULTS["collective_steps"], help="Adam steps")
    fit.add_argument("--weight", type=float, default=DEFAULTS["weight"], help="weight of the collective targets")
    fit.add_argument(
        "--single-prompts",
        action="store_true",
        help="add the model's single-prompt answers (bias_test, no_memory_bias_test files) to the choices",
    )
    fit.add_argument(
        "--transfer", action="store_true", help="also predict the model's other name sets (e.g. fit W=2, predict W=10)"
    )
    fit.add_argument("--progress", action="store_true", help="progress on stderr (default: on a terminal)")
    fit.add_argument("--bootstrap", type=int, default=DEFAULTS["bootstrap"], help="resamples of the runs (0: none)")
    fit.add_argument(
        "--replicas",
        type=int,
        default=DEFAULTS["replicas"],
        help="simulated replicas per prediction (0: no prediction)",
    )
    fit.add_argument("--folds", type=int, default=DEFAULTS["folds"], help="held-out folds over runs")
    from jaxconv.cli.main import seed

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
        collective=args.collective,
        train=args.train,
        draws=args.draws,
        collective_steps=args.collective_steps,
        weight=args.weight,
        progress=args.progress or None,
        transfer=args.transfer,
        single_prompts=args.single_prompts,
    )


class Progress:
    """Stage lines ``[  12 s] text`` on stderr, and a tqdm bar for the collective fit's steps, when enabled."""

    def __init__(self, enabled: bool | None):
        import sys
        import time

        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._time = time.monotonic

    def __call__(self, text: str) -> None:
        if self.enabled:
            import sys

            print(f"[{self._time() - self.start:6.0f} s] {text}", file=sys.stderr, flush=True)

    def bar(self, total: int, label: str):
        """A callable advancing a tqdm bar (closed at ``total``), or None when disabled."""
        if not self.enabled:
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, desc=label, leave=False)

        def advance(record):
            bar.update(1)
            bar.set_postfix(simulated=record["simulated"], ll=round(record["log_likelihood"], 4))
            if bar.n >= total:
                bar.close()

        return advance


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
    collective: bool = False,
    train: str = DEFAULTS["train"],
    draws: int = DEFAULTS["draws"],
    collective_steps: int = DEFAULTS["collective_steps"],
    weight: float = DEFAULTS["weight"],
    progress: bool | None = False,
    transfer: bool = False,
    single_prompts: bool = False,
) -> dict:
    """Fit and predict every (model, names, H) group of the game files in ``path`` (module docstring)."""
    import jax

    from jaxconv.data import load_logs, tidy_dataset
    from jaxconv.data.summary import model_names
    from jaxconv.estimate.fit import check_settings, fit_choices
    from jaxconv.estimate.likelihood import GAME_KINDS, choice_data, name_groups

    check_settings("softmax" if policy == "auto" else policy, bootstrap, folds)
    for label, value, low in (
        ("replicas", replicas, 0),
        ("draws", draws, 1),
        ("collective_steps", collective_steps, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    if train not in TRAIN:
        raise ValueError(f"train must be one of {list(TRAIN)}, got {train!r}")
    if collective and not policy.startswith("softmax") and policy != "auto":
        raise ValueError(f"--collective needs a softmax policy (or auto), got {policy!r}")
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    say = Progress(progress)
    say(f"loading {path}")
    collection = load_logs(path)
    games = [log for log in collection.files if log.meta.kind in GAME_KINDS and log.runs]
    if not games:
        raise ValueError(f"no game runs (baseline, committed-minority or evolved files) in {path}")
    singles = (
        [log for log in collection.files if log.single is not None and log.single.answers] if single_prompts else []
    )
    canonical = model_names(log.meta.model or "unknown" for log in games + singles)
    models: dict[str, list] = {}
    for log in games:
        models.setdefault(canonical.get(log.meta.model or "unknown", "unknown"), []).append(log)
    for log in singles:
        model = canonical.get(log.meta.model or "unknown", "unknown")
        if model in models:
            models[model].append(log)

    key = jax.random.key(seed)
    out = {
        "source": str(path),
        "policy": policy,
        "settings": {
            "names": names,
            "bootstrap": bootstrap,
            "replicas": replicas,
            "folds": folds,
            "seed": seed,
            "collective": collective,
            "train": train,
            "draws": draws,
            "collective_steps": collective_steps,
            "weight": weight,
            "transfer": transfer,
            "single_prompts": single_prompts,
        },
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
            label = f"{model} {','.join(order)} H={memory}"
            in_group = [log for log in logs if log.name in {tidy.files[f] for f in files}]
            training = [log for log in in_group if log.meta.kind in TRAIN[train]]
            if not training:
                not_fitted.append({"names": list(order), "memory": memory, "reason": f"no {train} runs to fit"})
                continue
            data = (
                choice_data(tidy_dataset(training), order, memory)
                if train != "all"
                else choice_data(tidy, order, memory)
            )
            if data.n_runs < 2:
                not_fitted.append({"names": list(order), "memory": memory, "reason": "fewer than 2 runs"})
                continue
            say(f"{label}: fitting {data.n_choices} choices of {data.n_runs} runs ({train})")
            fitted = fit_choices(data, policy, bootstrap=bootstrap, folds=folds, seed=seed)
            group = fitted.report | {"train": train}
            fits = {"choice_only": fitted.raw}
            if collective:
                group["collective_fit"], raw = _collective(
                    fitted, data, in_group, key, collective_steps, weight, say, label, train
                )
                if raw is not None:
                    fits["collective"] = raw
            if replicas:
                group["prediction"] = {}
                for which, raw in fits.items():
                    key, sub = jax.random.split(key)
                    prefix = f"{label} {which}"
                    report = lambda t, p=prefix: say(f"{p}: {t}")  # noqa: E731
                    group["prediction"][which] = _predict(
                        fitted, raw, data, in_group, replicas, draws, sub, seed, report
                    )
                if transfer:
                    group["transfer"] = {}
                    for (other_set, other_memory), other_files in name_groups(tidy).items():
                        if other_set == name_set or other_memory != memory:
                            continue
                        other_names = tuple(tidy.names[other_files[0]])
                        other_logs = [log for log in logs if log.name in {tidy.files[f] for f in other_files}]
                        entry = {}
                        for which, raw in fits.items():
                            key, sub = jax.random.split(key)
                            prefix = f"{label} {which} -> {','.join(other_names)}"
                            report = lambda t, p=prefix: say(f"{p}: {t}")  # noqa: E731
                            entry[which] = _predict(
                                fitted, raw, data, other_logs, replicas, draws, sub, seed, report, other_names
                            )
                        group["transfer"][",".join(other_names)] = entry
                if not collective:  # the historical layout: the choice-only prediction in place
                    group["prediction"] = group["prediction"]["choice_only"]
            groups.append(group)
        if groups or not_fitted:
            out["models"][model] = {
                "files_models": sorted({log.meta.model for log in logs if log.meta.model}),
                "groups": groups,
                "not_fitted": not_fitted,
                "tidy_mismatches": len(tidy.mismatches),
            }
    if not out["models"]:
        raise ValueError(f"no game file has exactly the names {','.join(names)!r}; found {sorted(found)}")
    say("done")
    return out


def _collective(fitted, data, logs, key, steps, weight, say, label, train):
    """The collective fit of one group: (report, raw estimate or None with the reason in the report)."""

    from jaxconv.estimate.collective import fit_collective, targets_of

    if fitted.family is None or not fitted.family.name.startswith("softmax"):
        return {"fitted": False, "reason": "the collective fit needs a softmax family"}, None
    targets = targets_of([log for log in logs if log.meta.kind in TRAIN[train]], data.names)
    if not targets:
        reason = "no baseline file with at least 2 runs among the training runs: no collective target"
        return {"fitted": False, "reason": reason}, None
    say(f"{label}: collective fit, {len(targets)} target group(s), {steps} steps")
    result = fit_collective(
        fitted.family, data, fitted.raw, targets, key, steps=steps, weight=weight, progress=say.bar(steps, label)
    )
    parameters = {k: np.asarray(v).round(4).tolist() for k, v in fitted.family.parameters(result.policy).items()}
    report = {
        "fitted": True,
        "family": fitted.family.name,
        "parameters": parameters,
        "log_likelihood_per_choice": {
            "choice_only": round(result.log_likelihood_choice_only, 5),
            "collective": round(result.log_likelihood, 5),
        },
        "targets": result.targets,
        "first_step": result.trace[0],
        "last_step": result.trace[-1],
    }
    return report, result.raw


def _predict(fitted, raw, data, logs, replicas, draws, key, seed, say, names=None):
    """Predictions of the fitted family at ``raw``, integrated over ``draws`` parameter draws: the bootstrap
    resamples when there are any (shifted by ``raw`` - the choice-only estimate, for the collective fit), else the
    Laplace approximation at the choice-only estimate, centred at ``raw``; with the targets."""
    import jax

    from jaxconv.estimate.fit import laplace_draws
    from jaxconv.estimate.predict import compare, targets_met

    family = fitted.family
    if draws <= 1:
        parameter_draws, source = [raw], "point estimate"
    elif fitted.bootstrap_raw:
        shift = jax.tree.map(lambda a, b: a - b, raw, fitted.raw)
        resamples = fitted.bootstrap_raw[: draws - 1]
        parameter_draws = [raw] + [jax.tree.map(lambda r, s: r + s, r, shift) for r in resamples]
        source = f"estimate and {len(resamples)} bootstrap resamples"
    else:
        parameter_draws = laplace_draws(family, data, fitted.raw, draws, seed, center=raw)
        source = f"estimate and {draws - 1} Laplace draws"
    policies = [family.policy(r) for r in parameter_draws]
    names = data.names if names is None else tuple(names)
    if names != tuple(data.names):
        policies = [_retarget(p, data.names, names) for p in policies]
        new = sorted(set(names) - set(data.names))
        source += f"; per-name biases carried over for the names in both sets, 0 for {new}"
    prediction = compare(policies, logs, names, data.memory, data.payoffs, replicas, key, progress=say)
    prediction["parameter_draws"] = source
    prediction["targets"] = targets_met(prediction)
    return prediction


def _retarget(policy, fitted_names, names):
    """``policy`` with its per-name parameters (bias, first_bias) moved to ``names``: the fitted value for a name in
    both lists, 0 for a new one, then centred."""
    import equinox as eqx
    import jax.numpy as jnp

    def moved(values):
        out = jnp.array([values[fitted_names.index(n)] if n in fitted_names else 0.0 for n in names])
        return out - out.mean()

    policy = eqx.tree_at(lambda p: p.bias, policy, moved(policy.bias))
    if getattr(policy, "first_bias", None) is not None:
        policy = eqx.tree_at(lambda p: p.first_bias, policy, moved(policy.first_bias))
    return policy


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
            predictions = group.get("prediction", {})
            predictions = predictions if "choice_only" in predictions else {"choice_only": predictions}
            if "collective_fit" in group:
                fit = group["collective_fit"]
                if fit["fitted"]:
                    ll = fit["log_likelihood_per_choice"]
                    lines.append(f"  collective fit: LL/choice {ll['choice_only']:.5f} -> {ll['collective']:.5f}")
                else:
                    lines.append(f"  collective fit: not fitted, because {fit['reason']}")
            for which, prediction in predictions.items():
                for base in prediction.get("baseline", []):
                    observed, predicted = base["observed"], base["predicted"]
                    shares = {k: round(v, 3) for k, v in predicted["winner_share"].items()}
                    lines.append(
                        f"  [{which}] N={base['n_agents']} winners observed {observed['winners']}, predicted {shares}"
                    )
                    lines.append(
                        f"  [{which}] N={base['n_agents']} mean stop rounds observed "
                        f"{observed['stop_rounds']['mean']:.2f}, predicted {predicted['stop_rounds']['mean']} "
                        f"(95% over draws {predicted['stop_rounds'].get('interval')})"
                    )
                for series in prediction.get("tipping", []):
                    lines.append(
                        f"  [{which}] N={series['n_agents']} {series['incumbent']} -> {series['pushed']}: critical k "
                        f"observed {series['observed']['critical_k']}, predicted {series['predicted']['critical_k']}"
                    )
                for target in prediction.get("targets", []):
                    met = [k for k in ("stop_met", "winner_met", "critical_met") if k in target]
                    lines.append(
                        f"  [{which}] target {target['condition']}: " + ", ".join(f"{k} {target[k]}" for k in met)
                    )
                for miss in prediction.get("not_predicted", []):
                    lines.append(
                        f"  [{which}] not predicted: {miss.get('file') or miss.get('series')}: {miss['reason']}"
                    )
    return "\n".join(lines)


def _estimate(stats: dict) -> str:
    interval = f", bootstrap 95% [{stats['low']:.3g}, {stats['high']:.3g}]" if "low" in stats else ""
    free = "" if stats["identified"] else " (not identified: the prior holds it)"
    return f"{stats['estimate']:.4g} (laplace sd {stats['laplace_sd']:.2g}{interval}){free}"
