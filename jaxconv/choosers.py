"""How a choice is made: the seam between a game's rule and the way it is evaluated.

A game's rule says *what* is chosen (the speaker's word, whether two inventories collapse, each agent's name) and
what follows from the choice. A ``Chooser`` says *how* the choice is made from the probabilities of the options
and a few uniforms in [0, 1), of which it declares how many it needs:

==========================  ==========================  ===========================================================
chooser                     a choice is                 derivatives of an expectation
==========================  ==========================  ===========================================================
``Sample()``                an index (int32)            none (the simulator)
``ScoreFunction()``         an index, as ``Sample``     unbiased: its log-probability carries the gradient
``GumbelSoftmax(t)``        weights over the options    biased, pathwise: straight-through (hard forward, soft
                                                        backward) by default, fully relaxed with
                                                        ``straight_through=False``; bias vanishes as t -> 0
``Expected()``              the probabilities           pathwise through the expected (mean-field-like) dynamics
==========================  ==========================  ===========================================================

A choice is a ``Choice(value, log_prob, probabilities)``. ``value`` is in one of two representations, declared by
the chooser's ``hard`` flag: an int32 index of the chosen option (the game's state then holds names as integers)
or a ``(W,)`` weight vector on the simplex (the state holds names as weight rows, one-hot when the choice is hard).
A Bernoulli choice (``coin``) is a bool or a weight in [0, 1]. ``log_prob`` is the log-probability of the chosen
option; only ``ScoreFunction`` lets gradients flow through it, so that one formula (``jaxconv.relax.surrogate``)
turns any chooser's run into its gradient estimate.

``mix``, ``agree`` and ``as_weights`` let a rule be written once for both representations.
"""

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxconv.policies import sample


class Choice(NamedTuple):
    """A choice: ``value`` int32 index or ``(W,)`` weights (bool or float weight of "yes" for a coin), the float32
    ``log_prob`` of the option chosen (0 for expected choices) and the ``(W,)`` ``probabilities`` it was made from
    (a coin: ``(p, 1 - p)``, "yes" first, as drawn by ``u < p``)."""

    value: jax.Array
    log_prob: jax.Array
    probabilities: jax.Array | None


class Chooser(eqx.Module):
    """Turns the probabilities of W options into a choice. ``hard``: values are indices (and coins bools)."""

    hard: ClassVar[bool]

    @abc.abstractmethod
    def uniforms(self, n_options: int) -> int:
        """Uniforms in [0, 1) one choice among ``n_options`` needs (a coin is a choice between 2)."""

    @abc.abstractmethod
    def choose(self, probabilities: jax.Array, u: jax.Array) -> Choice:
        """A choice among the ``(W,)`` options from ``(uniforms(W),)`` uniforms."""

    @abc.abstractmethod
    def coin(self, probability: jax.Array, u: jax.Array) -> Choice:
        """A Bernoulli choice: "yes" with ``probability``, from ``(uniforms(2),)`` uniforms."""


class Sample(Chooser):
    """Draw by the inverse CDF of one uniform: the simulator's choice."""

    hard: ClassVar[bool] = True

    def uniforms(self, n_options):
        return 1

    def choose(self, probabilities, u):
        index = sample(probabilities, u[0])
        return Choice(index, jax.lax.stop_gradient(jnp.log(probabilities[index])), probabilities)

    def coin(self, probability, u):
        yes = u[0] < probability
        chosen = jnp.where(yes, probability, 1.0 - probability)
        return Choice(yes, jax.lax.stop_gradient(jnp.log(chosen)), _coin_probabilities(probability))


class ScoreFunction(Sample):
    """``Sample``'s choices, whose log-probabilities keep their gradient: the score-function (REINFORCE)
    estimator, unbiased, used with a baseline (``jaxconv.relax.surrogate``)."""

    def choose(self, probabilities, u):
        index = sample(probabilities, u[0])
        return Choice(index, jnp.log(probabilities[index]), probabilities)

    def coin(self, probability, u):
        yes = u[0] < probability
        return Choice(yes, jnp.log(jnp.where(yes, probability, 1.0 - probability)), _coin_probabilities(probability))


