"""How an agent of a memory game chooses a name from its memory.

A policy is an equinox Module whose parameters are arrays (so they can be swept, fitted and differentiated) that
maps a view of an agent's memory to a distribution over the W names, as ``logits(view)`` (log-probabilities, for
likelihoods and gradients) and ``probabilities(view)`` (for drawing). A policy writes its rule once, in the form
natural to it, and inherits the other (``probabilities = exp(logits)`` or ``logits = log(probabilities)``). The
hard simulation draws a name with ``sample(probabilities, u)`` (inverse CDF of one uniform); a relaxed evaluation
can reuse the same function and the same uniforms. ``check(n_names, memory, payoffs)`` validates the parameters
against the game's sizes and payoffs before anything is traced: every parameter finite and in range, and no score
that could overflow float32, so that a valid policy never produces a NaN probability. ``sample`` of an invalid
vector (a NaN, a negative or an infinite weight, or all zero) returns the out-of-range name W, never a name.

A ``MemoryView`` holds an agent's memory as one-hot rows, most recent entry first, so that soft (probability)
rows can be passed instead of one-hot ones without changing a policy.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class MemoryView(NamedTuple):
    """One agent's memory of its last H interactions, most recent first; rows of empty slots are zero.

    ``own``, ``partner``: ``(H, W)`` one-hot own and partner choices; ``payoff``: ``(H,)``; ``filled``: ``(H,)``
    1.0 for a remembered interaction, 0.0 for an empty slot."""

    own: jax.Array
    partner: jax.Array
    payoff: jax.Array
    filled: jax.Array


def memory_view(own: jax.Array, partner: jax.Array, payoff: jax.Array, fill: jax.Array, n_names: int) -> MemoryView:
    """View of one agent's memory arrays: ``own``, ``partner`` ``(H,) int32`` (-1 = empty), ``payoff`` ``(H,)``,
    ``fill`` the number of remembered interactions."""
    filled = jnp.arange(own.shape[0]) < fill
    return MemoryView(
        jax.nn.one_hot(own, n_names), jax.nn.one_hot(partner, n_names), jnp.where(filled, payoff, 0.0), filled * 1.0
    )


def sample(probabilities: jax.Array, u: jax.Array) -> jax.Array:
    """Name drawn from ``(W,)`` probabilities (or any non-negative weights) by the inverse CDF of ``u`` in [0, 1)
    -> int32 scalar.

    A name of probability 0 is never drawn (the clamp only guards against rounding of ``u * total``). The CDF is
    a product with a triangular matrix, which XLA's CPU backend runs faster than a cumulative sum. Weights that
    are not a distribution (a NaN, a negative or infinite weight, or a zero total) give W, which is not a name
    (:data:`INVALID` explains), so they can never pass for a choice."""
    p = probabilities
    n_names = p.shape[0]
    cdf = p @ jnp.triu(jnp.ones((n_names, n_names), p.dtype))
    drawn = jnp.sum(cdf <= u * cdf[-1])
    last_possible = jnp.max(jnp.where(p > 0, jnp.arange(n_names), 0))
    valid = jnp.all(p >= 0) & (cdf[-1] > 0) & (cdf[-1] < jnp.inf)  # False for any NaN
    return jnp.where(valid, jnp.minimum(drawn, last_possible), n_names).astype(jnp.int32)


def tilt(probabilities: jax.Array, shift: jax.Array) -> jax.Array:
    """``(W,)`` probabilities reweighted by ``exp(shift)`` ``(W,)`` and renormalised: ``softmax(logits + shift)``, a
    policy's distribution under a shock ``shift`` on its logits (a name of probability 0 stays at 0)."""
    weights = probabilities * jnp.exp(shift - jnp.max(shift))
    return weights / jnp.sum(weights)


INVALID = "sample returns W (one past the last name) when its weights are not a distribution"
MAX_SCORE = 1e30  # bound on |score| (and |score / temperature|) checked up front: far inside float32


