"""Fit policies to LLM naming-game logs and predict the collective outcomes: the whole pipeline of ``jaxconv fit``.

:func:`fit_path` groups the game files of a path (baseline, committed-minority and ``evolved_from`` runs) by model
(from the file names; nothing depends on which models; ``llama31_...`` and ``llama31_70b_...`` are one model) and,
within a model, by their set of names and memory H (``names=["Q", "M"]`` keeps the files with exactly those names).
For each group:

- the policy fitted by maximum likelihood with bootstrap uncertainty, train and held-out log-likelihood per choice
  of every policy and baseline (:mod:`jaxconv.estimate.fit`); ``policy="auto"`` picks the softmax family (optional
  first-move bias, unanimity bonus, lapse) of the best held-out log-likelihood among those whose held-out
  collective outcomes (mean stop time and winner shares of the held-out baseline runs, predicted by the fold's fit
  without them: :func:`jaxconv.estimate.predict.held_out_outcomes`) are consistent with the observed (among all
  when none is; the check needs ``replicas`` > 0);
- with ``collective=True``, the collective fit (:mod:`jaxconv.estimate.collective`: choice likelihood plus simulated
  stop times, their distribution, per-name winner shares and success per round of the baseline runs; with
  ``flip_targets=True`` or ``"all"`` also P(flip) of the committed-minority runs at every observed k, ``"deciding"``
  only at the k that decide each critical mass), its simulated outcomes those of the prediction: over the same
  ``draws`` parameter draws;
- with ``random_effects=True``, a per-run random first-move bias (:mod:`jaxconv.estimate.random_effects`), kept
  when it raises the held-out log-likelihood of the first moves; the collective fit and the predictions then
  simulate runs with their own first-move bias;
- with ``drift=True``, shared time-local shocks on the choices of a run (:mod:`jaxconv.estimate.drift`: sd per
  block length, fitted with the policy held at its estimate), kept when they raise the held-out log-likelihood of
  the choices; the collective fit and the predictions then simulate runs with them. With ``fit_drift=True`` the
  collective fit fits their sd together with the policy (from the kept drift, or else from the block length of
  the largest held-out gain), its predictions simulating the drift it fitted;
- with ``replicas`` > 0, predicted vs observed winners, stop times and critical masses
  (:mod:`jaxconv.estimate.predict`) of each fit, integrated over ``draws`` parameter draws (bootstrap resamples, or
  the Laplace approximation), each with the targets of issue [collective-fit] (``targets``: stop-time mean within
  15%, winner shares inside the observed 95% binomial interval, critical mass within one agent) and the conditions
  that could not be predicted with the reason (``not_predicted``);
- with ``window_table=d`` > 0 (and ``replicas`` > 0), the model-free reference: the empirical table P(name | own and
  partner names of the last d rounds) of the fitted runs, simulated on the baseline files. It is what any agent
  fitted to the choices alone, seeing the last d rounds, can predict; when even it misses an outcome, the miss is
  not in how choices depend on the memory (it is, e.g., heterogeneity between runs);
- ``train="baseline"`` (or ``"committed"``) fits on the baseline (or committed-minority and evolved) runs only and
  predicts every condition: the out-of-condition test; ``transfer=True`` also predicts the model's other name sets
  of the same H (e.g. fit W=2, predict W=10).

Bad values raise ValueError naming the value. ``progress(text)`` receives stage lines and
``step_progress(label, total)`` may return a callable advanced after each step of a collective fit (the CLI draws
them on stderr; the library prints nothing).
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

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
"""Default settings of :func:`fit_path` (and of ``jaxconv fit``)."""

RUN_TYPES = 8
"""Draws of the per-run random first-move bias mixed in each parameter draw's predictions."""

