"""n-step and mixed value targets, masks and reanalysis, on hand-made trajectories with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ezm_training import targets
from ezm_training.config import EZMConfig
from ezm_training.learner import Learner
from ezm_training.reanalyze import Reanalyzer, batch_to_tensors

G = 0.5  # discount
N = 2  # td steps
U = 3  # unroll steps
R = [1.0, 2.0, 3.0, 4.0, 5.0]  # r_t .. r_{t+U+n−1}
V = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # V_tgt(o_t) .. V_tgt(o_{t+U+n})


def _nstep(available: int, terminated: bool) -> list[float]:
    out = targets.nstep_values(torch.tensor([R]), torch.tensor([V]), torch.tensor([available]),
                               torch.tensor([terminated]), discount=G, td_steps=N, unroll_steps=U)
    return out[0].tolist()


def test_nstep_far_from_the_episode_end():
    expected = [R[k] + G * R[k + 1] + G**2 * V[k + 2] for k in range(U + 1)]
    assert _nstep(available=10, terminated=False) == pytest.approx(expected)


def test_nstep_with_a_terminal_bootstraps_zero():
    # The data ends at o_{t+3}, a terminal state.
    expected = [
        1 + G * 2 + G**2 * 30,  # k=0: b = 2, before the end
        2 + G * 3,  # k=1: b = 3 = end, terminal -> no bootstrap
        3.0,  # k=2: b = 3
        0.0,  # k=3: the terminal state itself
    ]
    assert _nstep(available=3, terminated=True) == pytest.approx(expected)


def test_nstep_with_a_time_limit_bootstraps_from_the_final_observation():
    expected = [1 + G * 2 + G**2 * 30, 2 + G * 3 + G**2 * 40, 3 + G * 40, 40.0]
    assert _nstep(available=3, terminated=False) == pytest.approx(expected)


def test_nstep_beyond_the_end_is_zero():
    assert _nstep(available=1, terminated=True) == pytest.approx([1.0, 0.0, 0.0, 0.0])


def test_masks_follow_the_available_transitions():
    value_mask, policy_mask, reward_mask = targets.window_masks(torch.tensor([2, 10]), unroll_steps=U)
    assert value_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert policy_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert reward_mask.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_path_discount_is_zero_on_the_terminating_transition():
    d = targets.path_discounts(torch.tensor([2, 2, 9]), torch.tensor([True, False, True]), G, U)
    assert d.tolist() == [[G, 0.0, G], [G, G, G], [G, G, G]]


def test_mixed_values_use_search_only_for_old_samples_after_the_start():
    nstep = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    search = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    policy_mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    recent = torch.tensor([False, True])
    kw = dict(nstep=nstep, search_value=search, policy_mask=policy_mask, recent=recent)
    assert targets.mixed_values(**kw, mode="mixed", use_search=False).tolist() == nstep.tolist()
    # Old sample 0 uses search values except at its final observation; recent sample 1 keeps n-step.
    assert targets.mixed_values(**kw, mode="mixed", use_search=True).tolist() == [[10.0, 2.0], [3.0, 4.0]]
    assert targets.mixed_values(**kw, mode="search", use_search=False).tolist() == [[10.0, 2.0], [30.0, 40.0]]
    assert targets.mixed_values(**kw, mode="nstep", use_search=True).tolist() == nstep.tolist()


def test_reanalysis_gives_targets_of_the_right_shapes_and_is_deterministic(random_replay):
    cfg = EZMConfig.from_preset("smoke", tasks="h1-stand-v0,h1-walk-v0", batch_size=8, block_steps=10)
    replay = random_replay(cfg)
    learner = Learner(cfg, [51, 51], 19)
    data = batch_to_tensors(replay.sample(4, np.random.default_rng(0)), learner.device)
    reanalyzer = Reanalyzer(cfg)
    out = reanalyzer(data, learner.target_model, step=3)
    again = reanalyzer(data, learner.target_model, step=3)
    B, U1, K = 8, cfg.unroll_steps + 1, cfg.num_sampled_actions
    assert out.value.shape == (B, U1) and out.policy_action.shape == (B, U1, 19)
    assert out.improved_policy.shape == (B, U1, K) and out.candidate_actions.shape == (B, U1, K, 19)
    torch.testing.assert_close(out.value, again.value, rtol=0, atol=0)
    torch.testing.assert_close(out.policy_action, again.policy_action, rtol=0, atol=0)
    assert (out.policy_action.abs() <= cfg.action_clip).all()
    assert torch.equal(out.value * (1 - out.value_mask), torch.zeros_like(out.value))
