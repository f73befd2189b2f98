"""``jaxconv fit PATH``: fit a memory-game policy to LLM naming-game logs and predict the collective outcomes.

``add_parser(commands)`` adds the ``fit`` subcommand; ``run(args)`` returns one JSON-ready dict from
:func:`jaxconv.estimate.pipeline.fit_path` (which does the work: grouping, fits, predictions, targets); ``text(result)``
is a readable version. This module holds only the arguments, the progress display (stage lines and a tqdm bar on
stderr, on a terminal or with ``--progress``) and the text. Bad values raise ValueError with one line naming the
value.
"""

from jaxconv.estimate.collective import FLIP_TARGET_KS
from jaxconv.estimate.fit import FAMILIES
from jaxconv.estimate.pipeline import DEFAULTS, fit_path


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
        "--flip-targets",
        nargs="?",
        const="all",
        default=None,
        choices=FLIP_TARGET_KS,
        help="the collective fit also matches P(flip) at every observed k of each committed-minority series (all, "
        "the default) or only at the k that decide its observed critical mass (deciding)",
    )
    fit.add_argument(
        "--random-effects",
        action="store_true",
        help="per-run random first-move bias, kept when it raises the held-out likelihood of the first moves",
    )
    fit.add_argument(
        "--drift",
        action="store_true",
        help="shared time-local shocks on a run's choices (sd and block length fitted), kept when they raise the "
        "held-out likelihood; the collective fit and predictions then simulate them",
    )
    fit.add_argument(
        "--fit-drift",
        action="store_true",
        help="with --collective --drift: the collective fit also fits the drift's sd (from the choices' estimate, "
        "also where the choices alone do not keep it)",
    )
    fit.add_argument(
        "--window-table",
        type=int,
        default=0,
        metavar="D",
        help="also simulate the empirical table P(name | last D rounds) on the baseline files (0: no)",
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
    from jaxconv.cli.options import seed

    fit.add_argument("--seed", type=seed, default=DEFAULTS["seed"])
    fit.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict:
    """The ``fit`` command: :func:`fit_path` with the parsed arguments."""
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    names = None if args.names is None else parse_names(args.names)
    say = Progress(args.progress or None)
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
        progress=say if say.enabled else None,
        step_progress=say.bar if say.enabled else None,
        transfer=args.transfer,
        flip_targets=args.flip_targets,
        random_effects=args.random_effects,
        drift=args.drift,
        fit_drift=args.fit_drift,
        single_prompts=args.single_prompts,
        window_table=args.window_table,
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

    def bar(self, label: str, total: int):
        """A callable advancing a tqdm bar (closed at ``total``), or None when disabled."""
        if not self.enabled:
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, desc=label, leave=False)

        def advance(record):
            bar.update(1)
            shown = {"ll": round(record["log_likelihood"], 4), "outcome_loss": round(record["outcome_loss"], 2)}
            bar.set_postfix(shown | ({"drift_sd": record["drift_sd"]} if "drift_sd" in record else {}))
            if bar.n >= total:
                bar.close()

        return advance


