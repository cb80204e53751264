"""`gumbel_search`: the sampled Gumbel search of EfficientZero V2 / EZ-M for a batch of roots.

It composes the modules of this package: sample K candidates (sampling.py), allocate the tree (tree.py),
run the precomputed sequential-halving schedule one batched phase step at a time (seq_halving.py,
phase_step.py), and read out the action, the improved policy and the root value. The same call serves the
actor (the action), reanalysis (π' and the root value as targets) and the deployment planner (anytime).

Knob defaults are EZ-M's continuous-control search ([EZM] ez/config/exp/humanoid_bench_state.yaml),
which equals EZ V2's ([EZ2] ez/config/exp/dmc_state.yaml) except for the discount.
"""

from __future__ import annotations

import functools
import numbers
from typing import Callable


from ezm_training.search import rng as rng_lib
from ezm_training.search._arrays import Array, batch_index, device_of, namespace, softmax
from ezm_training.search.action_selection import root_q, root_scores
from ezm_training.search.qtransforms import C_SCALE, C_VISIT, VALUE_MINMAX_DELTA, transformed_q
from ezm_training.search.sampling import ACTION_CLIP, child_noise_table, proposal_prior_logits, sample_candidates
from ezm_training.search.phase_step import run_phase_step
from ezm_training.search.seq_halving import best_survivor, halve, initial_survivors, phase_schedule
from ezm_training.search.tree import Tree, instantiate_tree, node_values
from ezm_training.search.contracts import RecurrentFn, RootOutput, SearchOutput


