"""Estimation from LLM logs: likelihood of observed choices under a policy (:mod:`.likelihood`), maximum-likelihood
fits with held-out scores and bootstrap uncertainty (:mod:`.fit`), per-run random first-move biases
(:mod:`.random_effects`), fits to the collective outcomes (:mod:`.collective`), predicted collective outcomes
(:mod:`.predict`), and the whole pipeline of ``jaxconv fit`` (:mod:`.pipeline`)."""

from jaxconv.estimate.fit import FAMILIES, Family, Fits, GroupFit, family, fit_choices, fit_runs, lookup_table
from jaxconv.estimate.likelihood import (
    ChoiceData,
    MemoryStates,
    choice_counts,
    choice_data,
    choice_log_probs,
    log_likelihood,
    name_groups,
    state_log_probs,
)
from jaxconv.estimate.pipeline import fit_path
from jaxconv.estimate.predict import compare, predict_baseline, predict_tipping

__all__ = [
    "FAMILIES",
    "ChoiceData",
    "Family",
    "Fits",
    "GroupFit",
    "MemoryStates",
    "choice_counts",
    "choice_data",
    "choice_log_probs",
    "compare",
    "family",
    "fit_choices",
    "fit_path",
    "fit_runs",
    "lookup_table",
    "log_likelihood",
    "name_groups",
    "predict_baseline",
    "predict_tipping",
    "state_log_probs",
]
