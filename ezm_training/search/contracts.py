"""Contracts between the model and the search: frozen dataclasses with shapes.

Legend: B roots, M rows of one model call, K root candidates, A action dims, L latent (any trailing shape).
Arrays are numpy arrays or torch tensors (CPU or CUDA); one search call uses one framework and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ezm_training.search._arrays import Array


@dataclass(frozen=True)
class RootOutput:
    """Initial inference at the B roots.

    latent: [B, L] representation of the observation.
    value: [B] decoded scalar value (the model decodes supports; the search sees scalars only).
    policy_mean: [B, A] mean of the pre-tanh Gaussian policy.
    policy_std: [B, A] standard deviation of the pre-tanh Gaussian policy (> 0).
    """

    latent: Array
    value: Array
    policy_mean: Array
    policy_std: Array


@dataclass(frozen=True)
class RecurrentOutput:
    """One step of the learned model for M (latent, action) rows.

    latent: [M, L] next latent.
    reward: [M] decoded scalar reward of the transition.
    value: [M] decoded scalar value of the next latent.
    policy_mean, policy_std: [M, A] pre-tanh Gaussian policy at the next latent.
    """

    latent: Array
    reward: Array
    value: Array
    policy_mean: Array
    policy_std: Array


RecurrentFn = Callable[[Array, Array], RecurrentOutput]
"""`recurrent_fn(latent [M, L], action [M, A]) -> RecurrentOutput`. The caller binds the task id (and params).

Rows must be independent of each other (eval-mode BatchNorm, no cross-row ops): the search batches
rows of many roots into one call, and "a batch of roots equals one root at a time" relies on it. Call the
search under `torch.no_grad()`/`inference_mode()` when the model is torch: the tree is written in place.
"""


@dataclass(frozen=True)
class SearchOutput:
    """Result of `gumbel_search` for B roots.

    action: [B, A] the chosen candidate action (executed by the actor; also the a* of the policy loss).
    action_index: [B] int64 index of the chosen action among the K candidates.
    candidate_actions: [B, K, A] the sampled root candidates.
    improved_policy: [B, K] π' = softmax(logit + σ(q̂)) over the candidates (policy-training target).
    root_value: [B] mean of all values backed up at the root, the network value included.
    q_values: [B, K] completed Q of each candidate (mixed value where unvisited), not normalised.
    visit_counts: [B, K] int64 visits of each candidate.
    simulations_done: how many simulations ran (< num_simulations when stopped early).
    """

    action: Array
    action_index: Array
    candidate_actions: Array
    improved_policy: Array
    root_value: Array
    q_values: Array
    visit_counts: Array
    simulations_done: int
