"""One batched phase step of the search: descend, expand with one model call, back up.

A phase step of sequential halving (seq_halving.py) gives each of W surviving root candidates one
simulation. Those W simulations go down W *different* root children, so for all B roots together they
are B·W independent walks, and the step makes ONE `recurrent_fn` call of B·W rows. For N = 32 and
K = 16 the search makes 4 calls (16, 8, 4 and 4 rows per root) instead of 32 calls of 1 row per root.

How this differs from the strictly sequential order of [EZ2] (one simulation at a time, each one
descending, expanding and backing up before the next starts):
- Interior selections of walk j read the root's tree-wide min/max statistics as they were at the start
  of the step; sequentially they would also include the backups of walks 0..j-1 of the same step. This
  changes q̂ (hence π' and maybe the chosen interior child) only where those backups widened the range.
- Nothing else differs. The walks of one step live in disjoint subtrees (one per root child), so no walk
  writes a node that another walk of the step reads. The root's own statistics are not read during a
  step (the root rule is a fixed round-robin over the survivors); they are read at the next halving
  and at the end, when every backup is in. Walk j of a step expands node `first_node + j`, the node the
  j-th sequential simulation would expand, and child actions are keyed by node index, not call order,
  so the expansions are the same. The root's value sum adds the W backups at once, so it may differ
  from the sequential sum by float rounding.
- The schedule is EZ2's: survivors visited round-robin in rank order, a truncated last step takes the
  top-ranked ones (EZ2 `do_equal_visit` picks the first least-visited survivor).

No step reads a value back to the host: the walk depth is bounded by the visits each survivor had before
the step (a subtree with v expanded nodes has no path through more than v of them), a number the
schedule knows in advance, so descent and backup loop a fixed number of times with masks.

Shapes: B roots, W walkers per root, S nodes, D children per interior node, A action dims, L latent.
"""

from __future__ import annotations

from ezm_training.search._arrays import Array, batch_index, device_of, namespace
from ezm_training.search.action_selection import QTransform, interior_action
from ezm_training.search.contracts import RecurrentFn
from ezm_training.search.sampling import sample_child_actions
from ezm_training.search.tree import Tree


def run_phase_step(
    tree: Tree,
    root_slots: Array,
    *,
    prior_visits: int,
    first_node: int,
    recurrent_fn: RecurrentFn,
    keys: Array,
    qtransform: QTransform,
    children_per_node: int,
    discount: float,
    action_clip: float,
    child_noise: Array | None = None,
) -> None:
    """Run one simulation below each of the root slots [B, W]; writes nodes first_node..first_node+W-1.

    prior_visits: visits every one of these root children has before the step (from the schedule).
    child_noise: `sampling.child_noise_table` for this search, or None to draw interior noise lazily.
    """
    parent, slot = _descend(tree, root_slots, prior_visits, qtransform, children_per_node)
    action = _edge_actions(tree, parent, slot, prior_visits, keys, children_per_node, action_clip, child_noise)
    _expand(tree, parent, slot, action, first_node, recurrent_fn)
    _backward(tree, first_node, root_slots.shape[1], prior_visits, discount)


def _descend(tree: Tree, root_slots: Array, prior_visits: int, qtransform: QTransform, children_per_node: int):
    """Walk from each root slot [B, W] to the first unexpanded slot: returns (parent, slot), each [B, W]."""
    xp = namespace(root_slots)
    b2 = batch_index(root_slots, 2)
    parent = xp.full(root_slots.shape, Tree.ROOT_INDEX, dtype=xp.int64, device=device_of(root_slots))
    slot = root_slots
    if prior_visits == 0:  # the root children themselves are new
        return parent, slot
    node = tree.children_index[b2, parent, slot]
    for _ in range(prior_visits - 1):  # enough to reach an unexpanded slot (module docstring)
        expanded = node != Tree.UNVISITED
        # A walk that has stopped sits on the sentinel node (UNVISITED), whose children are UNVISITED
        # too: its choice is masked out below and its `node` stays put.
        choice = interior_action(tree, node, qtransform, children_per_node=children_per_node)
        parent = xp.where(expanded, node, parent)
        slot = xp.where(expanded, choice, slot)
        node = tree.children_index[b2, node, choice]
    # The last level needs no selection rule. The subtree of a root child visited v times holds v nodes,
    # so a walk still on an expanded node here has passed all of them: the node has no expanded child,
    # every slot has the same completed Q and no visits, and the rule's argmax picks the first slot.
    expanded = node != Tree.UNVISITED
    return xp.where(expanded, node, parent), xp.where(expanded, xp.zeros_like(slot), slot)


