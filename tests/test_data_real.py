"""The counts listed in the README of the published logs (Ashery, Aiello & Baronchelli 2025), reproduced.

Reads ../shared/data/ai-norms beside the repository (or $JAXCONV_AI_NORMS) and skips when it is absent.
"""

import os
from pathlib import Path

import pytest

from jaxconv.data.logs import load_logs
from jaxconv.data.summary import summarize
from jaxconv.data.tidy import tidy_dataset

pytestmark = pytest.mark.data

DATA = Path(
    os.environ.get("JAXCONV_AI_NORMS") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ai-norms"
)
W10 = "Q_M_X_Y_F_J_P_R_C_D"


@pytest.fixture(scope="module")
def logs():
    if not all((DATA / f"{model}_data.zip").is_file() for model in ("claude", "llama31")):
        pytest.skip(f"the published logs are not at {DATA} (set JAXCONV_AI_NORMS to their folder)")
    return load_logs(DATA)


@pytest.fixture(scope="module")
def summary(logs):
    return summarize(logs)


def _file(summary, model: str, middle: str) -> dict:
    """The one file of ``model`` whose name contains ``middle`` ('claude_' or 'llama31_' prefixes)."""
    (match,) = [v for name, v in summary["files"].items() if f"/{model}_" in name and middle in name]
    return match


def _baseline(summary, model, names):
    return _file(summary, model, f"_converged_baseline_{names}_-50_100_5mem_complete_24ps_")


def test_everything_loads_without_skips(logs, summary):
    assert len(logs.files) == 42 + 63
    assert {(s.file, s.reason) for s in logs.skipped} == {
        ("LICENSE", "not a .pkl file"),
        ("README.md", "not a .pkl file"),
    }


def test_winners_w2(summary):
    assert _baseline(summary, "llama31", "Q_M")["winners"] == {"Q": 0, "M": 40}
    assert _baseline(summary, "claude", "Q_M")["winners"] == {"Q": 14, "M": 26}


def test_winners_w10(summary):
    llama = dict(zip("QMXYFJPRCD", [1, 12, 4, 9, 1, 3, 3, 2, 4, 1], strict=True))
    claude = dict(zip("QMXYFJPRCD", [4, 4, 2, 3, 0, 1, 0, 3, 7, 3], strict=True))
    assert _baseline(summary, "llama31", W10)["winners"] == llama
    assert _baseline(summary, "claude", W10)["winners"] == claude
    assert _baseline(summary, "llama31", W10)["n_runs"] == 40 and _baseline(summary, "claude", W10)["n_runs"] == 27


@pytest.mark.parametrize(
    ("model", "names", "mean"),
    [("llama31", W10, 12.9), ("claude", W10, 9.8), ("llama31", "Q_M", 13.3), ("claude", "Q_M", 7.5)],
)
def test_mean_stop_time_in_population_rounds(summary, model, names, mean):
    baseline = _baseline(summary, model, names)
    assert round(baseline["stop_time_rounds_mean"], 1) == mean
    assert baseline["n_converged"] == baseline["n_runs"]


@pytest.mark.parametrize(("model", "p_m"), [("llama31", 0.508), ("claude", 0.502)])
def test_individual_bias_with_empty_memory(summary, model, p_m):
    test = _file(summary, model, "_no_memory_bias_test_QM_0mem")["single_prompt"]
    assert test["test"] == "individual_bias" and test["n"] == 10_000
    assert round(test["p"]["M"], 3) == p_m


@pytest.mark.parametrize(
    ("memory", "kind", "p"),
    [
        ("Q_Q", "win_stay", 0.997),
        ("M_M", "win_stay", 0.990),
        ("Q_M", "lose_shift", 0.951),
        ("M_Q", "lose_shift", 0.995),
    ],
)
def test_llama_single_prompt_tests(summary, memory, kind, p):
    test = _file(summary, "llama31", f"_bias_test_{memory}.pkl")["single_prompt"]
    assert (test["test"], round(test["p_test"], 3)) == (kind, p)


@pytest.mark.parametrize(
    ("model", "incumbent", "pushed", "critical"),
    [
        ("claude", "M", "Q", "5/24"),
        ("claude", "Q", "M", "5/24"),
        ("llama31", "M", "Q", "10/24"),
        ("llama31", "Q", "M", "0/24"),
    ],
)
def test_critical_mass(summary, model, incumbent, pushed, critical):
    (series,) = [
        s
        for s in summary["critical_mass"]
        if (s["model"], s["incumbent"], s["pushed"], s["n_agents"]) == (model, incumbent, pushed, 24)
    ]
    assert series["critical_mass"] == critical and series["all_larger_k_flip"]


def test_tidy_memory_agrees_with_every_stored_history(logs):
    tidy = tidy_dataset(logs)
    assert tidy.mismatches == [] and tidy.skipped == []
    assert tidy.n_agents_checked == 13_920
    assert len(tidy.interactions["t"]) == 249_059
