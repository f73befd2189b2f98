"""jaxconv: dynamics of social conventions as JAX arrays."""

from importlib import metadata as _metadata

from jaxconv import choosers, exact, meanfield, relax, topology
from jaxconv.engine import Result, ensemble, simulate, simulate_until_done, sweep
from jaxconv.games.memory import Drift, MemoryGame, MemoryState, best_response_game
from jaxconv.games.naming import NamingGame, NamingState
from jaxconv.policies import BestResponse, LookupTable, SoftmaxSurrogate, Uniform
from jaxconv.schedules import RandomMatching, RandomPairs

try:
    __version__ = _metadata.version("jaxconv")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "BestResponse",
    "Drift",
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