def _finite(label: str, value) -> np.ndarray:
    """``value`` as float64; ValueError naming the first non-finite entry."""
    value = np.asarray(value, np.float64)
    bad = ~np.isfinite(value)
    if bad.any():
        where = np.unravel_index(np.argmax(bad), value.shape)
        shown = value.tolist() if value.size <= 8 else f"{value[where]} at index {tuple(map(int, where))}"
        raise ValueError(f"{label} must be finite, got {shown}")
    return value


def _float32(value):
    """``value`` as float32; a number beyond float32's range becomes inf without a warning (``check`` then refuses
    it with one line naming the parameter)."""
    with np.errstate(over="ignore"):
        return jnp.asarray(value, jnp.float32)


def _payoff_scale(payoffs) -> float:
    return 1.0 if payoffs is None else float(np.max(np.abs(_finite("payoffs", payoffs))))


class Policy(eqx.Module):
    """Maps a ``MemoryView`` to a distribution over the W names. Subclasses define ``logits`` or
    ``probabilities`` (or both, when each has a better form) and inherit the other."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.logits is Policy.logits and cls.probabilities is Policy.probabilities:
            raise TypeError(f"policy {cls.__name__} must define logits(view) or probabilities(view)")

    def logits(self, view: MemoryView) -> jax.Array:
        """``(W,)`` log-probabilities of the names."""
        return jnp.log(self.probabilities(view))

    def probabilities(self, view: MemoryView) -> jax.Array:
        """``(W,)`` probabilities of the names."""
        return jnp.exp(self.logits(view))

    def check(self, n_names: int, memory: int, payoffs=None) -> None:
        """Raise ValueError (one line, naming the value) if the parameters do not fit W names, memory H and the
        game's ``payoffs`` (success, failure), or could make a probability NaN."""


class Uniform(Policy):
    """Every name with probability 1/W, whatever the memory."""

    def probabilities(self, view):
        n_names = view.own.shape[-1]
        return jnp.full(n_names, 1.0 / n_names)


class BestResponse(Policy):
    """Play the name most frequent among the partners' choices in memory; ties uniformly at random.

    Score of name w: count of w among the partner choices, plus, with a ``payoff_weight``, ``payoff_weight`` times
    the sum of the agent's payoffs when it played w. Without ``sharpness`` the rule is exact (uniform over the
    tied maxima); with it, ``softmax(sharpness * score)``, whose limit sharpness -> inf is the exact rule. An
    empty memory scores every name 0, so the choice is uniform. (Leaving a term out when it is None, rather than
    multiplying it by 0, keeps the hard simulation fast.)"""

    payoff_weight: jax.Array | None
    sharpness: jax.Array | None

    def __init__(self, payoff_weight: float | None = None, sharpness: float | None = None):
        self.payoff_weight = None if payoff_weight is None else _float32(payoff_weight)
        self.sharpness = None if sharpness is None else _float32(sharpness)

    def scores(self, view: MemoryView) -> jax.Array:
        """``(W,)`` partner counts, plus the weighted payoffs of the own choices."""
        score = view.partner.sum(axis=0)
        if self.payoff_weight is not None:
            score = score + self.payoff_weight * (view.payoff @ view.own)
        return score

    def probabilities(self, view):
        if self.sharpness is not None:
            return jnp.exp(self.logits(view))
        score = self.scores(view)
        best = (score == score.max()).astype(score.dtype)
        return best / best.sum()

    def logits(self, view):
        if self.sharpness is None:
            return jnp.log(self.probabilities(view))
        return jax.nn.log_softmax(self.sharpness * self.scores(view))

    def check(self, n_names, memory, payoffs=None):
        for label in ("payoff_weight", "sharpness"):
            value = getattr(self, label)
            if value is not None and np.shape(value) != ():
                raise ValueError(f"{label} must be a number, got shape {np.shape(value)}")
        weight = 0.0 if self.payoff_weight is None else abs(float(_finite("payoff_weight", self.payoff_weight)))
        if self.sharpness is not None and not 0 < float(self.sharpness) < np.inf:
            raise ValueError(
                f"sharpness must be > 0 and finite (None = exact best response), got {float(self.sharpness)}"
            )
        score = memory * (1.0 + weight * _payoff_scale(payoffs))
        sharpness = 1.0 if self.sharpness is None else float(self.sharpness)
        if not score * max(sharpness, 1.0) < MAX_SCORE:
            raise ValueError(
                f"payoff_weight={weight:g} and sharpness={sharpness:g} with payoffs up to {_payoff_scale(payoffs):g} "
                f"and H={memory} give scores beyond {MAX_SCORE:g}, which overflow float32"
            )


