"""Fit policies to LLM naming-game logs and predict the collective outcomes: the whole pipeline of ``jaxconv fit``.

:func:`fit_path` groups the game files of a path (baseline, committed-minority and ``evolved_from`` runs) by model
(from the file names; nothing depends on which models; ``llama31_...`` and ``llama31_70b_...`` are one model) and,
within a model, by their set of names and memory H (``names=["Q", "M"]`` keeps the files with exactly those names).
For each group:

- the policy fitted by maximum likelihood with bootstrap uncertainty, train and held-out log-likelihood per choice
  of every policy and baseline (:mod:`jaxconv.estimate.fit`); ``policy="auto"`` picks the softmax family (optional
  first-move bias, unanimity bonus, lapse) of the best held-out log-likelihood;
- with ``collective=True``, the collective fit (:mod:`jaxconv.estimate.collective`: choice likelihood plus simulated
  stop times and per-name winner shares of the baseline runs; with ``flip_targets=True`` also P(flip) of the
  committed-minority runs at the k that decide each critical mass);
- with ``replicas`` > 0, predicted vs observed winners, stop times and critical masses
  (:mod:`jaxconv.estimate.predict`) of each fit, integrated over ``draws`` parameter draws (bootstrap resamples, or
  the Laplace approximation), each with the targets of issue [collective-fit] (``targets``: stop-time mean within
  15%, winner shares inside the observed 95% binomial interval, critical mass within one agent) and the conditions
  that could not be predicted with the reason (``not_predicted``);
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
    flip_targets: bool = False,
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
                    fitted, data, in_group, key, collective_steps, weight, say, bar, label, train, flip_targets
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


def _collective(fitted, data, logs, key, steps, weight, say, bar, label, train, flips):
    """The collective fit of one group: (report, raw estimate or None with the reason in the report)."""

    from jaxconv.estimate.collective import fit_collective, flip_targets_of, targets_of

    if fitted.family is None or not fitted.family.name.startswith("softmax"):
        return {"fitted": False, "reason": "the collective fit needs a softmax family"}, None
    training = [log for log in logs if log.meta.kind in TRAIN[train]]
    targets = targets_of(training, data.names)
    if not targets:
        reason = "no baseline file with at least 2 runs among the training runs: no collective target"
        return {"fitted": False, "reason": reason}, None
    if flips:
        targets += flip_targets_of(training, data.names, data.memory)
    say(f"{label}: collective fit, {len(targets)} target group(s), {steps} steps")
    result = fit_collective(
        fitted.family, data, fitted.raw, targets, key, steps=steps, weight=weight, progress=bar(label, steps)
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
        policies = [retarget(p, data.names, names) for p in policies]
        new = sorted(set(names) - set(data.names))
        source += f"; per-name biases carried over for the names in both sets, 0 for {new}"
    prediction = compare(policies, logs, names, data.memory, data.payoffs, replicas, key, progress=say)
    prediction["parameter_draws"] = source
    prediction["targets"] = targets_met(prediction)
    return prediction


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