def gumbel_search(
    root: RootOutput,
    recurrent_fn: RecurrentFn,
    rng: Array | int,
    *,
    num_simulations: int = 32,  # [EZ2] dmc_state.yaml num_simulations; = [EZM]
    num_candidates: int = 16,  # K, [EZ2] num_sampled_actions (policy_action_num 4 + random_action_num 12)
    num_policy_actions: int = 4,  # [EZ2] policy_action_num: candidates drawn from π itself
    widen_std_factor: float = 3.0,  # [EZ2] std_magnification for the other K - 4 candidates
    widen: bool = True,  # False at evaluation: all K from π ([EZ2] add_noise=False)
    num_top_actions: int | None = None,  # m, survivors entering halving; None = K ([EZ2] num_top_actions 16)
    children_per_node: int = 2,  # D, children sampled per interior node ([EZ2] cy_mcts.py leaf_num = 2)
    discount: float = 0.99,  # [EZM] humanoid_bench_state.yaml; [EZ2] DMC uses 0.997 (per action repeat)
    c_visit: float = C_VISIT,  # 50, [EZ2] c_visit
    c_scale: float = C_SCALE,  # 0.1, [EZ2] c_scale
    value_minmax_delta: float = VALUE_MINMAX_DELTA,  # 0.01, [EZ2] value_minmax_delta
    gumbel_scale: float = 0.0,  # root Gumbel noise scale; 0 = off as in [EZ2] (use_gumble_noise False)
    root_prior: str = "uniform",  # "uniform": logit 0 ([EZ2] [EZM]); "proposal": log π/q (sampling.py)
    action_clip: float = ACTION_CLIP,  # 0.999, [EZ2] sample_actions clip
    should_stop: Callable[[int], bool] | None = None,
) -> SearchOutput:
    """Search B roots and return the action, the improved policy and the root value.

    root: network output at the roots (latent [B, L], value [B], policy_mean/std [B, A]).
    recurrent_fn: `(latent [M, L], action [M, A]) -> RecurrentOutput`, the model with its task bound.
    rng: per-root keys, int64 [B] in [0, 2**32) on the roots' device (rng.root_keys / rng.fold_in), or an
      int seed for `rng.root_keys(seed, B)`. Root b's random numbers depend on keys[b] only.
    should_stop: called between phase steps with the simulations done so far; True stops the search and
      returns what it has. The first phase step always runs, so at least min(K, N) candidates are
      evaluated. The callback runs on the host; a device deadline must account for async execution.

    All arrays are numpy or torch (any device); no value is copied to the host during the search.
    """
    xp = namespace(root.value)
    num_roots = root.value.shape[0]
    if not 0 <= num_policy_actions <= num_candidates:
        raise ValueError(f"num_policy_actions must be in [0, num_candidates], got {num_policy_actions}")
    num_top_actions = num_candidates if num_top_actions is None else num_top_actions
    if not 1 <= num_top_actions <= num_candidates:
        raise ValueError(f"num_top_actions must be in [1, num_candidates], got {num_top_actions}")
    keys = rng_lib.root_keys(int(rng), num_roots, like=root.value) if isinstance(rng, numbers.Integral) else rng
    schedule = phase_schedule(num_simulations, num_top_actions)  # validates num_simulations

    candidates = sample_candidates(
        keys, root.policy_mean, root.policy_std, num_candidates=num_candidates,
        num_policy_actions=num_policy_actions, widen_std_factor=widen_std_factor, widen=widen, clip=action_clip,
    )
    if root_prior not in ("uniform", "proposal"):
        raise ValueError(f"root_prior must be 'uniform' or 'proposal', got {root_prior!r}")
    # `gumbel` holds g(a) + logit(a), the two terms the root ranking adds to σ(q̂).
    logits = xp.zeros((num_roots, num_candidates), dtype=root.value.dtype, device=device_of(root.value))
    if root_prior == "proposal" and widen and num_policy_actions < num_candidates:
        logits = proposal_prior_logits(keys, num_candidates=num_candidates, num_policy_actions=num_policy_actions,
                                       widen_std_factor=widen_std_factor, action_dim=root.policy_mean.shape[-1],
                                       dtype=root.value.dtype)
    gumbel = logits
    if gumbel_scale > 0.0:
        row = xp.zeros((1,), dtype=xp.int64, device=device_of(root.value))
        noise = rng_lib.gumbel(keys, rng_lib.STREAM_GUMBEL, row, num_candidates, dtype=root.value.dtype)
        gumbel = logits + gumbel_scale * noise
    tree = instantiate_tree(root, candidates, num_simulations=num_simulations, children_per_node=children_per_node)
    child_noise = child_noise_table(keys, num_nodes=num_simulations + 1, children_per_node=children_per_node,
                                    action_dim=candidates.shape[-1], dtype=tree.policy_mean.dtype)
    qtransform = functools.partial(
        transformed_q, discount=discount, c_visit=c_visit, c_scale=c_scale, value_minmax_delta=value_minmax_delta
    )

    survivors = initial_survivors(gumbel, num_top_actions)  # [B, m], best first
    simulations_done = 0
    for index, step in enumerate(schedule):
        if index > 0 and should_stop is not None and should_stop(simulations_done):
            break
        if step.halve_before:
            survivors = halve(survivors, root_scores(tree, gumbel, qtransform), step.num_survivors)
        run_phase_step(
            tree, survivors[:, : step.num_visited], prior_visits=step.prior_visits,
            first_node=simulations_done + 1, recurrent_fn=recurrent_fn, keys=keys, qtransform=qtransform,
            children_per_node=children_per_node, discount=discount, action_clip=action_clip,
            child_noise=child_noise,
        )
        simulations_done += step.num_visited

    at_root = root_q(tree, qtransform)  # [B, K] fields, with the final statistics
    action_index = best_survivor(survivors, gumbel + at_root.sigma, at_root.visits)
    return SearchOutput(
        action=tree.candidate_actions[batch_index(action_index, 1), action_index],
        action_index=action_index,
        candidate_actions=candidates,
        improved_policy=softmax(logits + at_root.sigma),  # π' = softmax(logit + σ(q̂)) ([EZ2] get_root_policies)
        root_value=node_values(tree)[:, Tree.ROOT_INDEX],
        q_values=at_root.completed,
        visit_counts=at_root.visits,
        simulations_done=simulations_done,
    )