class SoftmaxSurrogate(Policy):
    """A smooth stand-in for an LLM agent: ``log_softmax(score / temperature)`` with, for name w,

    ``score_w = bias_w + win_stay * [last interaction succeeded and own last = w]
    + lose_shift * [last interaction failed and partner last = w] + copy_partner * [partner last = w]
    + own_weight * sum_h recency^h [own_h = w] + partner_weight * sum_h recency^h [partner_h = w]``

    (h = 0 is the most recent entry; recency = 0 counts only it, 1 counts the whole memory equally).

    Optional terms (None, the default, leaves a term out at no cost): ``first_bias`` (W,) replaces ``bias`` when the
    memory is empty (a first move's bias, separate from the bias in play); ``unanimity`` is added to name w when
    every remembered own and partner choice of a full memory is w; ``lapse`` mixes the softmax with the uniform
    distribution: ``(1 - lapse) softmax + lapse / W`` (a tremble)."""

    bias: jax.Array
    win_stay: jax.Array
    lose_shift: jax.Array
    copy_partner: jax.Array
    own_weight: jax.Array
    partner_weight: jax.Array
    recency: jax.Array
    temperature: jax.Array
    first_bias: jax.Array | None = None
    unanimity: jax.Array | None = None
    lapse: jax.Array | None = None

    def __init__(
        self,
        bias,
        *,
        win_stay: float = 0.0,
        lose_shift: float = 0.0,
        copy_partner: float = 0.0,
        own_weight: float = 0.0,
        partner_weight: float = 0.0,
        recency: float = 1.0,
        temperature: float = 1.0,
        first_bias=None,
        unanimity: float | None = None,
        lapse: float | None = None,
    ):
        self.bias = _float32(bias)
        self.win_stay = _float32(win_stay)
        self.lose_shift = _float32(lose_shift)
        self.copy_partner = _float32(copy_partner)
        self.own_weight = _float32(own_weight)
        self.partner_weight = _float32(partner_weight)
        self.recency = _float32(recency)
        self.temperature = _float32(temperature)
        self.first_bias = None if first_bias is None else _float32(first_bias)
        self.unanimity = None if unanimity is None else _float32(unanimity)
        self.lapse = None if lapse is None else _float32(lapse)

    def logits(self, view):
        last_own, last_partner = view.own[0], view.partner[0]
        won = jnp.sum(last_own * last_partner)
        lost = view.filled[0] - won
        decay = self.recency ** jnp.arange(view.own.shape[0], dtype=jnp.float32)
        score = (
            self.bias
            + self.win_stay * won * last_own
            + self.lose_shift * lost * last_partner
            + self.copy_partner * last_partner
            + self.own_weight * (decay @ view.own)
            + self.partner_weight * (decay @ view.partner)
        )
        if self.first_bias is not None:
            score = score + (1.0 - view.filled[0]) * (self.first_bias - self.bias)
        if self.unanimity is not None:
            score = score + self.unanimity * jnp.prod(view.own, axis=0) * jnp.prod(view.partner, axis=0)
        log_probs = jax.nn.log_softmax(score / self.temperature)
        if self.lapse is not None:
            n_names = log_probs.shape[0]
            log_probs = jnp.logaddexp(jnp.log1p(-self.lapse) + log_probs, jnp.log(self.lapse / n_names))
        return log_probs

    def check(self, n_names, memory, payoffs=None):
        if self.bias.shape != (n_names,):
            raise ValueError(f"bias must have shape ({n_names},) for W={n_names} names, got shape {self.bias.shape}")
        bias = _finite("bias", self.bias)
        fields = ("win_stay", "lose_shift", "copy_partner", "own_weight", "partner_weight", "recency", "temperature")
        for label in fields:
            if np.shape(getattr(self, label)) != ():
                raise ValueError(f"{label} must be a number, got shape {np.shape(getattr(self, label))}")
        value = {label: float(_finite(label, getattr(self, label))) for label in fields}
        if not value["temperature"] > 0:
            raise ValueError(f"temperature must be > 0, got {value['temperature']}")
        if not value["recency"] >= 0:
            raise ValueError(f"recency must be >= 0, got {value['recency']}")
        with np.errstate(over="ignore"):
            decay = np.float64(value["recency"]) ** np.arange(memory)
        if not decay.max() < MAX_SCORE:
            raise ValueError(f"recency={value['recency']:g} overflows float32 over H={memory} entries")
        extra = 0.0
        if self.first_bias is not None:
            if self.first_bias.shape != (n_names,):
                raise ValueError(f"first_bias must have shape ({n_names},), got shape {self.first_bias.shape}")
            extra = max(0.0, float(np.abs(_finite("first_bias", self.first_bias)).max()) - float(np.abs(bias).max()))
        for label in ("unanimity", "lapse"):
            if getattr(self, label) is not None and np.shape(getattr(self, label)) != ():
                raise ValueError(f"{label} must be a number, got shape {np.shape(getattr(self, label))}")
        if self.unanimity is not None:
            extra += abs(float(_finite("unanimity", self.unanimity)))
        if self.lapse is not None and not 0.0 <= float(_finite("lapse", self.lapse)) < 1.0:
            raise ValueError(f"lapse must be in [0, 1), got {float(self.lapse)}")
        score = (
            extra
            + np.abs(bias).max()
            + sum(abs(value[label]) for label in ("win_stay", "lose_shift", "copy_partner"))
            + (abs(value["own_weight"]) + abs(value["partner_weight"])) * decay.sum()
        )
        if not score < MAX_SCORE or not score / value["temperature"] < MAX_SCORE:
            raise ValueError(
                f"temperature={value['temperature']:g} is too small for scores up to {score:g}: score / temperature "
                "overflows float32"
            )


