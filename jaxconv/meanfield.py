"""Mean-field (infinite-population) dynamics of the naming and memory games, and their tipping points.

In an infinite well-mixed population an agent is described by its *type*, and the state is ``x``, the
population fractions of the uncommitted agents' types (shape ``(K,)``, summing to ``1 - p``); a fraction ``p`` of
the population is committed to name Y (``committed_name``) and never changes. Time is counted in population
rounds: N interactions make one unit of time. The rates are not written by hand: they come from applying the
game's own rule to every pair of types and every discrete choice of the rule.

Naming game with a pool of W names (``NamingMeanField``; Xie, Sreenivasan, Korniss, Zhang, Lim & Szymanski,
PRE 84 011130, 2011, for W = 2). A type is an inventory, one of the 2^W - 1 nonempty sets of names, ordered by
bitset value (W = 2: {A}, {B}, {AB}). Speaker and hearer are drawn from the whole population (committed agents
included) and ``NamingGame.interact`` gives their new inventories; the rule is piecewise constant in its two
uniforms, so every outcome is found by evaluating it at the midpoint of each piece with that piece's probability
(the word: lcm(1..W) equal intervals of ``u_word``, on which every ``floor(u_word * n)`` is constant; the
collapse: ``u_collapse`` below ``beta`` with probability beta, above it with 1 - beta). Then

    dx_k/dt = sum_{s,h} w_s w_h E[change in the number of type-k agents | speaker s, hearer h],  w = (x, p).

For W = 2 this is Xie et al.'s ODE: from an all-A start the A branch disappears in a saddle-node at
p_c = 0.0979. With ``beta`` (Baronchelli, Dall'Asta, Barrat & Loreto, PRE 76 051102, 2007) and no committed
agents, consensus is stable iff beta > 1/3.

Memory game under any policy (``MemoryMeanField``; ``jaxconv.games.memory``). A type is a memory window: the
last H (own, partner) choices, most recent first, full (W^2)^H windows, or also the partially filled ones (empty
slots at the end) for runs from empty memories. Both agents of an interaction choose at the same time from their
own windows (``MemoryGame.view`` and ``policy.probabilities``); a committed partner always answers Y. An agent
pushes (own choice, partner choice) into its window in both roles (``update="both"``: two pushes per round) or
as hearer only (``"hearer"``: one per round). With ``pi[k, a]`` the probability that a type-k agent chooses a
and ``q = (x @ pi + p e_Y) / (sum(x) + p)`` the partner's choice distribution (normalized, so that mass is
conserved for any x),

    dx/dt = rate * (sum_{k,a,b} x_k pi[k, a] q_b e_{push(k, a, b)} - x),  rate = 2 ("both") or 1 ("hearer").

When the policy provably ignores its own choices and payoffs (checked on the policy's computation graph, e.g.
best response without a payoff weight) the windows keep partner choices only: W^H types instead of (W^2)^H.
The policy is evaluated on fixed windows, so the rhs is smooth in x and p even for the exact best response (ties
and all): its fold is found directly; only derivatives in its parameters need the ``sharpness`` relaxation.

Tipping point. Starting from the incumbent state (all uncommitted agents on the prepared name X), the
incumbent branch of fixed points ends at a fold (saddle-node) as p grows; that p is the mean-field critical mass
p_c. ``tipping_point`` follows the branch by continuation in s, a linear measure of how far the committed name
has spread (``committed_share``: its share of utterances, or of remembered partner choices; p has a maximum along
s at the fold, so no turning point is met) and refines the fold with Newton's method
(``optimistix.root_find``) on the bordered system G(x, p) = 0, J(x, p) v = 0, c.v = 1, where G is the rhs with
the conservation of mass made nonsingular (G = F + (1 - p - sum x) / K: same zeros, the Jacobian of F restricted
to sum-zero directions plus an eigenvalue -1). Optimistix's implicit adjoint makes p_c differentiable in the
game's array parameters (beta, the policy's parameters) without differentiating through the iterations.

Everything runs in the default float32 of JAX (Xie's p_c within 1e-8 of the float64 value) or in float64 under
``jax_enable_x64``. Dense Jacobians: the fold of K types solves (2K + 1)-square systems, so K up to a few
thousand (best response up to M = 11 in about a minute and a half on 2 CPU cores).
"""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.extend.core import Var

from jaxconv import bitset
from jaxconv.choosers import Sample
from jaxconv.games.memory import Memory, MemoryGame
from jaxconv.games.naming import NamingGame
from jaxconv.policies import MemoryView


