"""jaxconv: dynamics of social conventions as JAX arrays."""

from jaxconv.engine import Result, ensemble, simulate, simulate_until_done, sweep
from jaxconv.games.naming import NamingGame, NamingState
from jaxconv.schedules import RandomMatching, RandomPairs

__all__ = [
    "NamingGame",
    "NamingState",
    "RandomMatching",
    "RandomPairs",
    "Result",
    "ensemble",
    "simulate",
    "simulate_until_done",
    "sweep",
]
