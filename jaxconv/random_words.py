"""Turning uniform uint32 random words into integers and floats, reusing the unused part of a word.

A word is one draw of `jax.random.bits(key, shape, jnp.uint32)`. Drawing words in bulk and peeling several
choices off each one saves PRNG calls inside hot loops.
"""

import jax
import jax.numpy as jnp

_TWO_POW_MINUS_24 = 2.0**-24


def take_int(word: jax.Array, n: int | jax.Array) -> tuple[jax.Array, jax.Array]:
    """Split uniform uint32 words into an integer in [0, n) and a float32 rest in [0, 1).

    Args:
        word: uint32 array, uniform on [0, 2**32).
        n: int or integer array broadcastable with `word`, 1 <= n < 2**31.

    Returns:
        `(value, rest)`: int32 `word % n` and float32 `rest`, both of the broadcast shape.
        `rest = floor(2**24 * (word // n) * n / 2**32) / 2**24` is the unused quotient `word // n` rescaled to
        [0, 1) and truncated to the 2**-24 grid of float32 near 1 (exact integer arithmetic, so never 1.0).

    Bias bound: P(value = r) = (1 +- e) / n with e < n / 2**32. Given value = r and any integer m <= 2**24,
    floor(rest * m) equals each j in [0, m) with probability (1 +- e) / m, where e < (3 n + 256) m / 2**32 if
    the product is exact and e < (5 n + 768) m / 2**32 if it is computed in float32 (so e < 3e-5 for
    n, m <= 100). The 256 is the 2**-24 resolution of float32 near 1, which no float32 rest avoids. So `rest`
    is nearly uniform and independent of `value`.
    """
    word = jnp.asarray(word, jnp.uint32)
    value = word % jnp.asarray(n).astype(jnp.uint32)
    rest = ((word - value) >> 8).astype(jnp.float32) * _TWO_POW_MINUS_24
    return value.astype(jnp.int32), rest


def to_unit(word: jax.Array) -> jax.Array:
    """Uniform uint32 words -> float32 in [0, 1) on the 2**-24 grid (top 24 bits), same shape."""
    return (jnp.asarray(word, jnp.uint32) >> 8).astype(jnp.float32) * _TWO_POW_MINUS_24
