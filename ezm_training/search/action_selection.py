"""Which child to follow: the Gumbel score at the root and the deterministic rule inside the tree.

Both take `qtransform(tree, nodes [B, W], num_slots) -> TransformedQ`, i.e. `qtransforms.transformed_q`
with its knobs bound by the policy (as mctx binds its rules with functools.partial).
Shapes: B roots, W walkers, K candidates, D children per interior node.
"""

from __future__ import annotations

from typing import Callable


from ezm_training.search._arrays import Array, device_of, namespace, softmax
from ezm_training.search.qtransforms import TransformedQ
from ezm_training.search.tree import Tree

QTransform = Callable[[Tree, Array, int], TransformedQ]


def root_q(tree: Tree, qtransform: QTransform) -> TransformedQ:
    """TransformedQ of the root's K candidates, each field with the walker axis dropped ([B, K])."""
    xp = namespace(tree.node_visits)
    root = xp.zeros((tree.batch_size, 1), dtype=xp.int64, device=device_of(tree.node_visits))
    out = qtransform(tree, root, tree.num_candidates)
    return TransformedQ(*(x[:, 0, ...] for x in out))


def root_scores(tree: Tree, gumbel: Array, qtransform: QTransform) -> Array:
    """[B, K] g(a) + logit(a) + σ(q̂(a)): the sequential-halving ranking ([EZ2] cnode.cpp
    `sequential_halving`). The logit is 0 for sampled candidates; g is 0 unless Gumbel noise is on."""
    return gumbel + root_q(tree, qtransform).sigma


def interior_action(tree: Tree, nodes: Array, qtransform: QTransform, *, children_per_node: int) -> Array:
    """[B, W] child slot to follow from interior `nodes` [B, W]: argmax_a π'(a) − N(a) / (1 + N(node)).

    π' = softmax(logit + σ(q̂)) over the node's D children (logit 0). The rule is deterministic and drives
    the visit distribution towards π' (Gumbel MuZero Eq. 14; [EZ2] cnode.cpp `select_action`).
    Ties go to the lowest slot, as `argmax` returns the first maximum on every backend.
    """
    xp = namespace(nodes)
    q = qtransform(tree, nodes, children_per_node)
    pi_prime = softmax(q.sigma)
    visits = xp.astype(q.visits, pi_prime.dtype)
    node_visits = xp.astype(q.node_visits, pi_prime.dtype)
    return xp.argmax(pi_prime - visits / (1.0 + node_visits[..., None]), axis=-1)
