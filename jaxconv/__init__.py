"""jaxconv: dynamics of social conventions as JAX arrays."""

from jaxconv import choosers, exact, meanfield, relax, topology
from jaxconv.engine import Result, ensemble, simulate, simulate_until_done, sweep
from jaxconv.games.memory import MemoryGame, MemoryState, best_response_game
from jaxconv.games.naming import NamingGame, NamingState
from jaxconv.policies import BestResponse, LookupTable, SoftmaxSurrogate, Uniform
from jaxconv.schedules import RandomMatching, RandomPairs

__all__ = [
    "BestResponse",
    "LookupTable",
    "MemoryGame",
    "MemoryState",
    "NamingGame",
    "NamingState",
    "RandomMatching",
    "RandomPairs",
    "Result",
    "SoftmaxSurrogate",
    "Uniform",
    "best_response_game",
    "choosers",
    "exact",
    "meanfield",
    "relax",
    "ensemble",
    "simulate",
    "simulate_until_done",
    "sweep",
    "topology",
]
