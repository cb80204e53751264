"""Completed, normalised and scaled Q values: σ(q̂) of Gumbel MuZero as EfficientZero V2 computes it.

For the children of a node ([EZ2] ez/mcts/ctree/cnode.cpp `get_transformed_completed_Qs`):
1. completed Q: r + γ·V(child) for a visited child, the mixed value v_mix for an unvisited one;
2. q̂ = (Q - min) / max(max - min, delta), clipped to [0, 1], with min/max over every value backed up
   anywhere in this root's tree ([EZ2] cminimax.cpp, `value_minmax_delta` 0.01);
3. σ(q̂) = (c_visit + max_b N(b)) · c_scale · q̂ with c_visit 50, c_scale 0.1 ([EZ2] dmc_state.yaml;
   Danihelka et al. 2022, "Policy improvement by planning with Gumbel", Eq. 8 and Appendix D).

Sampled candidates carry a uniform prior (logit 0, [EZ2] cy_mcts.py `uniform_policy`), because they
were drawn from π already; so π-weighted sums over children are plain means here.
"""

from __future__ import annotations

from typing import NamedTuple

from ezm_training.search._arrays import Array, clip, namespace
from ezm_training.search.tree import Tree, child_stats

C_VISIT = 50.0  # [EZ2] ez/config/exp/dmc_state.yaml c_visit; = [EZM] humanoid_bench_state.yaml
C_SCALE = 0.1  # [EZ2] dmc_state.yaml c_scale
VALUE_MINMAX_DELTA = 0.01  # [EZ2] dmc_state.yaml value_minmax_delta


def mixed_value(raw_value: Array, q: Array, visits: Array) -> Array:
    """v_mix [...] = (v̂ + ΣN · mean_{visited} q) / (1 + ΣN), from q, visits [..., C] and v̂ [...].

    This is the paper's form (Gumbel MuZero Eq. 33 with a uniform prior; mctx `_compute_mixed_value`):
    the network value v̂ and the children's total visits ΣN. [EZ2]/[EZM] cnode.cpp `get_v_mix` use the
    node's running mean value and its own visit count (= 1 + ΣN) instead; the two agree when no child is
    visited and differ only in how much of the backed-up mean enters. With no visited child, v_mix = v̂.
    """
    xp = namespace(q)
    visited = xp.astype(visits > 0, q.dtype)
    num_visited = xp.sum(visited, axis=-1)
    total_visits = xp.astype(xp.sum(visits, axis=-1), q.dtype)
    mean_q = xp.sum(q * visited, axis=-1) / clip(num_visited, 1.0, None)
    return (raw_value + total_visits * mean_q) / (1.0 + total_visits)


def completed_q(raw_value: Array, q: Array, visits: Array) -> Array:
    """[..., C] q where visited, v_mix elsewhere."""
    xp = namespace(q)
    return xp.where(visits > 0, q, mixed_value(raw_value, q, visits)[..., None])


def normalize_q(
    q: Array, value_min: Array, value_max: Array, *, value_minmax_delta: float = VALUE_MINMAX_DELTA
) -> Array:
    """q̂ [..., C] in [0, 1] from the tree-wide min/max [...] of this root.

    A range below `value_minmax_delta` (zero included) is widened to delta, so near-equal values are not
    blown up to the full [0, 1] scale. ([EZ2] cminimax.cpp leaves q un-normalised when the range is
    exactly 0; that only happens before two distinct values exist, which our schedule never reads.)
    """
    scale = clip(value_max - value_min, value_minmax_delta, None)
    return clip((q - value_min[..., None]) / scale[..., None], 0.0, 1.0)


def sigma(q_hat: Array, visits: Array, *, c_visit: float = C_VISIT, c_scale: float = C_SCALE) -> Array:
    """σ(q̂) [..., C] = (c_visit + max_b N(b)) · c_scale · q̂, max over the node's children."""
    xp = namespace(q_hat)
    max_visits = xp.astype(xp.max(visits, axis=-1, keepdims=True), q_hat.dtype)
    return (c_visit + max_visits) * c_scale * q_hat


class TransformedQ(NamedTuple):
    """completed: [B, W, C] completed Q; sigma: [B, W, C] σ(q̂); visits: [B, W, C]; node_visits: [B, W]."""

    completed: Array
    sigma: Array
    visits: Array
    node_visits: Array


def transformed_q(
    tree: Tree,
    nodes: Array,
    num_slots: int,
    *,
    discount: float,
    c_visit: float = C_VISIT,
    c_scale: float = C_SCALE,
    value_minmax_delta: float = VALUE_MINMAX_DELTA,
) -> TransformedQ:
    """Completed Q and σ(q̂) of the first `num_slots` children of `nodes` [B, W]."""
    stats = child_stats(tree, nodes, num_slots=num_slots, discount=discount)
    completed = completed_q(stats.raw_value, stats.q, stats.visits)
    value_min = tree.value_min[:, None]  # [B, 1] against W nodes
    value_max = tree.value_max[:, None]
    q_hat = normalize_q(completed, value_min, value_max, value_minmax_delta=value_minmax_delta)
    return TransformedQ(
        completed=completed,
        sigma=sigma(q_hat, stats.visits, c_visit=c_visit, c_scale=c_scale),
        visits=stats.visits,
        node_visits=stats.node_visits,
    )