# ----- naming game ----------------------------------------------------------------------------------------------
def _pair_outcomes(game: NamingGame, speaker_words, hearer_words, speaker_committed, hearer_committed):
    """Every outcome of the game's rule for one speaker-hearer pair (``(n_words,) uint32`` inventories).

    Returns the speaker's and hearer's inventories after the interaction, ``(P, n_words)`` each, and the
    probability of each outcome ``(P,)``. This is the only place where ``NamingGame.interact`` is called: with the
    simulator's chooser, whose uniforms (the word's, then the collapse's) are set to the midpoints of the pieces
    on which the rule is constant."""
    n_word_pieces = math.lcm(*range(1, game.vocabulary + 1))
    u_word = (jnp.arange(n_word_pieces) + 0.5) / n_word_pieces
    u_collapse = jnp.stack([game.beta / 2, (1 + game.beta) / 2])
    p_collapse = jnp.stack([game.beta, 1 - game.beta])
    uniforms = jnp.stack(jnp.broadcast_arrays(u_word[:, None], u_collapse[None, :]), axis=-1).reshape(-1, 2)
    probability = jnp.broadcast_to(p_collapse / n_word_pieces, (n_word_pieces, 2)).reshape(-1)

    def one(u):
        after_s, after_h, *_ = game.interact(
            Sample(), 0, speaker_words, hearer_words, speaker_committed, hearer_committed, u
        )
        return after_s, after_h

    speaker_after, hearer_after = jax.vmap(one)(uniforms)
    return speaker_after, hearer_after, probability


class NamingMeanField(eqx.Module):
    """Mean field of a ``NamingGame`` with a pool of W names (small W). Types: the K = 2^W - 1 nonempty
    inventories, ordered by bitset value; committed agents hold ``{committed_name}``."""

    game: NamingGame

    def __init__(self, game: NamingGame):
        if game.vocabulary == "open":
            raise ValueError("the mean field needs a finite pool of names (vocabulary=W)")
        if game.initial != "prepared":
            raise ValueError("the mean field's types are nonempty inventories: it needs initial='prepared'")
        if game.vocabulary > 5:
            raise ValueError(f"the mean field enumerates 2^W - 1 inventories; W={game.vocabulary} is too many (<= 5)")
        self.game = game

    @property
    def n_types(self) -> int:
        return 2**self.game.vocabulary - 1

    def inventories(self) -> jax.Array:
        """``(K, n_words) uint32``: the inventory of each type."""
        return jnp.arange(1, self.n_types + 1, dtype=jnp.uint32)[:, None]

    def _type_index(self, inventory: jax.Array) -> jax.Array:
        return inventory[0].astype(jnp.int32) - 1

    def expected_changes(self) -> jax.Array:
        """``(K + 1, K + 1, K)``: expected change in the number of uncommitted agents of each type in one
        interaction of a speaker and a hearer of each kind (the K types, then the committed agents)."""
        committed_words = bitset.singleton(self.game.committed_name, self.game.n_words)
        kinds = jnp.concatenate([self.inventories(), committed_words[None]])
        is_committed = jnp.arange(self.n_types + 1) == self.n_types

        def net(after, probability, kind):
            gained = probability @ jax.nn.one_hot(jax.vmap(self._type_index)(after), self.n_types)
            return jnp.where(is_committed[kind], 0.0, gained - jax.nn.one_hot(kind, self.n_types))

        def pair(s, h):
            after_s, after_h, probability = _pair_outcomes(
                self.game, kinds[s], kinds[h], is_committed[s], is_committed[h]
            )
            return net(after_s, probability, s) + net(after_h, probability, h)

        kind = jnp.arange(self.n_types + 1)
        return jax.vmap(jax.vmap(pair, (None, 0)), (0, None))(kind, kind)

    def rhs(self, x: jax.Array, p: jax.Array) -> jax.Array:
        """``dx/dt`` ``(K,)`` for population fractions ``x`` ``(K,)`` and committed fraction ``p``."""
        weights = jnp.append(x, p)
        return jnp.einsum("s,h,shk->k", weights, weights, self.expected_changes().astype(x.dtype))

    def initial_state(self, p) -> jax.Array:
        """All uncommitted agents hold ``{prepared_name}``: ``(K,)``."""
        prepared = self._type_index(bitset.singleton(self.game.prepared_name, self.game.n_words))
        return (1 - p) * jax.nn.one_hot(prepared, self.n_types)

    def committed_share(self, x: jax.Array) -> jax.Array:
        """Population fraction of uncommitted agents' utterances that are the committed name (a speaker utters
        each word of its inventory with equal probability)."""
        members = jax.vmap(bitset.members, (0, None))(self.inventories(), self.game.vocabulary)
        says = members[:, self.game.committed_name] / members.sum(axis=1)
        return x @ says.astype(x.dtype)


