"""What every game shares: the schedule on a graph that draws its pairs, and checks of constructor arguments."""

import equinox as eqx
import jax
import numpy as np

from jaxconv.schedules import Schedule
from jaxconv.topology import Graph


class Game(eqx.Module):
    """A game the engine can run (``jaxconv.engine``): subclasses add ``init``, ``advance``, ``record``,
    ``is_done`` and ``summarize``; the pairs of a step come from ``schedule`` on ``graph``."""

    schedule: Schedule
    graph: Graph

    @property
    def words_per_step(self) -> int:
        """Random uint32 words one step consumes."""
        return self.schedule.words_per_step(self.graph)

    @property
    def interactions_per_step(self) -> int:
        return self.schedule.pairs_per_step(self.graph)


def is_traced(tree) -> bool:
    """Whether any leaf of ``tree`` is a tracer (a game built inside ``jax.grad``/``jit``): its values cannot be
    checked there; they are checked when the same game is built from concrete values."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_int(label: str, value, low: int) -> None:
    """ValueError naming ``value`` unless it is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")


def check_choice(label: str, value, choices) -> None:
    """ValueError naming ``value`` unless it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {label} {value!r}; choose one of {list(choices)}")
