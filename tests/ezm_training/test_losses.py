"""Each loss term on tiny inputs whose answer is computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ezm_training import losses
from ezm_training.support import SupportSpec
from ezm_training.value_transform import h_inv

# 3 atoms at h-space -h(5), 0, h(5): a scalar 0 is a one-hot on the middle atom.
SUPPORT = SupportSpec(-5.0, 5.0, 3)
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def test_reward_loss_is_cross_entropy_against_two_hot():
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    loss, name = losses.reward_loss(logits, torch.tensor([0.0, 0.0]), SUPPORT)
    assert name == "loss/reward"
    log_z = math.log(math.e + math.e**2 + math.e**3)
    torch.testing.assert_close(loss, torch.tensor([math.log(3.0), log_z - 2.0]))


def test_reward_loss_splits_between_two_atoms():
    # A target halfway (in h-space) between the middle and top atoms puts 0.5 on each.
    target = h_inv(SUPPORT.atoms(torch.zeros(1))[2:] / 2)
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    loss, _ = losses.reward_loss(logits, target, SUPPORT)
    log_p = torch.log_softmax(logits, -1)[0]
    torch.testing.assert_close(loss, -(0.5 * log_p[1] + 0.5 * log_p[2]).reshape(1), rtol=1e-5, atol=1e-5)


def test_value_loss_is_the_mean_over_heads():
    logits = torch.tensor([[[0.0, 0.0, 0.0]], [[0.0, math.log(2.0), 0.0]]])  # H=2, B=1
    loss, name = losses.value_loss(logits, torch.tensor([0.0]), SUPPORT)
    assert name == "loss/value"
    torch.testing.assert_close(loss, torch.tensor([(math.log(3.0) + math.log(2.0)) / 2]))


def test_policy_loss_chosen_action_at_the_mode():
    mean, std = torch.zeros(2, 4), torch.ones(2, 4)
    loss, name = losses.policy_loss(mean, std, torch.zeros(2, 4))
    assert name == "loss/policy"
    # u = atanh(0) = 0: −log N(0; 0, 1) per dim, and the tanh log-det is log(1 − 0) = 0.
    torch.testing.assert_close(loss, torch.full((2,), 4 * LOG_SQRT_2PI))


def test_policy_loss_includes_the_tanh_jacobian():
    mean, std = torch.zeros(1, 1), torch.full((1, 1), 2.0)
    action = torch.tensor([[0.5]])
    u = math.atanh(0.5)
    expected = 0.5 * (u / 2.0) ** 2 + math.log(2.0) + LOG_SQRT_2PI + math.log(1 - 0.5**2)
    loss, _ = losses.policy_loss(mean, std, action)
    torch.testing.assert_close(loss, torch.tensor([expected]))


def test_policy_loss_weighted_over_candidates():
    mean, std = torch.zeros(1, 2), torch.ones(1, 2)
    actions = torch.tensor([[[0.0, 0.0], [0.5, -0.5]]])  # [B=1, K=2, A=2]
    weights = torch.tensor([[0.25, 0.75]])
    nll0 = 2 * LOG_SQRT_2PI
    u = math.atanh(0.5)
    nll1 = 2 * (0.5 * u**2 + LOG_SQRT_2PI + math.log(0.75))
    loss, _ = losses.policy_loss(mean, std, actions, weights)
    torch.testing.assert_close(loss, torch.tensor([0.25 * nll0 + 0.75 * nll1]))


def test_policy_loss_clips_actions_at_the_bounds():
    loss, _ = losses.policy_loss(torch.zeros(1, 3), torch.ones(1, 3), torch.ones(1, 3))
    assert torch.isfinite(loss).all()


def test_entropy_loss_matches_the_gaussian_entropy_for_a_narrow_policy():
    # With std 0.01 around 0, tanh is the identity to 1e-4, so H ≈ A·½·log(2πe·σ²).
    mean, std = torch.zeros(3, 2), torch.full((3, 2), 0.01)
    generator = torch.Generator().manual_seed(0)
    loss, name = losses.entropy_loss(mean, std, num_samples=4096, generator=generator)
    assert name == "loss/entropy"
    entropy = 2 * 0.5 * math.log(2 * math.pi * math.e * 0.01**2)
    torch.testing.assert_close(loss, torch.full((3,), -entropy), rtol=0, atol=0.05)


def test_entropy_loss_gradient_raises_the_std():
    std = torch.full((1, 2), 0.5, requires_grad=True)
    loss, _ = losses.entropy_loss(torch.zeros(1, 2), std, 256, torch.Generator().manual_seed(1))
    loss.sum().backward()
    assert (std.grad < 0).all()  # descending the loss increases std: an entropy bonus (EZ V2 sign)


def test_entropy_loss_is_reproducible_with_a_seeded_generator():
    mean, std = torch.randn(2, 3), torch.rand(2, 3) + 0.1
    first, _ = losses.entropy_loss(mean, std, 64, torch.Generator().manual_seed(7))
    second, _ = losses.entropy_loss(mean, std, 64, torch.Generator().manual_seed(7))
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_consistency_loss_is_negative_cosine_and_stops_the_target_gradient():
    predicted = torch.tensor([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], requires_grad=True)
    loss, name = losses.consistency_loss(predicted, target)
    assert name == "loss/consistency"
    torch.testing.assert_close(loss, torch.tensor([-1.0, -0.8, 1.0]))
    loss.sum().backward()
    assert target.grad is None and predicted.grad is not None


def test_path_consistency_regresses_value_onto_reward_plus_discounted_next_value():
    big = 50.0  # near one-hot logits on the middle atom: decoded reward and next value ≈ 0
    reward_logits = torch.tensor([[0.0, big, 0.0]])
    next_value_logits = torch.tensor([[[0.0, big, 0.0]], [[0.0, big, 0.0]]])
    value_logits = torch.tensor([[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]], requires_grad=True)
    loss, name = losses.path_consistency_loss(value_logits, reward_logits, next_value_logits, 0.99, SUPPORT, SUPPORT)
    assert name == "loss/path_consistency"
    log_z = math.log(math.e + math.e**2 + math.e**3)
    torch.testing.assert_close(loss, torch.tensor([((log_z - 2.0) + math.log(3.0)) / 2]), rtol=1e-4, atol=1e-4)
    loss.sum().backward()
    assert value_logits.grad is not None


def test_path_consistency_target_uses_discount_and_head_mean():
    spec = SupportSpec(-10.0, 10.0, 201)
    reward = torch.log(spec.two_hot(torch.tensor([1.0])).clamp(min=1e-30))  # decodes to 1
    next_values = torch.log(spec.two_hot(torch.tensor([[2.0], [4.0]])).clamp(min=1e-30))  # heads 2 and 4, mean 3
    target = 1.0 + 0.5 * 3.0
    value_logits = torch.log(spec.two_hot(torch.tensor([[target]])).clamp(min=1e-30))
    loss, _ = losses.path_consistency_loss(value_logits, reward, next_values, 0.5, spec, spec)
    # Predicting exactly the two-hot of the target leaves only its entropy (≤ log 2).
    assert loss.item() <= math.log(2.0) + 1e-4
    wrong = torch.log(spec.two_hot(torch.tensor([[target + 1.0]])).clamp(min=1e-30))
    assert losses.path_consistency_loss(wrong, reward, next_values, 0.5, spec, spec)[0].item() > 10


@pytest.mark.parametrize("fn", [losses.reward_loss, losses.value_loss])
def test_support_losses_accept_bfloat16_logits(fn):
    logits = torch.zeros(2, 2, 3, dtype=torch.bfloat16) if fn is losses.value_loss else torch.zeros(2, 3)
    loss, _ = fn(logits.to(torch.bfloat16), torch.zeros(2), SUPPORT)
    assert loss.dtype == torch.float32 and torch.allclose(loss, torch.full((2,), math.log(3.0)))