class LookupTable(Policy):
    """``P(name | the last d interactions)`` read from a table.

    ``table`` has shape ``(W + 1,) * 2d + (W,)``: axes own choice, partner choice of the most recent
    interaction, then of the one before, ..., index W standing for an empty slot; the last axis is the
    distribution over names (rows sum to 1). d = 0 is a memory-free distribution; d <= H."""

    table: jax.Array

    def __init__(self, table):
        self.table = jnp.asarray(table, jnp.float32)

    @property
    def depth(self) -> int:
        return (self.table.ndim - 1) // 2

    def probabilities(self, view):
        table = self.table
        for h in range(self.depth):
            empty = 1.0 - view.filled[h]
            for names in (view.own[h], view.partner[h]):
                table = jnp.tensordot(jnp.append(names, empty), table, axes=1)
        return table

    def check(self, n_names, memory, payoffs=None):
        shape = self.table.shape
        depth = (len(shape) - 1) // 2
        expected = (n_names + 1,) * (2 * depth) + (n_names,)
        if len(shape) % 2 == 0 or shape != expected:
            raise ValueError(
                f"lookup table must have shape (W+1,)*2d + (W,) with W={n_names}, e.g. {expected}; got shape {shape}"
            )
        if depth > memory:
            raise ValueError(f"lookup table reads the last {depth} interactions but the memory holds H={memory}")
        table = _finite("lookup table", self.table)
        if not np.all(table >= 0) or not np.allclose(table.sum(axis=-1), 1.0, atol=1e-5):
            raise ValueError("lookup table rows must be probabilities (>= 0, summing to 1 over the last axis)")


__all__ = [
    "BestResponse",
    "LookupTable",
    "MemoryView",
    "Policy",
    "SoftmaxSurrogate",
    "Uniform",
    "memory_view",
    "sample",
    "tilt",
]
