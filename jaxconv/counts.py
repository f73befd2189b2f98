"""Interaction counts beyond 2^31, exact with 32-bit integers (jaxconv runs with jax's x64 off).

A :class:`Count` is ``high * 2**31 + low``, both int32 with ``low`` in [0, 2^31), so up to 2^62 - 1; or "not yet"
(-1: high 0, low -1). A count under 2^31 has ``high = 0`` and ``low`` equal to the count, so runs shorter than 2^31
interactions hold the same ``low`` words as plain int32 counters. On the host it reads as int64 (``int(count)``,
``np.asarray(count)``); :func:`to_host` turns the counts of a results tree into int64 arrays.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

HALF = 2**31  # one unit of ``high``
LIMIT = 2**62  # counts are below this
MASK = HALF - 1


class Count(eqx.Module):
    """A count ``high * 2**31 + low`` (int32 arrays of one shape), or -1 ("not yet"); see the module docstring."""

    high: jax.Array
    low: jax.Array

    @staticmethod
    def of(value) -> "Count":
        """From int32 arrays (traced or not, >= 0 or -1) or host integers (Python ints, numpy arrays) in
        [-1, 2^62)."""
        if isinstance(value, jax.Array) and value.dtype == jnp.int32:
            return Count(jnp.zeros_like(value), value)
        value = np.asarray(value, np.int64)
        if np.any(value < -1) or np.any(value >= LIMIT):
            bad = value[(value < -1) | (value >= LIMIT)].ravel()[0]
            raise ValueError(f"a count must be in [0, 2^62) (or -1 for 'not yet'), got {bad}")
        high, low = np.where(value < 0, 0, value >> 31), np.where(value < 0, -1, value & MASK)
        return Count(jnp.asarray(high, jnp.int32), jnp.asarray(low, jnp.int32))

    @staticmethod
    def never(shape=()) -> "Count":
        """-1 ("not yet")."""
        return Count(jnp.zeros(shape, jnp.int32), jnp.full(shape, -1, jnp.int32))

    @staticmethod
    def where(condition, a: "Count", b: "Count") -> "Count":
        return Count(jnp.where(condition, a.high, b.high), jnp.where(condition, a.low, b.low))

    @property
    def known(self) -> jax.Array:
        """Whether the count is set (not -1)."""
        return self.low >= 0

    def plus(self, other) -> "Count":
        """``self + other`` for a count or an int32 array ``other >= 0`` (both set). ``low`` words add below 2^32,
        so their int32 sum is negative (wrapped) exactly when it carries."""
        other = other if isinstance(other, Count) else Count.of(jnp.asarray(other, jnp.int32))
        total = self.low + other.low
        return Count(self.high + other.high + (total < 0), total & MASK)

    def minus(self, other: "Count") -> "Count":
        """``self - other`` for counts ``self >= other >= 0``."""
        difference = self.low - other.low
        return Count(self.high - other.high - (difference < 0), difference & MASK)

    def below(self, other: "Count") -> jax.Array:
        """``self < other`` for set counts."""
        return (self.high < other.high) | ((self.high == other.high) & (self.low < other.low))

    def capped_minus(self, other: "Count", cap) -> jax.Array:
        """``min(self - other, cap)`` as int32, for counts ``self >= other`` and an int32 ``cap >= 0``."""
        gap = self.minus(other)
        return jnp.where(gap.high > 0, cap, jnp.minimum(gap.low, cap))

    def uint32_words(self) -> tuple[jax.Array, jax.Array]:
        """The count's low and high 32 bits as uint32 ``(count mod 2^32, count // 2^32)``, for set counts."""
        low = self.low.astype(jnp.uint32) | ((self.high & 1).astype(jnp.uint32) << 31)
        return low, (self.high >> 1).astype(jnp.uint32)

    # ----- on the host ------------------------------------------------------------------------------------------
    def __int__(self) -> int:
        return int(self.high) * HALF + int(self.low)

    def __array__(self, dtype=None, copy=None):
        value = np.asarray(self.high, np.int64) * HALF + np.asarray(self.low, np.int64)
        return value if dtype is None else value.astype(dtype)

    def __getitem__(self, index) -> "Count":
        return Count(self.high[index], self.low[index])

    def __getattr__(self, name: str):
        """Other attributes (``shape``, ``sum``, ``tolist``, ...) are those of the int64 array, on the host."""
        if name.startswith("_") or name in ("high", "low"):
            raise AttributeError(name)
        if isinstance(self.high, jax.core.Tracer) or isinstance(self.low, jax.core.Tracer):
            raise AttributeError(f"{name} of a traced Count (only its int64 array on the host has it)")
        return getattr(np.asarray(self), name)


def to_host(tree):
    """``tree`` with every :class:`Count` replaced by its int64 numpy array (other leaves as they are)."""
    return jax.tree.map(
        lambda x: np.asarray(x) if isinstance(x, Count) else x, tree, is_leaf=lambda x: isinstance(x, Count)
    )


__all__ = ["Count", "LIMIT", "to_host"]