def binary_naming_model(beta=1.0) -> NamingMeanField:
    """Mean field of Xie et al.'s game: W = 2 names, committed to B (1), prepared on A (0); ``beta`` may be a
    traced array. Types: {A}, {B}, {AB}."""
    game = NamingGame(2, vocabulary=2, committed_name=1, initial="prepared", prepared_name=0)
    return NamingMeanField(eqx.tree_at(lambda g: g.beta, game, jnp.asarray(beta, game.beta.dtype)))


def binary_naming_rhs(x: jax.Array, p, beta=1.0) -> jax.Array:
    """``dx/dt`` of the densities ``x = (n_A, n_B, n_AB)`` of uncommitted agents, a fraction ``p`` committed to B,
    collapse probability ``beta``."""
    return binary_naming_model(beta).rhs(x, p)


# ----- memory game ----------------------------------------------------------------------------------------------
class MemoryMeanField(eqx.Module):
    """Mean field of a ``MemoryGame`` on the complete graph: the distribution over memory windows.

    ``windows="full"`` enumerates the full windows (enough from a prepared start: pushes keep windows full),
    ``"all"`` also the partially filled ones (from an empty start); the default follows ``game.initial``."""

    game: MemoryGame
    own: jax.Array  # (K, H) int32 own choice of each slot of each window type, -1 = empty
    partner: jax.Array  # (K, H) int32 partner choice
    pushed: jax.Array  # (K, W, W) int32 window type after pushing (own choice, partner choice)
    full_offset: int = eqx.field(static=True)  # index of the first full window
    partner_only: bool = eqx.field(static=True)  # windows keep partner choices only

    def __init__(self, game: MemoryGame, windows: str | None = None):
        windows = windows or ("full" if game.initial == "prepared" else "all")
        if game.drift is not None:
            raise ValueError("the mean field has no shared shocks: build it from a game without drift (drift=None)")
        if windows not in ("full", "all"):
            raise ValueError(f"windows must be 'full' or 'all', got {windows!r}")
        if windows == "full" and game.initial == "empty":
            raise ValueError("a game started from empty memories needs windows='all'")
        w, h = game.n_names, game.memory
        self.partner_only = not _policy_reads_own_choices(game)
        n_entries = w if self.partner_only else w * w
        fills = range(h, h + 1) if windows == "full" else range(h + 1)
        codes, pushed = _window_tables(n_entries, h, fills)
        if self.partner_only:  # the own choice is forgotten: it changes neither the window nor later choices
            own = partner = codes
            pushed = np.repeat(pushed[:, None, :], w, axis=1)
        else:
            own, partner = np.where(codes >= 0, codes // w, -1), np.where(codes >= 0, codes % w, -1)
            pushed = pushed.reshape(-1, w, w)
        self.game = game
        self.own, self.partner = jnp.asarray(own, jnp.int32), jnp.asarray(partner, jnp.int32)
        self.pushed = jnp.asarray(pushed, jnp.int32)
        self.full_offset = len(codes) - n_entries**h

    @property
    def n_types(self) -> int:
        return self.own.shape[0]

    def choice_probabilities(self) -> jax.Array:
        """``(K, W)``: the policy's distribution over names for each window type."""
        game = self.game
        return jax.vmap(lambda memory: game.policy.probabilities(game.view(memory)))(Memory(self.own, self.partner))

    def rhs(self, x: jax.Array, p: jax.Array) -> jax.Array:
        """``dx/dt`` ``(K,)`` for population fractions ``x`` ``(K,)`` and committed fraction ``p``."""
        choose = self.choice_probabilities().astype(x.dtype)
        committed = p * jax.nn.one_hot(self.game.committed_name, self.game.n_names, dtype=x.dtype)
        partner_choice = (x @ choose + committed) / (x.sum() + p)  # normalized: mass is conserved for any x
        flow = x[:, None, None] * choose[:, :, None] * partner_choice[None, None, :]
        inflow = jax.ops.segment_sum(flow.reshape(-1), self.pushed.reshape(-1), num_segments=self.n_types)
        pushes_per_round = 2.0 if self.game.update == "both" else 1.0
        return pushes_per_round * (inflow - x)

    def initial_state(self, p) -> jax.Array:
        """``(K,)``: all uncommitted memories empty, or full of (X, X) for a prepared game."""
        if self.game.initial == "empty":
            return (1 - p) * jax.nn.one_hot(0, self.n_types)
        x_name, w = self.game.prepared_name, self.game.n_names
        code = x_name if self.partner_only else x_name * w + x_name
        n_entries = w if self.partner_only else w * w
        window = self.full_offset + code * (n_entries**self.game.memory - 1) // (n_entries - 1)
        return (1 - p) * jax.nn.one_hot(window, self.n_types)

    def committed_share(self, x: jax.Array) -> jax.Array:
        """The committed name's share of the partner choices remembered by uncommitted agents, times their
        population fraction (linear in ``x``)."""
        remembered = jnp.mean(self.partner == self.game.committed_name, axis=1)
        return x @ remembered.astype(x.dtype)


def _window_tables(n_entries: int, memory: int, fills) -> tuple[np.ndarray, np.ndarray]:
    """All windows with the given numbers of filled slots, as entry codes ``(K, H)`` (-1 = empty; windows of fill
    f are listed in row-major order of their entries, fills in increasing order), and ``(K, n_entries)`` the index
    of the window after pushing each entry code (the oldest entry of a full window is dropped)."""
    offsets, codes, pushed = {}, [], []
    for fill in fills:
        offsets[fill] = sum(len(c) for c in codes)
        entries = np.indices((n_entries,) * fill).reshape(fill, n_entries**fill).T
        codes.append(np.pad(entries, ((0, 0), (0, memory - fill)), constant_values=-1))
    for fill in fills:
        new_fill = min(fill + 1, memory)
        position = np.arange(n_entries**fill)
        kept = position // n_entries ** (fill + 1 - new_fill)  # the retained entries, now one slot older
        pushed.append(offsets[new_fill] + np.arange(n_entries)[None, :] * n_entries ** (new_fill - 1) + kept[:, None])
    return np.concatenate(codes), np.concatenate(pushed)


def _policy_reads_own_choices(game: MemoryGame) -> bool:
    """Whether the policy's choice can depend on the agent's own past choices or payoffs, read off the data flow
    of its computation (conservatively: any operation mixing an input counts as reading it)."""
    h, w = game.memory, game.n_names

    def probabilities(own, payoff):
        view = MemoryView(own, jnp.zeros((h, w)), payoff, jnp.ones(h))
        return game.policy.probabilities(view)

    jaxpr = jax.make_jaxpr(probabilities)(jnp.zeros((h, w)), jnp.zeros(h)).jaxpr
    needed = {v for v in jaxpr.outvars if isinstance(v, Var)}
    for equation in reversed(jaxpr.eqns):
        if needed.intersection(equation.outvars):
            needed.update(v for v in equation.invars if isinstance(v, Var))
    return bool(needed.intersection(jaxpr.invars))


# ----- integration and stability ------------------------------------------------------------------------------
def integrate(model, x0: jax.Array, p, times: jax.Array, rtol: float = 1e-6, atol: float = 1e-9) -> jax.Array:
    """Trajectory ``(T, K)`` of the mean field at ``times`` ``(T,)`` (rounds) from ``x0`` at ``times[0]``
    (diffrax, Tsit5, adaptive steps). New values of ``p``, ``times`` or the model's arrays do not recompile."""
    x0 = jnp.asarray(x0)
    return _integrate(model, x0, jnp.asarray(p, x0.dtype), jnp.asarray(times, x0.dtype), rtol, atol)


@eqx.filter_jit
def _integrate(model, x0, p, times, rtol, atol):
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, x, p: model.rhs(x, p)),
        diffrax.Tsit5(),
        times[0],
        times[-1],
        None,
        x0,
        args=p,
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=100_000,
    )
    return solution.ys