class GumbelSoftmax(Chooser):
    """The Gumbel-max trick relaxed at ``temperature`` (Jang et al. 2017; Maddison et al. 2017): weights
    ``softmax((log p + g) / temperature)`` with Gumbel noise g. Straight-through (default): the forward value is
    the exact one-hot sample ``argmax(log p + g)``, the gradient that of the soft weights."""

    hard: ClassVar[bool] = False
    temperature: jax.Array
    straight_through: bool = eqx.field(static=True)

    def __init__(self, temperature: float = 1.0, straight_through: bool = True):
        if not 0.0 < float(temperature) < float("inf"):
            raise ValueError(f"temperature must be > 0 and finite, got {temperature}")
        self.temperature = jnp.asarray(temperature, jnp.float32)
        self.straight_through = straight_through

    def uniforms(self, n_options):
        return n_options

    def choose(self, probabilities, u):
        perturbed = _log(probabilities) - jnp.log(-jnp.log(u))  # Gumbel noise from uniforms
        soft = jax.nn.softmax(perturbed / self.temperature)
        hard = jax.nn.one_hot(jnp.argmax(perturbed), probabilities.shape[0], dtype=soft.dtype)
        value = self._straighten(hard, soft)
        return Choice(value, jax.lax.stop_gradient(jnp.log(jnp.sum(hard * probabilities))), probabilities)

    def coin(self, probability, u):
        logit = _log(probability) - _log(1.0 - probability)
        perturbed = logit + jnp.log(u[0]) - jnp.log1p(-u[0])  # logistic noise: the binary case of Gumbel-max
        soft = jax.nn.sigmoid(perturbed / self.temperature)
        hard = (perturbed > 0).astype(soft.dtype)
        value = self._straighten(hard, soft)
        chosen = jnp.where(hard > 0, probability, 1.0 - probability)
        return Choice(value, jax.lax.stop_gradient(jnp.log(chosen)), _coin_probabilities(probability))

    def _straighten(self, hard, soft):
        # hard + (soft - soft) is exactly one-hot in the forward pass; (hard + soft) - soft is not in float32
        return hard + (soft - jax.lax.stop_gradient(soft)) if self.straight_through else soft


class Expected(Chooser):
    """No sampling: the value of a choice is its probabilities (a coin: its probability). The dynamics become
    the deterministic expected dynamics of the representation, as in mean field; needs no uniforms."""

    hard: ClassVar[bool] = False

    def uniforms(self, n_options):
        return 0

    def choose(self, probabilities, u):
        return Choice(probabilities, jnp.float32(0.0), probabilities)

    def coin(self, probability, u):
        probability = jnp.asarray(probability, jnp.float32)
        return Choice(probability, jnp.float32(0.0), _coin_probabilities(probability))


def _coin_probabilities(probability: jax.Array) -> jax.Array:
    return jnp.stack([probability, 1.0 - probability])


def _log(probabilities: jax.Array) -> jax.Array:
    """log whose gradient at probability 0 is 0, not NaN (the log is -inf there: the option is never chosen)."""
    possible = probabilities > 0
    return jnp.where(possible, jnp.log(jnp.where(possible, probabilities, 1.0)), -jnp.inf)


# ----- writing a rule once for both representations ----------------------------------------------------------------
def mix(weight: jax.Array, if_true: jax.Array, if_false: jax.Array) -> jax.Array:
    """``if_true`` where ``weight`` else ``if_false``: a select for a bool (hard) weight, the convex combination
    ``weight * if_true + (1 - weight) * if_false`` for a float one. ``weight`` broadcasts over trailing axes."""
    weight = jnp.asarray(weight)
    extra = max(jnp.ndim(if_true), jnp.ndim(if_false)) - weight.ndim
    weight = weight.reshape(weight.shape + (1,) * extra)
    if weight.dtype == jnp.bool_:
        return jnp.where(weight, if_true, if_false)
    return weight * if_true + (1.0 - weight) * if_false


def agree(first: jax.Array, second: jax.Array) -> jax.Array:
    """Whether two choices are the same name: ``first == second`` for indices, the probability that they agree,
    ``sum(first * second)``, for weights."""
    if jnp.issubdtype(first.dtype, jnp.integer):
        return first == second
    return jnp.sum(first * second, axis=-1)


def as_weights(names: jax.Array, n_names: int) -> jax.Array:
    """Names as weight rows: one-hot of indices (-1, an empty slot, gives a zero row); weights pass unchanged."""
    if jnp.issubdtype(names.dtype, jnp.integer):
        return jax.nn.one_hot(names, n_names)
    return names


def name_value(name: jax.Array, n_names: int, hard: bool) -> jax.Array:
    """A fixed name (e.g. the committed one) in a chooser's representation."""
    return name if hard else jax.nn.one_hot(name, n_names)


CHOOSERS = {"sample": Sample, "score-function": ScoreFunction, "gumbel-softmax": GumbelSoftmax, "expected": Expected}

__all__ = [
    "CHOOSERS",
    "Choice",
    "Chooser",
    "Expected",
    "GumbelSoftmax",
    "Sample",
    "ScoreFunction",
    "agree",
    "as_weights",
    "mix",
    "name_value",
]
