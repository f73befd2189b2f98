"""Bitset inventories against Python sets, including inventories spread over several uint32 words."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxconv import bitset

N_BITS = 150  # five uint32 words

as_words = jax.jit(
    lambda members: (
        jnp.zeros(bitset.n_words(N_BITS), jnp.uint32)
        .at[members // 32]
        .add(jnp.uint32(1) << (members % 32).astype(jnp.uint32))
    )
)


def _inventory(words: set[int]) -> jax.Array:
    members = np.array(sorted(words), dtype=np.int32)
    return as_words(jnp.asarray(members)) if len(members) else jnp.zeros(bitset.n_words(N_BITS), jnp.uint32)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, N_BITS - 1), max_size=40), st.integers(0, N_BITS - 1))
def test_operations_match_python_sets(words, probe):
    inventory = _inventory(words)
    assert int(bitset.size(inventory)) == len(words)
    assert bool(bitset.contains(inventory, jnp.int32(probe))) == (probe in words)
    members = np.flatnonzero(np.asarray(bitset.members(inventory, N_BITS)))
    assert members.tolist() == sorted(words)
    ordered = sorted(words)
    got = jax.vmap(lambda k: bitset.nth_member(inventory, k))(jnp.arange(len(ordered), dtype=jnp.int32))
    assert np.asarray(got).tolist() == ordered
    only = bitset.singleton(jnp.int32(probe), bitset.n_words(N_BITS))
    assert np.flatnonzero(np.asarray(bitset.members(only, N_BITS))).tolist() == [probe]


def test_nth_member_at_word_boundaries():
    words = {0, 31, 32, 63, 64, 95, 96, 127, 128, 149}
    inventory = _inventory(words)
    got = [int(bitset.nth_member(inventory, jnp.int32(k))) for k in range(len(words))]
    assert got == sorted(words)