TRAIN = {"all": ("game", "committed", "evolved"), "baseline": ("game",), "committed": ("committed", "evolved")}
"""The file kinds each ``train`` setting fits."""


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
    progress: Callable[[str], None] | None = None,
    step_progress: Callable[[str, int], Callable[[dict], None] | None] | None = None,
    transfer: bool = False,
    flip_targets: bool | str = False,
    random_effects: bool = False,
    single_prompts: bool = False,
    window_table: int = 0,
    drift: bool = False,
    fit_drift: bool = False,
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
        ("window_table", window_table, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    if flip_targets is True or flip_targets is False:
        flip_targets = "all" if flip_targets else None
    from jaxconv.estimate.collective import FLIP_TARGET_KS

    if flip_targets is not None and flip_targets not in FLIP_TARGET_KS:
        raise ValueError(f"flip_targets must be True, False or one of {list(FLIP_TARGET_KS)}, got {flip_targets!r}")
    if train not in TRAIN:
        raise ValueError(f"train must be one of {list(TRAIN)}, got {train!r}")
    if collective and not policy.startswith("softmax") and policy != "auto":
        raise ValueError(f"--collective needs a softmax policy (or auto), got {policy!r}")
    if fit_drift and not (drift and collective):
        raise ValueError("fit_drift needs drift=True and collective=True (the collective fit fits the drift's sd)")
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    say = progress or (lambda text: None)
    bar = step_progress or (lambda label, total: None)
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
            "flip_targets": flip_targets,
            "random_effects": random_effects,
            "drift": drift,
            "fit_drift": fit_drift,
            "single_prompts": single_prompts,
            "window_table": window_table,
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
            check = None
            if policy == "auto" and replicas:
                key, sub = jax.random.split(key)
                check = _outcome_check(data, [log for log in in_group if log.meta.kind in TRAIN[train]], replicas, sub)
                say(f"{label}: held-out log-likelihood and collective outcomes of each softmax family")
            fitted = fit_choices(data, policy, bootstrap=bootstrap, folds=folds, seed=seed, held_out_outcomes=check)
            group = fitted.report | {"train": train}
            fits = {"choice_only": (fitted.raw, None)}  # fit -> (raw estimate, shared drift of its runs)
            first_sd = 0.0
            if random_effects:
                say(f"{label}: per-run random first-move bias")
                group["random_effects"] = _random_effects(fitted, data, folds, seed)
                first_sd = group["random_effects"]["sd"] if group["random_effects"].get("selected") else 0.0
            kept_drift = collective_drift = None
            if drift:
                say(f"{label}: shared drift of the choices")
                group["drift"] = _drift(fitted, data, folds, seed)
                kept_drift, collective_drift = _drifts(group["drift"], fit_drift)
                fits["choice_only"] = (fitted.raw, kept_drift)
            if collective:
                options = (collective_steps, weight, flip_targets, first_sd, draws, seed, collective_drift, fit_drift)
                fit_report, fit = _collective(fitted, data, in_group, key, options, say, bar, label, train)
                group["collective_fit"] = fit_report
                if fit is not None:
                    fits["collective"] = fit
            if replicas:
                group["prediction"] = {}
                for which, (raw, shocks) in fits.items():
                    key, sub = jax.random.split(key)
                    prefix = f"{label} {which}"
                    report = lambda t, p=prefix: say(f"{p}: {t}")  # noqa: E731
                    group["prediction"][which] = _predict(
                        fitted, raw, data, in_group, replicas, draws, sub, seed, report, first_sd=first_sd, drift=shocks
                    )
                if transfer:
                    group["transfer"] = {}
                    for (other_set, other_memory), other_files in name_groups(tidy).items():
                        if other_set == name_set or other_memory != memory:
                            continue
                        other_names = tuple(tidy.names[other_files[0]])
                        other_logs = [log for log in logs if log.name in {tidy.files[f] for f in other_files}]
                        entry = {}
                        for which, (raw, shocks) in fits.items():
                            key, sub = jax.random.split(key)
                            prefix = f"{label} {which} -> {','.join(other_names)}"
                            report = lambda t, p=prefix: say(f"{p}: {t}")  # noqa: E731
                            entry[which] = _predict(
                                fitted, raw, data, other_logs, replicas, draws, sub, seed, report, other_names,
                                first_sd, shocks,
                            )  # fmt: skip
                        group["transfer"][",".join(other_names)] = entry
                if window_table:
                    key, sub = jax.random.split(key)
                    say(f"{label}: window table of depth {window_table}")
                    group["window_table"] = window_table_reference(data, in_group, window_table, replicas, sub)
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


CHECK_REPLICAS = 500
"""Simulated replicas per fold and N of the held-out collective check of ``policy="auto"`` (at most ``replicas``)."""


def _outcome_check(data, logs, replicas, key):
    """The held-out collective check that ``policy="auto"`` applies to each softmax family
    (:func:`jaxconv.estimate.predict.held_out_outcomes` on the baseline runs among ``logs``), as a callable of the
    family's per-fold policies and the runs' folds; each call draws new keys."""
    import jax

    from jaxconv.estimate.predict import held_out_outcomes

    keys = iter(jax.random.split(key, 64))

    def check(policies, fold):
        return held_out_outcomes(policies, fold, data, logs, min(replicas, CHECK_REPLICAS), next(keys))

    return check


def _random_effects(fitted, data, folds, seed) -> dict:
    """The per-run random first-move bias of the choice fit (:mod:`jaxconv.estimate.random_effects`), or why not."""
    from jaxconv.estimate.random_effects import first_move_effect

    if fitted.family is None or not fitted.family.name.startswith("softmax"):
        return {"fitted": False, "reason": "random effects need a softmax family"}
    try:
        return {"fitted": True} | first_move_effect(fitted.policy, data, folds=min(folds, 5), seed=seed)
    except ValueError as error:
        return {"fitted": False, "reason": str(error)}


def _drift(fitted, data, folds, seed) -> dict:
    """The shared drift of the choice fit's choices (:mod:`jaxconv.estimate.drift`), or why not."""
    from jaxconv.estimate.drift import shared_drift

    try:
        return {"fitted": True} | shared_drift(fitted.policy, data, folds=min(folds, 5), seed=seed)
    except ValueError as error:
        return {"fitted": False, "reason": str(error)}


def _drifts(report: dict, fit: bool):
    """(the kept drift, the collective fit's drift) of a group's drift ``report``, each a Drift or None. With
    ``fit``, the collective fit starts from the kept drift, or else from the block length of the largest held-out
    gain with its sd, and fits the sd; without, it holds the kept drift."""
    from jaxconv.games.memory import Drift

    if not report.get("fitted"):
        return None, None
    kept = Drift(report["sd"], report["rounds"]) if report["selected"] else None
    if not fit or kept is not None:
        return kept, kept
    best = report["best_rounds"]
    return None, Drift(report["by_rounds"][best]["sd"], best)


def _collective(fitted, data, logs, key, options, say, bar, label, train):
    """The collective fit of one group: (report, (raw estimate, fitted drift or None), or None with the reason in
    the report). ``options``: (Adam steps, weight, P(flip) targets or not, sd of the random first-move bias,
    parameter draws, seed, the shared drift or None, whether its sd is fitted too); the outcomes fitted are those of
    the prediction over the same draws (:func:`parameter_deviations`)."""
    import jax
    import jax.numpy as jnp

    steps, weight, flips, first_sd, draws, seed, drift, fit_drift = options
    drift_sd = None if drift is None else round(float(drift.sd), 4)

    from jaxconv.estimate.collective import fit_collective, flip_targets_of, targets_of

    if fitted.family is None or not fitted.family.name.startswith("softmax"):
        return {"fitted": False, "reason": "the collective fit needs a softmax family"}, None
    training = [log for log in logs if log.meta.kind in TRAIN[train]]
    targets = targets_of(training, data.names)
    if not targets:
        reason = "no baseline file with at least 2 runs among the training runs: no collective target"
        return {"fitted": False, "reason": reason}, None
    if flips:
        targets += flip_targets_of(training, data.names, data.memory, at=flips)
    deviations, source = parameter_deviations(fitted, data, draws, seed)
    say(f"{label}: collective fit, {len(targets)} target group(s), {steps} steps, outcomes over the {source}")
    result = fit_collective(
        fitted.family,
        data,
        fitted.raw,
        targets,
        key,
        steps=steps,
        weight=weight,
        first_sd=first_sd,
        deviations=jax.tree.map(lambda *rows: jnp.stack(rows), *deviations),
        progress=bar(label, steps),
        drift=drift,
        fit_drift=fit_drift and drift is not None,
    )
    parameters = {k: np.asarray(v).round(4).tolist() for k, v in fitted.family.parameters(result.policy).items()}
    report = {
        "fitted": True,
        "family": fitted.family.name,
        "outcomes_of": source,
        "parameters": parameters,
        "log_likelihood_per_choice": {
            "choice_only": round(result.log_likelihood_choice_only, 5),
            "collective": round(result.log_likelihood, 5),
        },
        "targets": result.targets,
        "first_step": result.trace[0],
        "last_step": result.trace[-1],
    }
    if result.log_likelihood_drift is not None:
        report["drift"] = {"sd": round(float(result.drift.sd), 4), "rounds": result.drift.rounds, "start_sd": drift_sd}
        report["log_likelihood_per_choice"]["collective_with_drift"] = round(result.log_likelihood_drift, 5)
    return report, (result.raw, result.drift)


def _predict(fitted, raw, data, logs, replicas, draws, key, seed, say, names=None, first_sd=0.0, drift=None):
    """Predictions of the fitted family at ``raw``, integrated over the ``draws`` parameter draws ``raw`` +
    :func:`parameter_deviations`; with the targets. ``first_sd`` > 0: each draw is a mixture of ``RUN_TYPES`` draws
    of the per-run random first-move bias; ``drift``: every simulated run has these shared shocks."""
    import jax

    from jaxconv.estimate.predict import compare, targets_met, targets_summary

    family = fitted.family
    deviations, source = parameter_deviations(fitted, data, draws, seed)
    policies = [family.policy(jax.tree.map(lambda r, d: r + d, raw, deviation)) for deviation in deviations]
    names = data.names if names is None else tuple(names)
    if names != tuple(data.names):
        policies = [retarget(p, data.names, names) for p in policies]
        new = sorted(set(names) - set(data.names))
        source += f"; per-name biases carried over for the names in both sets, 0 for {new}"
    if first_sd > 0:
        from jaxconv.estimate.random_effects import run_policies

        types = max(min(RUN_TYPES, replicas // len(policies)), 1)
        keys = jax.random.split(jax.random.fold_in(key, 1), len(policies))
        policies = [run_policies(p, first_sd, k, types) for p, k in zip(policies, keys, strict=True)]
        source += f"; per-run random first-move bias, sd {first_sd:.3g} ({types} draws per parameter draw)"
    if drift is not None:
        source += f"; shared drift, sd {float(drift.sd):.3g} per name, redrawn every {drift.rounds} rounds"
    prediction = compare(policies, logs, names, data.memory, data.payoffs, replicas, key, progress=say, drift=drift)
    prediction["parameter_draws"] = source
    prediction["targets"] = targets_met(prediction)
    prediction["targets_summary"] = targets_summary(prediction["targets"])
    return prediction


def parameter_deviations(fitted, data, draws: int, seed: int) -> tuple[list[dict], str]:
    """The ``draws`` raw offsets that predictions integrate over, the first zero (the estimate itself), and where
    they come from: the bootstrap resamples minus the choice-only estimate when there are any, else draws of the
    Laplace approximation at the choice-only estimate minus it. A collective estimate borrows the same offsets
    (it is not a maximum of the choice likelihood, so it has no curvature of its own to use)."""
    import jax

    from jaxconv.estimate.fit import laplace_draws

    zero = jax.tree.map(lambda x: x * 0, fitted.raw)
    if draws <= 1:
        return [zero], "point estimate"
    if fitted.bootstrap_raw:
        others = fitted.bootstrap_raw[: draws - 1]
        source = f"estimate and {len(others)} bootstrap resamples"
    else:
        others = laplace_draws(fitted.family, data, fitted.raw, draws, seed)[1:]
        source = f"estimate and {draws - 1} Laplace draws"
    return [zero, *(jax.tree.map(lambda r, e: r - e, r, fitted.raw) for r in others)], source


MAX_TABLE = 10**6
"""Largest window table (entries, (W + 1)^(2d) W) simulated as the model-free reference."""


def window_table_reference(data, logs, depth: int, replicas: int, key) -> dict:
    """The model-free reference of ``fit_path(window_table=depth)``: the lookup table of depth ``depth`` (smoothing 1,
    as the held-out baseline) of the choices ``data`` (a ChoiceData), simulated on the baseline files among ``logs``
    (``replicas`` per file), with the targets; ``simulated`` False with the ``reason`` when the depth exceeds H or
    the table would exceed ``MAX_TABLE`` entries."""
    from jaxconv.estimate.fit import lookup_table
    from jaxconv.estimate.predict import compare, targets_met

    entries = (data.n_names + 1) ** (2 * depth) * data.n_names
    if depth > data.memory or entries > MAX_TABLE:
        reason = f"depth {depth} exceeds H={data.memory}" if depth > data.memory else f"{entries:.3g} entries"
        return {"depth": depth, "simulated": False, "reason": reason + f" (at most H and {MAX_TABLE:g} entries)"}
    table = lookup_table(data, depth)
    baseline = [log for log in logs if log.meta.kind == "game"]
    prediction = compare(table, baseline, data.names, data.memory, data.payoffs, replicas, key)
    return {
        "depth": depth,
        "smoothing": 1.0,
        "simulated": True,
        "baseline": prediction["baseline"],
        "not_predicted": prediction["not_predicted"],
        "targets": targets_met(prediction),
    }


def retarget(policy, fitted_names, names):
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


__all__ = ["DEFAULTS", "TRAIN", "fit_path", "retarget"]