def _relaxed_rhs(model, x, p):
    """The rhs plus a pull towards total mass 1 - p: the same zeros on the simplex, and a Jacobian that is
    singular only where the dynamics on the simplex is (the mass direction gets eigenvalue -1)."""
    return model.rhs(x, p) + (1 - p - x.sum()) / x.shape[0]


def _newton(x):
    """Newton's method to about 100 ulps (root-mean-square over the unknowns: windows of tiny mass carry
    rounding noise of relative size 1)."""
    tolerance = 100 * float(jnp.finfo(x.dtype).eps)
    return optx.Newton(rtol=tolerance, atol=tolerance, norm=optx.rms_norm)


@eqx.filter_jit
def _jacobian(model, x, p):
    return jax.jacfwd(model.rhs)(x, p)


def stability(model, x: jax.Array, p) -> np.ndarray:
    """Eigenvalues ``(K - 1,)`` (numpy complex, decreasing real part) of the Jacobian at ``x`` restricted to the
    simplex (directions of zero total mass): the fixed point is stable iff all real parts are negative."""
    jacobian = np.asarray(_jacobian(model, jnp.asarray(x), jnp.asarray(p, jnp.asarray(x).dtype)), np.float64)
    # coordinates along e_i - e_K, i < K: the matrix of the map on sum-zero vectors
    restricted = jacobian[:-1, :-1] - jacobian[:-1, -1:]
    eigenvalues = np.linalg.eigvals(restricted)
    return eigenvalues[np.argsort(-eigenvalues.real)]


