"""Reanalysis: a sampled batch -> fresh targets from the target model ([EZ2] ez/worker/batch_worker.py).

For continuous control every sample is reanalysed ([EZ2] ignores reanalyze_ratio there): the search is
re-run with the target model at all U+1 states of every window (one batched `gumbel_search` call of
B·(U+1) roots), giving the policy target (chosen action a*, improved policy) and the search root value
(the "search" half of the mixed value target). Value bootstraps V_tgt(o) come from the target model's
initial inference at every observation of the window.

`Reanalyzer.__call__(batch, model, step)` is a pure function of (batch, target weights, step): the search
keys are derived from (seed, step), so it can run in another process (a Ray actor later) and a resumed
run reproduces the same targets.
"""

from __future__ import annotations

import torch

from ezm_training import targets as targets_lib
from ezm_training.config import EZMConfig
from ezm_training import diagnostics
from ezm_training.model_search import search_from_root, search_keys
from ezm_training.networks import WorldModel
from ezm_training.replay import Batch

# Stream offset that keeps reanalysis keys apart from the collector's (which fold in env steps).
_REANALYZE_KEY_OFFSET = 1 << 40


def batch_to_tensors(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """The numpy batch as tensors on `device` (one host-to-device copy per array)."""
    return {
        "obs": torch.as_tensor(batch.obs, device=device),
        "actions": torch.as_tensor(batch.actions, device=device),
        "rewards": torch.as_tensor(batch.rewards, device=device),
        "available": torch.as_tensor(batch.available, device=device),
        "terminated": torch.as_tensor(batch.terminated, device=device),
        "task": torch.as_tensor(batch.task, device=device),
        "weights": torch.as_tensor(batch.weights, device=device),
        "recent": torch.as_tensor(batch.recent, device=device),
    }


class Reanalyzer:
    """Computes `Targets` for a batch with a given (target) model."""

    def __init__(self, cfg: EZMConfig):
        self.cfg = cfg
        self.last_stats: dict[str, float] = {}  # diagnostics of the last call (the policy targets, the model)

    @torch.no_grad()
    def __call__(self, data: dict[str, torch.Tensor], model: WorldModel, step: int) -> targets_lib.Targets:
        cfg = self.cfg
        unroll, td = cfg.unroll_steps, cfg.td_steps
        obs, task, available = data["obs"], data["task"], data["available"]
        batch, window, obs_dim = obs.shape

        # Bootstrap values at every observation of the window: [B, U+n+1]; the first U+1 are the search roots.
        flat_task = task[:, None].expand(batch, window).reshape(-1)
        initial = model.initial_inference(obs.reshape(-1, obs_dim), flat_task)
        values = initial.value.reshape(batch, window)

        # Search at the U+1 unroll states: [B·(U+1)] roots.
        roots = torch.arange(batch * window, device=obs.device).reshape(batch, window)[:, : unroll + 1].reshape(-1)
        root = initial._replace(latent=initial.latent[roots], value=initial.value[roots],
                                policy_mean=initial.policy_mean[roots], policy_std=initial.policy_std[roots],
                                value_logits=initial.value_logits[:, roots])
        state_task = flat_task[roots]
        keys = search_keys(cfg.seed + _REANALYZE_KEY_OFFSET, roots.shape[0], step, device=obs.device)
        out = search_from_root(model, root, state_task, keys, cfg, widen=True, reanalysis=True)
        self.last_stats = {
            **diagnostics.search_stats(out, root.policy_std, prefix="target", widened=True,
                                       num_policy_actions=cfg.num_policy_actions),
            **diagnostics.action_sensitivity(model, obs[:, 0], task, out.candidate_actions.reshape(
                batch, unroll + 1, cfg.num_sampled_actions, -1)[:, 0], out.q_values.reshape(batch, unroll + 1, -1)[:, 0]),
        }

        value_mask, policy_mask, reward_mask = targets_lib.window_masks(available, unroll)
        nstep = targets_lib.nstep_values(data["rewards"], values, available, data["terminated"],
                                         discount=cfg.discount, td_steps=td, unroll_steps=unroll)
        search_value = out.root_value.reshape(batch, unroll + 1).float()
        value = targets_lib.mixed_values(nstep, search_value, policy_mask, data["recent"], mode=cfg.value_target,
                                         use_search=step >= cfg.mixed_value_start_step)
        return targets_lib.Targets(
            value=value, value_mask=value_mask, policy_mask=policy_mask,
            reward=data["rewards"][:, :unroll], reward_mask=reward_mask,
            path_discount=targets_lib.path_discounts(available, data["terminated"], cfg.discount, unroll),
            policy_action=out.action.reshape(batch, unroll + 1, -1),
            improved_policy=out.improved_policy.reshape(batch, unroll + 1, -1),
            candidate_actions=out.candidate_actions.reshape(batch, unroll + 1, cfg.num_sampled_actions, -1),
            search_value=search_value,
        )
