"""What the search and the model do with actions: numbers logged during training and reported by ezm-eval.

The failure these watch for (docs/design.md, "The policy-std loop"): a model whose reward, dynamics and Q
hardly depend on the action cannot rank candidates, the search then picks widened candidates about as
often as it draws them, and a policy fit to those picks widens itself until the actions saturate.

  search_stats        of one search call: how often the chosen candidate is a widened one, how many chosen
                      action dims sit at the tanh limits, the policy's pre-tanh std at the roots
  action_sensitivity  of the model at a batch of states: the spread of its reward, next latent and completed
                      Q across the K candidates at one state, over their spread across states. Near 0: the
                      model does not see what actions do; around 1: actions matter as much as the state

All are plain floats (means over the batch), so they go straight into train_log.csv and TensorBoard.
"""

from __future__ import annotations

import torch

from ezm_training.networks import WorldModel
from ezm_training.search import SearchOutput

# |a| above this counts as saturated: tanh(2.65); a joint target this close to its range limit is a
# bang-bang command on the H1 (reference/ezm.md §6).
SATURATED_ABS_ACTION = 0.99
_EPS = 1e-8


def search_stats(out: SearchOutput, root_std: torch.Tensor, *, num_policy_actions: int, widened: bool,
                 prefix: str) -> dict[str, float]:
    """`prefix`/chosen_widened, /saturated, /policy_std for one search over B roots (root_std [B, A])."""
    chosen_widened = (out.action_index >= num_policy_actions).float().mean() if widened else torch.zeros(())
    return {
        f"{prefix}/chosen_widened": float(chosen_widened),
        f"{prefix}/saturated": float((out.action.abs() > SATURATED_ABS_ACTION).float().mean()),
        f"{prefix}/policy_std": float(root_std.float().mean()),
    }


def _spread_ratio(values: torch.Tensor) -> torch.Tensor:
    """values [B, K, ...]: mean over states of the spread across candidates / the spread across states.

    Spread = root mean square distance from the mean (over the trailing dims for vectors)."""
    values = values.float().reshape(values.shape[0], values.shape[1], -1)
    across_candidates = (values - values.mean(1, keepdim=True)).pow(2).sum(-1).mean(1).sqrt().mean()
    per_state = values.mean(1)
    across_states = (per_state - per_state.mean(0, keepdim=True)).pow(2).sum(-1).mean().sqrt()
    return across_candidates / (across_states + _EPS)


@torch.no_grad()
def action_sensitivity(model: WorldModel, obs: torch.Tensor, task: torch.Tensor, candidates: torch.Tensor,
                       q_values: torch.Tensor | None = None) -> dict[str, float]:
    """sensitivity/reward, /dynamics (and /q with the search's completed Q [B, K]) at states obs [B, D]
    for candidate actions [B, K, A]: see the module docstring. Needs B >= 2."""
    batch, num_candidates, action_dim = candidates.shape
    latent = model.encode(obs.float(), task)
    rows = latent[:, None, :].expand(batch, num_candidates, latent.shape[-1]).reshape(batch * num_candidates, -1)
    row_task = task[:, None].expand(batch, num_candidates).reshape(-1)
    next_latent, reward_logits = model.next(rows, candidates.reshape(-1, action_dim).float(), row_task)
    reward = model.reward_support.decode(reward_logits.float()).reshape(batch, num_candidates)
    stats = {"sensitivity/reward": float(_spread_ratio(reward)),
             "sensitivity/dynamics": float(_spread_ratio(next_latent.reshape(batch, num_candidates, -1)))}
    if q_values is not None:
        stats["sensitivity/q"] = float(_spread_ratio(q_values))
    return stats


def gradient_norms(model: WorldModel) -> dict[str, float]:
    """grad_norm/<component> of the world model's parts after backward (before clipping)."""
    parts = {"representation": model._representation, "dynamics": model._dynamics, "reward": model._reward,
             "value": model._value_policy.values, "policy": model._value_policy.policy,
             "value_policy_trunk": model._value_policy.trunk, "consistency": (model._projector, model._predictor)}
    norms = {}
    for name, modules in parts.items():
        modules = modules if isinstance(modules, tuple) else (modules,)
        squares = [p.grad.detach().float().pow(2).sum() for m in modules for p in m.parameters() if p.grad is not None]
        norms[f"grad_norm/{name}"] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms
