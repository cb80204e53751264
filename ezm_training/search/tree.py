"""The search tree of B roots: fixed-size arrays allocated before the first simulation (mctx style).

Node 0 is the root; the node expanded by simulation i is node i + 1, so a search of N simulations needs
N + 1 nodes and its memory is known up front. Every node has C = max(K, D) child slots: the root uses
its K candidate slots, an interior node its first D (`leaf_num` 2 in [EZ2]). A slot is UNVISITED until
the search expands it; a node is expanded exactly when it is first visited, so "visited" and
"expanded" are the same thing here.

One more node, the last (NULL_INDEX = -1), is a sentinel that is never written: zero visits, value and
reward, no parent, no children. UNVISITED and NO_PARENT are -1 too, so a gather through an unexpanded
slot reads the sentinel's neutral statistics (q = 0, 0 visits) and a walk that has stopped stays on
it, with no mask; at batch 1 every mask is a separate array op, and the planner pays for each.

Edge actions are not stored per slot: root slots hold the K sampled candidates, and the action of an
interior slot is re-derived from the parent's policy and the counter-based RNG (see sampling.py).

Shapes: B roots, S = N + 2 nodes (the sentinel included), C child slots, K candidates, A action dims, L latent (any trailing shape).
The dataclass is frozen, but the search writes into its arrays in place: one allocation per search call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple


from ezm_training.search._arrays import Array, batch_index, clip, device_of, namespace
from ezm_training.search.contracts import RootOutput


@dataclass(frozen=True)
class Tree:
    """All search state for B roots.

    node_visits: [B, S] int64 visits; the root starts at 1 for its network value.
    node_value_sum: [B, S] sum of the values backed up through each node, its own network value included
      ([EZ2] cnode.cpp keeps them in `estimated_value_lst`; the node value is their mean).
    raw_values: [B, S] network value of each node.
    node_rewards: [B, S] reward of the edge from the parent into the node (0 at the root).
    parents: [B, S] int64 parent node index; NO_PARENT at the root and at nodes not yet expanded.
    children_index: [B, S, C] int64 node index of each child slot; UNVISITED until expanded.
    latents: [B, S, L] latent of each node.
    policy_mean, policy_std: [B, S, A] the node's pre-tanh Gaussian policy; its children are drawn from it.
    candidate_actions: [B, K, A] the root candidates (actions of the root's slots).
    value_min, value_max: [B] tree-wide min/max of backed-up values, for Q normalisation.
    """

    node_visits: Array
    node_value_sum: Array
    raw_values: Array
    node_rewards: Array
    parents: Array
    children_index: Array
    latents: Array
    policy_mean: Array
    policy_std: Array
    candidate_actions: Array
    value_min: Array
    value_max: Array

    ROOT_INDEX: ClassVar[int] = 0
    NULL_INDEX: ClassVar[int] = -1  # the sentinel node (module docstring)
    NO_PARENT: ClassVar[int] = NULL_INDEX
    UNVISITED: ClassVar[int] = NULL_INDEX

    @property
    def batch_size(self) -> int:
        return self.node_visits.shape[0]

    @property
    def num_simulations(self) -> int:
        return self.node_visits.shape[1] - 2  # the root and the sentinel

    @property
    def num_candidates(self) -> int:
        return self.candidate_actions.shape[1]


def instantiate_tree(
    root: RootOutput, candidate_actions: Array, *, num_simulations: int, children_per_node: int
) -> Tree:
    """Allocate the tree for `num_simulations` and write the root: visit 1, value = network value.

    candidate_actions: [B, K, A]; children_per_node: D, the slots of an interior node.
    """
    xp = namespace(root.value)
    dev = device_of(root.value)
    num_roots, num_candidates, action_dim = candidate_actions.shape
    num_nodes = num_simulations + 2  # root, one node per simulation, the sentinel
    num_slots = max(num_candidates, children_per_node)
    fdtype = root.value.dtype

    def zeros(shape, dtype=fdtype):
        return xp.zeros(shape, dtype=dtype, device=dev)

    def full(shape, fill, dtype):
        return xp.full(shape, fill, dtype=dtype, device=dev)

    tree = Tree(
        node_visits=zeros((num_roots, num_nodes), xp.int64),
        node_value_sum=zeros((num_roots, num_nodes)),
        raw_values=zeros((num_roots, num_nodes)),
        node_rewards=zeros((num_roots, num_nodes)),
        parents=full((num_roots, num_nodes), Tree.NO_PARENT, xp.int64),
        children_index=full((num_roots, num_nodes, num_slots), Tree.UNVISITED, xp.int64),
        latents=zeros((num_roots, num_nodes) + tuple(root.latent.shape[1:]), root.latent.dtype),
        policy_mean=zeros((num_roots, num_nodes, action_dim)),
        policy_std=zeros((num_roots, num_nodes, action_dim)),
        candidate_actions=candidate_actions,
        # Empty statistics: normalisation is only read after the first backup has filled them.
        value_min=full((num_roots,), float("inf"), fdtype),
        value_max=full((num_roots,), -float("inf"), fdtype),
    )
    root_index = Tree.ROOT_INDEX
    tree.node_visits[:, root_index] = 1
    tree.node_value_sum[:, root_index] = root.value
    tree.raw_values[:, root_index] = root.value
    tree.latents[:, root_index] = root.latent
    tree.policy_mean[:, root_index] = root.policy_mean
    tree.policy_std[:, root_index] = root.policy_std
    return tree


def node_values(tree: Tree) -> Array:
    """[B, S] mean backed-up value of each node (0 where not expanded)."""
    xp = namespace(tree.node_value_sum)
    visits = xp.astype(tree.node_visits, tree.node_value_sum.dtype)
    return tree.node_value_sum / clip(visits, 1.0, None)


class ChildStats(NamedTuple):
    """Statistics of the first C child slots of W nodes per root.

    q: [B, W, C] reward + discount · value of each expanded child (0 where UNVISITED).
    visits: [B, W, C] int64 visits (0 where UNVISITED).
    raw_value: [B, W] network value of the node itself.
    node_visits: [B, W] int64 visits of the node itself.
    """

    q: Array
    visits: Array
    raw_value: Array
    node_visits: Array


def child_stats(tree: Tree, nodes: Array, *, num_slots: int, discount: float) -> ChildStats:
    """Gather the children of `nodes` [B, W] (int64 node indices) over their first `num_slots` slots."""
    xp = namespace(nodes)
    b2 = batch_index(nodes, 2)
    b3 = batch_index(nodes, 3)
    # UNVISITED slots read the sentinel node: 0 visits, and q = 0 + discount · 0/1 = 0 exactly.
    children = tree.children_index[b2, nodes, :num_slots]  # [B, W, C]
    visits = tree.node_visits[b3, children]
    value_sum = tree.node_value_sum[b3, children]
    value = value_sum / clip(xp.astype(visits, value_sum.dtype), 1.0, None)
    q = tree.node_rewards[b3, children] + discount * value
    return ChildStats(q=q, visits=visits, raw_value=tree.raw_values[b2, nodes], node_visits=tree.node_visits[b2, nodes])
