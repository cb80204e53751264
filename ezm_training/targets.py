"""Training targets of one unroll window: n-step and mixed values, and the masks beyond the episode end.

Window of a sample starting at t, with `available` = transitions present from t on (the data ends at
o_{t+available}) and `terminated` = o_{t+available} is terminal. For state k = 0..U (o_{t+k}):

  value_mask[k]  = k ≤ available          the observation exists (a final one included)
  policy_mask[k] = k < available          an action was taken there (the search target is meaningful)
  reward_mask[k] = k < available, k < U   the transition t+k exists (reward and dynamics targets)

n-step value ([EZ2] batch_worker.py, td_steps 5), with terminations respected (our deviation from [EZM],
which drops them; docs/design.md): b = min(k + n, available) is the bootstrap index,

  G_k = Σ_{j=k}^{b−1} γ^{j−k} r_{t+j} + γ^{b−k} · V_tgt(o_{t+b}) · [not (terminated and b = available)]

so a termination inside the n steps bootstraps 0, and a time limit (truncation) bootstraps from the final
observation. Mixed value ([EZ2]/[EZM] `value_target: mixed`): from `mixed_value_start_step` on, a sample
outside its task's newest `mixed_value_threshold_per_task` transitions uses the search root value at its
non-final states instead.

Torch, so targets stay on the learner's device. Shapes: B batch, U unroll, n td steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Targets:
    """Everything the learner regresses onto, for states k = 0..U (transitions k = 0..U−1).

    value [B, U+1]; value_mask, policy_mask [B, U+1]; reward [B, U]; reward_mask [B, U];
    path_discount [B, U]: γ·(1 − [transition k terminates]) for the path-consistency target;
    policy_action [B, U+1, A]: the search's chosen action a*; improved_policy [B, U+1, K] and
    candidate_actions [B, U+1, K, A] for the "improved" policy loss; search_value [B, U+1] (logging).
    """

    value: torch.Tensor
    value_mask: torch.Tensor
    policy_mask: torch.Tensor
    reward: torch.Tensor
    reward_mask: torch.Tensor
    path_discount: torch.Tensor
    policy_action: torch.Tensor
    improved_policy: torch.Tensor
    candidate_actions: torch.Tensor
    search_value: torch.Tensor


def window_masks(available: torch.Tensor, unroll_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(value_mask [B, U+1], policy_mask [B, U+1], reward_mask [B, U]) as float, from available [B]."""
    k = torch.arange(unroll_steps + 1, device=available.device)
    value_mask = (k[None, :] <= available[:, None]).float()
    policy_mask = (k[None, :] < available[:, None]).float()
    return value_mask, policy_mask, policy_mask[:, :unroll_steps]


def nstep_values(rewards: torch.Tensor, bootstrap: torch.Tensor, available: torch.Tensor, terminated: torch.Tensor,
                 *, discount: float, td_steps: int, unroll_steps: int) -> torch.Tensor:
    """n-step value targets [B, U+1] (0 where the state does not exist).

    rewards [B, U+n] (r_t ..), bootstrap [B, U+n+1] = V_tgt(o_t ..), available [B] int, terminated [B] bool.
    """
    k = torch.arange(unroll_steps + 1, device=rewards.device)
    boot = torch.minimum(k[None, :] + td_steps, available[:, None])  # [B, U+1] bootstrap index b
    j = torch.arange(rewards.shape[1], device=rewards.device)
    # reward r_{t+j} counts for state k when k ≤ j < b, with weight γ^{j−k}
    in_sum = (j[None, None, :] >= k[None, :, None]) & (j[None, None, :] < boot[:, :, None])
    powers = torch.clamp(j[None, :] - k[:, None], min=0).to(rewards.dtype)  # [U+1, U+n]
    reward_part = (in_sum * discount**powers[None] * rewards[:, None, :]).sum(-1)
    ends_in_terminal = terminated[:, None] & (boot == available[:, None])
    bootstrap_value = torch.gather(bootstrap, 1, boot.clamp(max=bootstrap.shape[1] - 1))
    tail = discount ** (boot - k[None, :]).to(rewards.dtype) * bootstrap_value * (~ends_in_terminal).to(rewards.dtype)
    exists = k[None, :] <= available[:, None]
    return torch.where(exists, reward_part + tail, torch.zeros_like(reward_part))


def mixed_values(nstep: torch.Tensor, search_value: torch.Tensor, policy_mask: torch.Tensor, recent: torch.Tensor,
                 *, mode: str, use_search: bool) -> torch.Tensor:
    """Value targets [B, U+1] for `mode` "nstep" | "search" | "mixed".

    Search values are used only at states with an action (policy_mask), never at a final observation,
    whose n-step target already is 0 (terminal) or the bootstrap of the time limit. In "mixed" mode they are
    used from `use_search` (training step ≥ mixed_value_start_step) on, for samples that are not recent.
    """
    if mode == "nstep":
        return nstep
    searched = policy_mask > 0
    if mode == "mixed":
        if not use_search:
            return nstep
        searched = searched & ~recent[:, None]
    return torch.where(searched, search_value, nstep)


def path_discounts(available: torch.Tensor, terminated: torch.Tensor, discount: float,
                   unroll_steps: int) -> torch.Tensor:
    """[B, U]: γ for transition k, 0 when it is the terminating transition (no value after a terminal)."""
    k = torch.arange(unroll_steps, device=available.device)
    terminal = terminated[:, None] & (k[None, :] + 1 == available[:, None])
    return discount * (~terminal).float()
