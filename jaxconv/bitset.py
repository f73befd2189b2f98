"""Inventories of words as bitsets: one row of uint32 words per agent, bit ``w`` set when word ``w`` is known.

A bitset of ``n_bits`` words needs ``n_words(n_bits)`` uint32 values. All functions act on one inventory
(shape ``(n_words,)``) and are meant to be vmapped over agents and replicas.
"""

import jax
import jax.numpy as jnp

WORD_BITS = 32


def n_words(n_bits: int) -> int:
    """Number of uint32 words that hold ``n_bits`` bits."""
    return -(-n_bits // WORD_BITS)


def size(inventory: jax.Array) -> jax.Array:
    """Number of words in an inventory ``(n_words,) uint32`` -> int32 scalar."""
    return jax.lax.population_count(inventory).astype(jnp.int32).sum()


def singleton(word: jax.Array, n: int) -> jax.Array:
    """The inventory ``{word}`` as ``(n,) uint32``."""
    slot, bit = jnp.divmod(word, WORD_BITS)
    return jnp.where(jnp.arange(n) == slot, jnp.uint32(1) << bit.astype(jnp.uint32), jnp.uint32(0))


def contains(inventory: jax.Array, word: jax.Array) -> jax.Array:
    """Whether ``word`` is in the inventory -> bool scalar."""
    slot, bit = jnp.divmod(word, WORD_BITS)
    return (inventory[slot] >> bit.astype(jnp.uint32)) & 1 == 1


def nth_member(inventory: jax.Array, k: jax.Array) -> jax.Array:
    """The ``k``-th smallest word of the inventory (``0 <= k < size``) -> int32 scalar."""
    counts = jax.lax.population_count(inventory).astype(jnp.int32)
    through = jnp.cumsum(counts)
    slot = jnp.argmax(through > k)  # first slot whose words reach past k
    return slot * WORD_BITS + _nth_bit(inventory[slot], k - (through[slot] - counts[slot]))


def _nth_bit(x: jax.Array, k: jax.Array) -> jax.Array:
    """Position of the ``k``-th set bit of one uint32 ``x``, by halving the search window."""
    position = jnp.zeros_like(k)
    for width in (16, 8, 4, 2, 1):
        low = x & jnp.uint32((1 << width) - 1)
        low_count = jax.lax.population_count(low).astype(jnp.int32)
        in_high = k >= low_count
        k = jnp.where(in_high, k - low_count, k)
        x = jnp.where(in_high, x >> jnp.uint32(width), low)
        position = position + jnp.where(in_high, width, 0)
    return position


def members(inventory: jax.Array, n_bits: int) -> jax.Array:
    """Membership mask ``(n_bits,) bool`` of an inventory."""
    bits = (inventory[:, None] >> jnp.arange(WORD_BITS, dtype=jnp.uint32)) & 1
    return bits.reshape(-1)[:n_bits] == 1