def parse_names(text: str) -> list[str]:
    """'Q,M' -> ['Q', 'M']; ValueError naming the text if a name is empty or repeated."""
    names = [n.strip() for n in text.split(",")]
    if len(names) < 2 or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"--names must list two or more distinct names separated by commas, got {text!r}")
    return names


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
                files = f", held-out files {score['held_out_files']:.4f}" if "held_out_files" in score else ""
                lines.append(f"  LL/choice {name}: train {score['train']:.4f}, held-out {score['held_out']:.4f}{files}")
            spread = [
                f"{v['dispersion']:.2f} under the {label.replace('_', ' ')} (se {v['se']:.2f}, {v['runs']} runs)"
                if v["dispersion"] is not None
                else f"none under the {label.replace('_', ' ')} ({v['reason']})"
                for label, v in group["run_dispersion"].items()
            ]
            lines.append(f"  run dispersion (1 = runs alike): {'; '.join(spread)}")
            rounds = group["round_dependence"]
            binned = ", ".join(f"{k} {v:.4f}" for k, v in rounds["held_out"].items() if k != "window")
            lines.append(
                f"  round dependence beyond the memory: held-out LL/choice window {rounds['held_out']['window']:.4f}, "
                f"{binned}: {'detected' if rounds['detected'] else 'none'}"
            )
            predictions = group.get("prediction", {})
            predictions = predictions if "choice_only" in predictions else {"choice_only": predictions}
            effect = group.get("random_effects")
            if effect is not None and effect["fitted"]:
                gain = effect["gain_per_first_move"]["held_out"]
                kept = "kept" if effect["selected"] else "not kept"
                lines.append(f"  random first-move bias: sd {effect['sd']:.3g}, held-out {gain:+.4f}/first, {kept}")
            elif effect is not None:
                lines.append(f"  random first-move bias: not fitted, because {effect['reason']}")
            drift = group.get("drift")
            if drift is not None and drift["fitted"]:
                tried = ", ".join(
                    f"{r} rounds sd {v['sd']:.3g} held-out {v['gain_per_choice']['held_out']:+.5f}/choice "
                    f"(z {v['held_out_z']:.1f})"
                    for r, v in drift["by_rounds"].items()
                )
                kept = f"kept: {drift['rounds']} rounds" if drift["selected"] else "not kept"
                lines.append(f"  shared drift: {tried}; {kept}")
            elif drift is not None:
                lines.append(f"  shared drift: not fitted, because {drift['reason']}")
            table = group.get("window_table")
            if table is not None and not table["simulated"]:
                lines.append(f"  window table depth {table['depth']}: not simulated, {table['reason']}")
            for base in table["baseline"] if table is not None and table["simulated"] else []:
                observed, predicted = base["observed"], base["predicted"]
                shares = {k: round(v, 3) for k, v in predicted["winner_share"].items()}
                lines.append(
                    f"  window table depth {table['depth']}: N={base['n_agents']} mean stop rounds observed "
                    f"{observed['stop_rounds']['mean']:.2f}, predicted {predicted['stop_rounds']['mean']}, "
                    f"winner shares {shares}"
                )
            if "collective_fit" in group:
                fit = group["collective_fit"]
                if fit["fitted"]:
                    ll = fit["log_likelihood_per_choice"]
                    lines.append(
                        f"  collective fit: LL/choice {ll['choice_only']:.5f} -> {ll['collective']:.5f};"
                        f" outcomes fitted over the {fit['outcomes_of']}"
                    )
                    if "drift" in fit:
                        shocks = fit["drift"]
                        lines.append(
                            f"  collective fit drift: sd {shocks['start_sd']} -> {shocks['sd']} per name, every"
                            f" {shocks['rounds']} rounds; LL/choice with it {ll['collective_with_drift']:.5f}"
                        )
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
                        f"observed {series['observed']['critical_k']}, predicted {series['predicted']['critical_k']}; "
                        f"runs flipped per k against the predicted P(flip): p = "
                        f"{series['predicted']['flips_check']['p_value']:.2g}"
                    )
                for target in prediction.get("targets", []):
                    met = [k for k in ("stop_met", "winner_met", "critical_met") if k in target]
                    lines.append(
                        f"  [{which}] target {target['condition']}: "
                        + ", ".join(f"{k} {target[k]}" for k in met)
                        + _sharpness(target)
                    )
                if "targets_summary" in prediction:
                    summary = prediction["targets_summary"]
                    expected = summary["expected_if_true"]
                    lines.append(
                        f"  [{which}] targets met {summary['met']} of {summary['of']}"
                        + ("" if expected is None else f"; a prediction that were the truth would meet {expected:g}")
                    )
                for miss in prediction.get("not_predicted", []):
                    lines.append(
                        f"  [{which}] not predicted: {miss.get('file') or miss.get('series')}: {miss['reason']}"
                    )
    return "\n".join(lines)


def _sharpness(target: dict) -> str:
    """How sharp a target is (:func:`jaxconv.estimate.predict.targets_met`): the share of experiments of the logged
    size, drawn from the prediction itself, that would meet it, and the observed value's p-value."""

    def shown(x):
        return "n/a" if x is None else f"{x:.2g}"

    if "stop_met" in target:
        chances = f"stop {shown(target.get('stop_target_chance'))}, winners {shown(target.get('winner_target_chance'))}"
        p_value = f"mean stop time p = {shown(target.get('stop_p_value'))}"
    else:
        chances, p_value = (
            shown(target.get("target_chance")),
            f"runs flipped per k p = {shown(target.get('flips_p_value'))}",
        )
    return f" (met by the prediction itself in a share {chances} of experiments this size; {p_value})"


def _estimate(stats: dict) -> str:
    interval = f", bootstrap 95% [{stats['low']:.3g}, {stats['high']:.3g}]" if "low" in stats else ""
    free = "" if stats["identified"] else " (not identified: the prior holds it)"
    return f"{stats['estimate']:.4g} (laplace sd {stats['laplace_sd']:.2g}{interval}){free}"