# ----- tipping point: the fold of the incumbent branch ---------------------------------------------------------
@eqx.filter_jit
def _branch_point(model, share, x_guess, p_guess):
    """The fixed point on the branch where the committed name's share is ``share`` -> (x, p, converged)."""

    def residual(y, share):
        x, p = y
        return _relaxed_rhs(model, x, p), model.committed_share(x) - share

    solution = optx.root_find(residual, _newton(x_guess), (x_guess, p_guess), share, throw=False)
    x, p = solution.value
    return x, p, solution.result == optx.RESULTS.successful


@eqx.filter_jit
def solve_fold(model, x0: jax.Array, p0, v0: jax.Array):
    """Newton on the bordered system G(x, p) = 0, J v = 0, v0.v = 1 from ``(x0, p0, v0)`` (``v0`` a unit estimate
    of the null vector) -> (x, p, v, converged). Differentiable in ``model``'s arrays by the implicit function
    theorem (optimistix ``ImplicitAdjoint``)."""

    def residual(y, args):
        x, p, v = y
        model, direction = args
        g, jv = jax.jvp(lambda x: _relaxed_rhs(model, x, p), (x,), (v,))
        return g, jv, direction @ v - 1

    v0 = jax.lax.stop_gradient(v0)
    y0 = jax.lax.stop_gradient((x0, jnp.asarray(p0, x0.dtype), v0))
    solution = optx.root_find(residual, _newton(x0), y0, (model, v0), max_steps=64, throw=False)
    x, p, v = solution.value
    return x, p, v, solution.result == optx.RESULTS.successful


def fold_threshold(model, start) -> jax.Array:
    """p_c of ``model`` by ``solve_fold`` from ``start`` (a ``tipping_point`` result's, for a nearby model);
    ``jax.grad``-able in the model's arrays. Raises if Newton does not converge."""
    _, p_c, _, converged = solve_fold(model, *start)
    return eqx.error_if(p_c, ~converged, "the fold was not found from this start: the model is too far from it")


