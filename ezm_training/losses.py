"""The EZ-M loss terms, one small function each.

Every function returns (per-sample loss [B], log name). Nothing is reduced, masked or weighted here: the
learner multiplies by the unroll mask, the IS weight and the config weight (EZMConfig.*_weight), then
averages. There are no hidden factors (EZ's value CE carries a fixed 0.5 from its disabled IQL weighting;
EZMConfig.value_weight holds it instead).

Per sample and unroll step k = 0..K ([EZ2] ez/agents/base.py update_weights; [EZM] the same file):
  value_loss, policy_loss, entropy_loss            for every k (entropy_loss_from_noise: draws given)
  reward_loss, consistency_loss                    for k >= 1 (the transition into step k)
  path_consistency_loss                            for k < K ([EZM] path_consistency)

Shapes: B batch, A action dims, K candidates, H value heads, S support bins, P projection width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ezm_training.support import SupportSpec

# |a| limit before atanh, only to keep it finite: the search already clips candidates to ±cfg.action_clip.
_ATANH_LIMIT = 1.0 - 1e-6
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_COSINE_EPS = 1e-5  # norm floor of the cosine similarity; [EZ2] ez/utils/loss.py


def _soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """[..., S] logits and target probabilities -> [...] cross-entropy −Σ p·log softmax(logits)."""
    return -(target_probs * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def _log_prob_pre_tanh(mean: torch.Tensor, std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """log π(tanh u) [...] for u ~ N(mean, std), summed over the last (action) dim.

    log π(a) = Σ_d [log N(u; mean, std) − log(1 − tanh²u)], with the stable form
    log(1 − tanh²u) = 2(log 2 − u − softplus(−2u)) of [EZ2]'s TanhTransform (ez/utils/distribution.py).
    """
    gaussian = -0.5 * ((u - mean) / std) ** 2 - torch.log(std) - _LOG_SQRT_2PI
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gaussian - log_det).sum(-1)


def squashed_gaussian_log_prob(mean: torch.Tensor, std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log π(a) [...] of an action a in (−1, 1) under a = tanh(u), u ~ N(mean, std) [..., A]."""
    return _log_prob_pre_tanh(mean, std, torch.atanh(action.clamp(-_ATANH_LIMIT, _ATANH_LIMIT)))


def reward_loss(reward_logits: torch.Tensor, target_reward: torch.Tensor, support: SupportSpec):
    """Cross-entropy of [B, S] reward logits against the two-hot of the [B] target rewards."""
    return _soft_cross_entropy(reward_logits, support.two_hot(target_reward)), "loss/reward"


def value_loss(value_logits: torch.Tensor, target_value: torch.Tensor, support: SupportSpec):
    """Mean over the H heads of the cross-entropy of [H, B, S] logits against the two-hot [B] targets.

    Every head regresses the same target, as [EZM] `Value_loss`.
    """
    return _soft_cross_entropy(value_logits, support.two_hot(target_value)).mean(0), "loss/value"


def policy_loss(mean: torch.Tensor, std: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor | None = None):
    """Negative log-likelihood of search actions under the squashed Gaussian (mean, std) [B, A].

    actions [B, A], weights None: −log π(a*) of the chosen action, the "simple" loss that [EZ2] uses for
        A > 1 and [EZM] always (Gumbel MuZero's policy loss with the chosen action).
    actions [B, K, A], weights [B, K]: −Σ_k w_k·log π(a_k), the "full" loss [EZ2] uses for A = 1, with w the
        search's improved policy over the K candidates.
    """
    if weights is None:
        return -squashed_gaussian_log_prob(mean, std, actions), "loss/policy"
    log_prob = squashed_gaussian_log_prob(mean.unsqueeze(1), std.unsqueeze(1), actions)  # [B, K]
    return -(weights * log_prob).sum(-1), "loss/policy"


def entropy_loss(mean: torch.Tensor, std: torch.Tensor, num_samples: int, generator: torch.Generator | None = None):
    """Negative entropy −H(π) [B], estimated as mean log π over `num_samples` reparameterised actions.

    Minimising it raises the entropy: the sign of [EZ2] (`policy_entropy_loss -= entropy`). The released
    [EZM] tdmpc2 branch instead adds coef·A·log N(ε; 0, σ), which lowers σ: an entropy penalty
    ([EZM] ez/agents/base.py `continuous_loss`). The log-density is taken at the pre-tanh sample itself,
    so unlike [EZ2] (tanh, clip to ±0.999, atanh) nothing is clipped. Pass a seeded `generator` for
    reproducible estimates.
    """
    noise = torch.randn((num_samples, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
    return entropy_loss_from_noise(mean, std, noise)


def entropy_loss_from_noise(mean: torch.Tensor, std: torch.Tensor, noise: torch.Tensor):
    """`entropy_loss` with its standard-normal draws given, noise [S, B, A]: the learner draws them before
    its (optionally compiled) loss, since torch.compile cannot trace a torch.Generator."""
    return _log_prob_pre_tanh(mean, std, mean + std * noise).mean(0), "loss/entropy"


def consistency_loss(predicted: torch.Tensor, target: torch.Tensor):
    """Negative cosine similarity [B] of predicted [B, P] and target [B, P] projections (SimSiam, [EZ2]).

    predicted = model.predict(model.project(dynamics latent)); target = model.project(encode(real next obs)).
    The target's gradient is stopped here, so callers cannot forget it.
    """
    predicted = F.normalize(predicted.float(), dim=-1, eps=_COSINE_EPS)
    target = F.normalize(target.detach().float(), dim=-1, eps=_COSINE_EPS)
    return -(predicted * target).sum(-1), "loss/consistency"


def path_consistency_loss(value_logits: torch.Tensor, reward_logits: torch.Tensor, next_value_logits: torch.Tensor,
                          discount: float, reward_support: SupportSpec, value_support: SupportSpec):
    """Self-consistency of imagined steps ([EZM] path_consistency, after Farquhar et al., "Self-Consistent
    Models and Values", NeurIPS 2021).

    V̂_k ([H, B, S] value_logits) is regressed onto stop-grad(r̂_k + γ·mean_h V̂_{k+1}): r̂_k is the decoded
    reward of the model's transition k -> k+1 ([B, S] reward_logits) and V̂_{k+1} the decoded heads of
    next_value_logits [H, B, S]. The head mean, not the min, as [EZM]. Mean over heads of the CE.
    """
    with torch.no_grad():
        target = reward_support.decode(reward_logits) + discount * value_support.decode(next_value_logits).mean(0)
    loss, _ = value_loss(value_logits, target, value_support)
    return loss, "loss/path_consistency"