def _edge_actions(tree: Tree, parent: Array, slot: Array, prior_visits: int, keys: Array, children_per_node: int,
                  action_clip: float, child_noise: Array | None) -> Array:
    """Actions [B, W, A] on the edges (parent, slot) about to be expanded."""
    b2 = batch_index(parent, 2)
    if prior_visits == 0:  # every walk stops at a root slot: a sampled candidate
        return tree.candidate_actions[b2, slot]
    # Every walk passed an expanded root child, so every parent is an interior node.
    return sample_child_actions(
        keys, parent, slot, tree.policy_mean[b2, parent], tree.policy_std[b2, parent],
        children_per_node=children_per_node, clip=action_clip, noise_table=child_noise,
    )


def _expand(tree: Tree, parent: Array, slot: Array, action: Array, first_node: int, recurrent_fn: RecurrentFn) -> None:
    """One model call for all B·W new nodes; writes them as nodes first_node..first_node+W-1."""
    xp = namespace(parent)
    num_roots, width = parent.shape
    b2 = batch_index(parent, 2)
    latent_shape = tuple(tree.latents.shape[2:])
    action_dim = action.shape[-1]
    latent = tree.latents[b2, parent]
    out = recurrent_fn(
        xp.reshape(latent, (num_roots * width,) + latent_shape),
        xp.reshape(action, (num_roots * width, action_dim)),
    )
    new = slice(first_node, first_node + width)
    tree.latents[:, new] = xp.reshape(out.latent, (num_roots, width) + latent_shape)
    tree.policy_mean[:, new] = xp.reshape(out.policy_mean, (num_roots, width, action_dim))
    tree.policy_std[:, new] = xp.reshape(out.policy_std, (num_roots, width, action_dim))
    tree.raw_values[:, new] = xp.reshape(out.value, (num_roots, width))
    tree.node_rewards[:, new] = xp.reshape(out.reward, (num_roots, width))
    tree.parents[:, new] = parent
    new_index = xp.arange(first_node, first_node + width, dtype=xp.int64, device=device_of(parent))
    # (parent, slot) pairs are distinct within a step: the walks are in disjoint subtrees.
    tree.children_index[b2, parent, slot] = xp.broadcast_to(new_index[None, :], parent.shape)


def _backward(tree: Tree, first_node: int, width: int, prior_visits: int, discount: float) -> None:
    """Back the new nodes' values up to the root ([EZ2] cnode.cpp `back_propagate`).

    Each node on a path adds the return G below it to its value sum and one visit, then passes
    reward + γ·G up. Every such Q(parent, node) enters the root's min/max statistics.
    """
    xp = namespace(tree.node_visits)
    num_roots = tree.batch_size
    b2 = batch_index(tree.node_visits, 2)
    root = Tree.ROOT_INDEX
    new = slice(first_node, first_node + width)
    node = xp.broadcast_to(
        xp.arange(first_node, first_node + width, dtype=xp.int64, device=device_of(tree.node_visits))[None, :],
        (num_roots, width),
    )
    value = tree.raw_values[:, new]  # G at the new leaf is its network value
    # The new leaves themselves (level 0) are never the root: no masks there.
    tree.node_value_sum[:, new] += value
    tree.node_visits[:, new] += 1
    q = tree.node_rewards[:, new] + discount * value
    parent = tree.parents[:, new]
    low, high = q, q  # [B, W] running min/max of this step's Q values, reduced once at the end
    root_q = xp.where(parent == root, q, xp.zeros_like(q))
    node, value = parent, q
    inf = float("inf")
    for _ in range(prior_visits):  # a new leaf is at most prior_visits + 1 edges below the root
        active = node != root
        # Finished walks point at the root and add 0 there; live walks touch distinct nodes.
        tree.node_value_sum[b2, node] += xp.where(active, value, 0.0)
        tree.node_visits[b2, node] += xp.astype(active, xp.int64)
        q = tree.node_rewards[b2, node] + discount * value
        low = xp.minimum(low, xp.where(active, q, inf))
        high = xp.maximum(high, xp.where(active, q, -inf))
        parent = tree.parents[b2, node]
        root_q = xp.where(active & (parent == root), q, root_q)
        value = xp.where(active, q, value)
        node = xp.where(active, parent, root)
    tree.node_value_sum[:, root] += xp.sum(root_q, axis=1)
    tree.node_visits[:, root] += width
    # [EZ2]/[EZM] back_propagate also feed the root's own step, reward 0 + γ·G, into the statistics.
    root_step = discount * root_q
    low, high = xp.minimum(low, root_step), xp.maximum(high, root_step)
    tree.value_min[...] = xp.minimum(tree.value_min, xp.min(low, axis=1))
    tree.value_max[...] = xp.maximum(tree.value_max, xp.max(high, axis=1))