def tipping_point(model, *, share_step: float = 0.02, relax_rounds: float = 200.0) -> dict:
    """Critical mass p_c of ``model`` (``NamingMeanField`` or ``MemoryMeanField``): the fold of the incumbent branch.

    The incumbent fixed point at p = 0 is found by integrating ``relax_rounds`` rounds from the initial state
    (then polished by Newton as the first point of the branch); the branch is followed in steps of the committed
    share (``share_step``, halved when Newton fails) until p decreases, and the fold is refined by ``solve_fold``
    from the highest point, with the branch's tangent there as the null-vector estimate.

    Returns ``p_c``, ``state`` (K,) and ``null_vector`` (K,) at the fold, the followed branch (``branch_share``,
    ``branch_p``), and ``start``, the arguments of ``solve_fold`` after ``model`` (``fold_threshold(other_model,
    start)`` is p_c of a nearby model, differentiably)."""
    dtype = jnp.zeros(()).dtype
    zero = jnp.zeros((), dtype)
    x = integrate(model, model.initial_state(zero).astype(dtype), zero, jnp.array([0.0, relax_rounds]))[-1]
    share = model.committed_share(x)
    x, p, converged = _branch_point(model, share, x, zero)
    if not converged:
        raise RuntimeError(f"no incumbent fixed point at p = 0 after {relax_rounds} rounds")
    branch = [(float(share), x, p)]
    step = share_step
    while len(branch) < 3 or branch[-1][2] >= branch[-2][2]:
        share, x, p = branch[-1]
        if share + step > 1 - float(p) or step < share_step / 64:
            raise RuntimeError(f"the incumbent branch has no fold up to p = {float(p):.4g}, share = {share:.4g}")
        if len(branch) > 1:  # secant predictor
            previous_share, previous_x, previous_p = branch[-2]
            slope = step / (share - previous_share)
            x_guess, p_guess = x + slope * (x - previous_x), p + slope * (p - previous_p)
        else:
            x_guess, p_guess = x, p
        new_x, new_p, converged = _branch_point(model, jnp.asarray(share + step, dtype), x_guess, p_guess)
        if converged and bool(jnp.all(jnp.isfinite(new_x))):
            branch.append((share + step, new_x, new_p))
        else:
            step /= 2
    top = max(range(len(branch)), key=lambda i: float(branch[i][2]))
    if top == 0:
        raise RuntimeError("the incumbent branch turns back at p = 0: no committed minority is needed")
    tangent = branch[top + 1][1] - branch[top - 1][1]
    tangent = tangent / jnp.linalg.norm(tangent)
    start = (branch[top][1], branch[top][2], tangent)
    x, p_c, v, converged = solve_fold(model, *start)
    if not converged:
        raise RuntimeError(f"the bordered Newton did not converge from the branch maximum p = {float(start[1]):.4g}")
    return {
        "p_c": float(p_c),
        "state": x,
        "null_vector": v,
        "branch_share": np.array([b[0] for b in branch]),
        "branch_p": np.array([float(b[2]) for b in branch]),
        "start": start,
    }


def binary_naming_threshold(beta=1.0, **options) -> dict:
    """Xie et al.'s critical fraction p_c for collapse probability ``beta`` (``tipping_point`` of
    ``binary_naming_model(beta)``; ``options`` go to it).

    Adds ``dp_c_dbeta`` and ``p_c_of_beta``, a ``jax.grad``-able function beta -> p_c for beta near this one
    (Newton from this fold, implicit differentiation)."""
    fold = tipping_point(binary_naming_model(beta), **options)

    def p_c_of_beta(beta):
        return fold_threshold(binary_naming_model(beta), fold["start"])

    return {
        **fold,
        "dp_c_dbeta": float(jax.grad(p_c_of_beta)(jnp.asarray(beta, jnp.float32))),
        "p_c_of_beta": p_c_of_beta,
    }


def memory_threshold(game: MemoryGame, *, windows: str | None = None, **options) -> dict:
    """Mean-field critical mass of a memory game from the prepared incumbent state (``tipping_point`` of
    ``MemoryMeanField(game, windows)``; ``options`` go to it).

    Adds ``sensitivities``, ``{field: dp_c/d field}`` for every floating-point array of the policy (implicit
    differentiation of the fold), ``p_c_of_policy``, a ``jax.grad``-able function policy -> p_c for policies near
    this one, and ``n_types``, ``partner_only`` (the window types used)."""
    if game.initial != "prepared":
        raise ValueError("the critical mass is the fold of the incumbent branch: use initial='prepared'")
    model = MemoryMeanField(game, windows)
    fold = tipping_point(model, **options)

    def p_c_of_policy(policy):
        return fold_threshold(eqx.tree_at(lambda m: m.game.policy, model, policy), fold["start"])

    parameters, rest = eqx.partition(game.policy, eqx.is_inexact_array)
    gradient = jax.grad(lambda parameters: p_c_of_policy(eqx.combine(parameters, rest)))(parameters)
    leaves = jax.tree_util.tree_leaves_with_path(gradient)
    sensitivities = {jax.tree_util.keystr(path, simple=True, separator="."): np.asarray(g) for path, g in leaves}
    return {
        **fold,
        "sensitivities": sensitivities,
        "p_c_of_policy": p_c_of_policy,
        "n_types": model.n_types,
        "partner_only": model.partner_only,
    }


__all__ = [
    "MemoryMeanField",
    "NamingMeanField",
    "binary_naming_model",
    "binary_naming_rhs",
    "binary_naming_threshold",
    "fold_threshold",
    "integrate",
    "memory_threshold",
    "solve_fold",
    "stability",
    "tipping_point",
]
