"""File names parsed into metadata without depending on the model name."""

import pytest

from jaxconv.data.logs import KINDS, parse_filename
from jaxconv.data.synthetic import game_file_name

MODELS = ["claude", "llama31_70b", "my_model_v2-7b", "Meta-Llama-3-70B-Instruct", "meta_llama2"]


@pytest.mark.parametrize("model", MODELS)
def test_baseline(model):
    meta = parse_filename(f"{model}_converged_baseline_Q_M_X_Y_F_J_P_R_C_D_-50_100_5mem_complete_24ps_0.5tmp.pkl")
    assert (meta.model, meta.kind) == (model, "game")
    assert meta.names == ["Q", "M", "X", "Y", "F", "J", "P", "R", "C", "D"]
    assert (meta.payoffs, meta.memory, meta.n_agents) == ((-50, 100), 5, 24)
    assert (meta.network, meta.temperature, meta.committed, meta.incumbent) == ("complete", 0.5, None, None)


@pytest.mark.parametrize("model", MODELS)
def test_committed_minority(model):
    meta = parse_filename(f"data/{model}_swap_0_10cmtd_M_Q_-50_100_5mem_complete_48ps_0.5tmp.pkl")
    assert (meta.model, meta.kind, meta.variant, meta.committed) == (model, "committed", "swap", 10)
    assert (meta.names, meta.incumbent, meta.pushed, meta.n_agents) == (["M", "Q"], "M", "Q", 48)
    assert meta.file == f"data/{model}_swap_0_10cmtd_M_Q_-50_100_5mem_complete_48ps_0.5tmp.pkl"


def test_evolved_and_multi_letter_names():
    meta = parse_filename("llama31_70b_evolved_from_0_J_F_-50_100_5mem_complete_24ps_1000ints_0.5tmp.pkl")
    assert (meta.kind, meta.committed, meta.incumbent, meta.pushed) == ("evolved", 0, "J", "F")
    assert meta.max_interactions == 1000
    meta = parse_filename("x_converged_baseline_female_male_-50_100_5mem_complete_24ps_0.5tmp.pkl")
    assert meta.names == ["female", "male"]


def test_other_payoffs_networks_and_schedules():
    meta = parse_filename("ns_m_inject_0_3cmtd_A_B_-1_2_3mem_random_regular_100ps_0tmp.pkl")
    assert (meta.stochastic, meta.model, meta.variant, meta.committed) == (False, "m", "inject", 3)
    assert (meta.payoffs, meta.memory, meta.network, meta.n_agents, meta.temperature) == (
        (-1, 2),
        3,
        "random_regular",
        100,
        0.0,
    )


def test_random_initial_has_no_incumbent():
    meta = parse_filename("m_swap_random_2cmtd_Q_M_-50_100_5mem_complete_24ps_0.5tmp.pkl")
    assert (meta.initial, meta.committed, meta.incumbent, meta.pushed) == ("random", 2, None, None)


def test_single_prompt_tests_and_meta():
    meta = parse_filename("claude_no_memory_bias_test_QMXYFJPRCD_0mem.pkl")
    assert (meta.kind, meta.names, meta.memory) == ("no_memory_bias_test", list("QMXYFJPRCD"), 0)
    meta = parse_filename("llama31_bias_test_MQ_QM.pkl")
    assert (meta.kind, meta.own_memory, meta.partner_memory, meta.memory) == (
        "bias_test",
        ["M", "Q"],
        ["Q", "M"],
        2,
    )
    assert meta.names is None  # the file name shows the memory, not the options offered
    assert parse_filename("claude_meta_prompting_final.pkl").kind == "meta"
    meta = parse_filename("m_bias_test_female_male.pkl")
    assert (meta.own_memory, meta.partner_memory, meta.memory) == (["female"], ["male"], 1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("results.pkl", {"kind": "unknown", "model": None, "memory": None}),
        (
            "myrun_Q_M_-50_100_5mem_complete_24ps.pkl",
            {"kind": "unknown", "payoffs": (-50, 100), "n_agents": 24},
        ),
        ("m_converged_baseline_garbled.pkl", {"kind": "game", "model": "m", "names": None}),
        ("m_swap_0_Q_M.pkl", {"kind": "committed", "committed": None, "names": None}),
    ],
)
def test_unknown_patterns_give_what_can_be_parsed(name, expected):
    meta = parse_filename(name)
    assert {key: getattr(meta, key) for key in expected} == expected
    assert meta.kind in KINDS


@pytest.mark.parametrize("kind", ["game", "committed", "evolved"])
def test_synthetic_names_round_trip(kind):
    name = game_file_name("some_model", kind, ["A", "B", "C"], payoffs=(-5, 7), memory=4, n_agents=12, committed=2)
    meta = parse_filename(name)
    assert (meta.model, meta.kind, meta.names, meta.payoffs, meta.memory, meta.n_agents) == (
        "some_model",
        kind,
        ["A", "B", "C"],
        (-5, 7),
        4,
        12,
    )
    assert meta.committed == {"game": None, "committed": 2, "evolved": 0}[kind]


def test_metadata_is_json_ready():
    out = parse_filename("claude_swap_0_5cmtd_Q_M_-50_100_5mem_complete_24ps_0.5tmp.pkl").to_dict()
    assert out["payoffs"] == [-50, 100] and out["kind"] == "committed"
