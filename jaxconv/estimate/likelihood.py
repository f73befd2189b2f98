"""Log-likelihood of observed LLM choices under a memory-game policy.

Every game choice of a non-committed agent is a draw from ``policy.logits(memory_view(...))`` of the memory the
agent saw (its last H rounds, rebuilt by :func:`jaxconv.data.tidy_dataset`). The choices of a log share few
distinct memories (a converged population sees the same window again and again), so :class:`ChoiceData` stores the
distinct memory windows once (``states``) and each choice as an index into them; the policy is evaluated once per
distinct window (vmapped, jitted once per data shape: parameters are arrays) and each choice reads its row.

Runs are the unit of resampling: ``run_weights`` ``(n_runs,)`` weight every choice of a run (0 leaves the run
out, 2 counts it twice), which gives held-out folds and bootstrap resamples without copying data.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.data.tidy import TidyData
from jaxconv.policies import Policy, memory_view

GAME_KINDS = ("game", "committed", "evolved")


class MemoryStates(eqx.Module):
    """``S`` distinct memory windows, most recent first: ``own``, ``partner`` ``(S, H) int32`` (-1 = empty),
    ``payoff`` ``(S, H) float32``, ``fill`` ``(S,) int32`` remembered rounds."""

    own: jax.Array
    partner: jax.Array
    payoff: jax.Array
    fill: jax.Array


@dataclass(frozen=True)
class ChoiceData:
    """The game choices of non-committed agents in files sharing one list of names and one memory size H.

    ``names``: the W names, in the order of the policy's name index; ``memory``: H; ``states``: the distinct
    windows; per choice (n,): ``state`` (index into states), ``choice`` (name index), ``run`` (index into the
    runs), ``round`` (the population round of the choice in its run: interaction index // N, with N the agents of
    its file; -1 for a single-prompt answer); per run (n_runs,): ``run_file`` (index into ``files``) and
    ``run_key`` (the run's key in its file); ``files``: the file names; ``payoffs``: (failure, success) of the
    files."""

    names: tuple[str, ...]
    memory: int
    states: MemoryStates
    state: np.ndarray
    choice: np.ndarray
    run: np.ndarray
    round: np.ndarray
    run_file: np.ndarray
    run_key: np.ndarray
    files: tuple[str, ...]
    payoffs: tuple[int, int]

    @property
    def n_names(self) -> int:
        return len(self.names)

    @property
    def n_choices(self) -> int:
        return len(self.choice)

    @property
    def n_runs(self) -> int:
        return len(self.run_file)


def name_groups(tidy: TidyData) -> dict[tuple[frozenset, int], list[int]]:
    """Game files of ``tidy`` (indices) grouped by (set of names, H), in file order. A file's names are its file
    name's names plus any other name its agents answered."""
    groups: dict[tuple[frozenset, int], list[int]] = {}
    games = np.unique(tidy.choices["file"][~tidy.choices["single_prompt"]])
    for index in games.tolist():
        groups.setdefault((frozenset(tidy.names[index]), tidy.memory[index]), []).append(index)
    return groups


def choice_data(
    tidy: TidyData, names: list[str] | tuple[str, ...], memory: int | None = None, single_prompts: bool = False
) -> ChoiceData:
    """The choices of the game files of ``tidy`` whose names are exactly the set ``names`` (and whose H is
    ``memory``, when given), with name indices in the order of ``names``. With ``single_prompts``, the answers of
    the single-prompt files (``bias_test``, ``no_memory_bias_test``) whose names are all among ``names`` and whose
    memory holds at most H rounds join them, each file as one run (extra evidence on the same policy).

    Raises ValueError naming the names when no such file exists, or when the files mix memory sizes or payoffs."""
    names = tuple(names)
    groups = {key: files for key, files in name_groups(tidy).items() if key[0] == frozenset(names)}
    if memory is not None:
        groups = {key: files for key, files in groups.items() if key[1] == memory}
    if len(names) != len(set(names)) or not groups:
        found = sorted({",".join(tidy.names[f]) for files in name_groups(tidy).values() for f in files})
        raise ValueError(f"no game file has exactly the names {','.join(names)!r}; found {found}")
    if len(groups) > 1:
        sizes = sorted(key[1] for key in groups)
        raise ValueError(f"files with names {','.join(names)} have memory sizes H={sizes}: pass memory=")
    ((_, h), files) = next(iter(groups.items()))
    payoffs = {tidy.payoffs[f] for f in files}
    if len(payoffs) != 1:
        raise ValueError(f"files with names {','.join(names)} have different payoffs {sorted(payoffs)}")

    c = tidy.choices
    keep = np.isin(c["file"], files) & ~c["committed"] & ~c["single_prompt"]
    if single_prompts:
        singles = np.unique(c["file"][c["single_prompt"]]).tolist()
        singles = [
            f
            for f in singles
            if set(tidy.names[f]) <= set(names) and c["memory_len"][c["file"] == f].max(initial=0) <= h
        ]
        keep |= np.isin(c["file"], singles) & c["single_prompt"]
        files = sorted(set(files) | set(singles))
    # name index of each file's names in the order of ``names``; -1 (empty memory slot) stays -1
    width = max(len(tidy.names[f]) for f in files)
    recode = np.full((len(tidy.files), width + 1), -1, dtype=np.int64)
    for f in files:
        recode[f, : len(tidy.names[f])] = [names.index(n) for n in tidy.names[f]]
    file = c["file"][keep]
    n_agents = np.zeros(len(tidy.files), np.int64)  # N of each game file: its distinct agents, committed included
    n_agents[files] = [len(np.unique(c["agent"][c["file"] == f])) for f in files]
    population_round = np.where(c["single_prompt"][keep], -1, c["t"][keep] // np.maximum(n_agents[file], 1))

    def recoded(values):
        return recode[file[:, None] if values.ndim == 2 else file, values]

    # the tidy windows are oldest first and right-aligned: reverse to most recent first, keep the last H rounds
    own = recoded(c["memory_own"][keep][:, ::-1][:, :h])
    partner = recoded(c["memory_partner"][keep][:, ::-1][:, :h])
    fill = np.minimum(c["memory_len"][keep], h)
    payoff = np.where(np.arange(h) < fill[:, None], c["memory_payoff"][keep][:, ::-1][:, :h], 0)
    rows = np.concatenate([own, partner, payoff, fill[:, None]], axis=1)
    distinct, state = np.unique(rows, axis=0, return_inverse=True)
    runs, run = np.unique(np.stack([file, c["run"][keep]], axis=1), axis=0, return_inverse=True)
    return ChoiceData(
        names=names,
        memory=h,
        states=MemoryStates(
            own=jnp.asarray(distinct[:, :h], jnp.int32),
            partner=jnp.asarray(distinct[:, h : 2 * h], jnp.int32),
            payoff=jnp.asarray(distinct[:, 2 * h : 3 * h], jnp.float32),
            fill=jnp.asarray(distinct[:, 3 * h], jnp.int32),
        ),
        state=state.ravel().astype(np.int32),
        choice=recoded(c["choice"][keep]).astype(np.int32),
        run=run.ravel().astype(np.int32),
        round=population_round.astype(np.int32),
        run_file=np.searchsorted(files, runs[:, 0]).astype(np.int32),
        run_key=runs[:, 1],
        files=tuple(tidy.files[f] for f in files),
        payoffs=payoffs.pop(),
    )


@eqx.filter_jit
def state_log_probs(policy: Policy, states: MemoryStates, n_names: int) -> jax.Array:
    """``(S, W)`` log-probabilities of the ``W = n_names`` names in each memory window."""

    def one(own, partner, payoff, fill):
        return policy.logits(memory_view(own, partner, payoff, fill, n_names))

    return jax.vmap(one)(states.own, states.partner, states.payoff, states.fill)


def choice_log_probs(policy: Policy, data: ChoiceData) -> jax.Array:
    """``(n_choices,)`` log-probability of each observed choice under ``policy``."""
    log_probs = state_log_probs(policy, data.states, data.n_names)
    return log_probs[jnp.asarray(data.state), jnp.asarray(data.choice)]


def choice_counts(data: ChoiceData, run_weights=None) -> jax.Array:
    """``(S, W)`` weighted number of choices of each name in each memory window: a choice counts its run's
    weight (default 1). Sufficient for the log-likelihood of any policy."""
    weights = np.ones(data.n_runs) if run_weights is None else np.asarray(run_weights)
    counts = np.zeros((len(data.states.fill), data.n_names))
    np.add.at(counts, (data.state, data.choice), weights[data.run])
    return jnp.asarray(counts, jnp.float32)


def log_likelihood(policy: Policy, data: ChoiceData, run_weights=None) -> jax.Array:
    """Mean log-likelihood per choice; with ``run_weights`` ``(n_runs,)`` each choice weighs its run's weight."""
    return mean_log_likelihood(state_log_probs(policy, data.states, data.n_names), choice_counts(data, run_weights))


def mean_log_likelihood(log_probs: jax.Array, counts: jax.Array) -> jax.Array:
    """``sum counts * log_probs / sum counts`` over ``(S, W)`` arrays; names never chosen add nothing (even where
    their probability is 0)."""
    return jnp.sum(jnp.where(counts > 0, counts * log_probs, 0.0)) / jnp.sum(counts)
