"""Task families (ezm_training.envs), the policy-update knobs, the diagnostics and the probe's parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ezm_training import diagnostics, envs, probe
from ezm_training.config import ConfigError, EZMConfig
from ezm_training.networks import WorldModel
from ezm_training.search import gumbel_search, rng
from ezm_training.search.sampling import proposal_prior_logits, sample_candidates


def test_gym_tasks_share_one_vector_env_with_padded_obs_and_actions():
    ids = ["gym:Pendulum-v1", "gym:InvertedPendulum-v5"]
    assert envs.task_dims(ids) == ([3, 4], 1)
    with envs.make_vector_env(ids * 2, num_workers=0) as venv:
        obs = venv.reset(seed=0)
        mask, task = venv.obs_mask, venv.task_index
        assert obs.shape == (4, 4) and list(task) == [0, 1, 0, 1]
        assert not mask[0, 3] and mask[1, 3] and np.all(obs[0, 3] == 0.0)
        obs, rewards, terminated, truncated, infos = venv.step(np.zeros((4, 1), np.float32))
        assert obs.shape == (4, 4) and rewards.shape == (4,)


def test_action_repeat_sums_rewards_and_counts_steps():
    single, repeated = envs.make_env("gym:Pendulum-v1"), envs.make_env("gym:Pendulum-v1", action_repeat=2)
    single.reset(seed=3)
    repeated.reset(seed=3)
    action = np.array([0.5], np.float32)
    expected = sum(single.step(action)[1] for _ in range(2))
    assert repeated.step(action)[1] == pytest.approx(expected)


def test_unknown_and_unavailable_tasks_say_why():
    with pytest.raises(envs.EnvError, match="task ids are"):
        envs.family("walker-walk")
    with pytest.raises(envs.EnvError, match="gym:NoSuchEnv-v0"):
        envs.make_env("gym:NoSuchEnv-v0")
    with pytest.raises(ConfigError, match="env ids"):
        EZMConfig(tasks="Walker")
    try:
        import dm_control  # noqa: F401
    except ImportError:
        with pytest.raises(envs.EnvError, match="MuJoCo 3.17"):
            envs.make_env("dmc:walker-walk")


def test_tanh_log_std_starts_where_configured_and_never_leaves_its_bounds():
    cfg = EZMConfig.from_preset("smoke", policy_std_param="tanh_log", policy_log_std_min=-5.0,
                                policy_log_std_max=-0.69, policy_std_init=0.1)
    model = WorldModel(cfg, [51], 19)
    initial = model.initial_inference(torch.zeros(2, 51), torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(initial.policy_std, torch.full((2, 19), 0.1), rtol=1e-5, atol=0)
    with torch.no_grad():  # push the std logits to both extremes
        model._value_policy.policy[-1].bias[19:] = 1e4
    high = model.initial_inference(torch.zeros(1, 51), torch.zeros(1, dtype=torch.long)).policy_std
    assert float(high.max()) <= math.exp(-0.69) * (1 + 1e-6)
    with pytest.raises(ConfigError, match="strictly inside"):
        EZMConfig.from_preset("smoke", policy_std_param="tanh_log", policy_std_init=10.0)
    # runs saved before the field existed used EZ V2's softplus std
    legacy = EZMConfig.from_json(EZMConfig.from_preset("smoke").to_json().replace('"policy_std_param": "softplus",', ""))
    assert legacy.policy_std_param == "softplus"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_proposal_prior_is_the_log_density_ratio_of_pi_over_the_mixture(backend):
    like = np.zeros(1, np.float32) if backend == "numpy" else torch.zeros(1)
    keys = rng.root_keys(5, 3, like=like)
    mean = (np.zeros((3, 2), np.float32) if backend == "numpy" else torch.zeros(3, 2)) + 0.2
    std = mean * 0 + 0.4
    candidates = sample_candidates(keys, mean, std, num_candidates=6, num_policy_actions=2, widen_std_factor=3.0,
                                   widen=True, clip=1.0 - 1e-7)
    logits = np.asarray(proposal_prior_logits(keys, num_candidates=6, num_policy_actions=2, widen_std_factor=3.0,
                                              action_dim=2, dtype=mean.dtype))
    u = np.arctanh(np.asarray(candidates, np.float64))  # pre-tanh; the Jacobian cancels in the ratio

    def log_normal(x, s):
        return (-0.5 * ((x - 0.2) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)).sum(-1)

    log_pi = log_normal(u, 0.4)
    log_q = np.logaddexp(np.log(2 / 6) + log_pi, np.log(4 / 6) + log_normal(u, 1.2))
    np.testing.assert_allclose(logits, log_pi - log_q, atol=2e-3)


def test_proposal_prior_enters_the_improved_policy():
    from ezm_training.search import RecurrentOutput, RootOutput

    root = RootOutput(np.zeros((1, 4), np.float32), np.zeros(1, np.float32), np.zeros((1, 3), np.float32),
                      np.full((1, 3), 0.3, np.float32))

    def flat(latent, action):  # a model whose Q ignores the action
        n = latent.shape[0]
        return RecurrentOutput(latent, np.zeros(n, np.float32), np.zeros(n, np.float32),
                               np.zeros((n, 3), np.float32), np.full((n, 3), 0.3, np.float32))

    kwargs = dict(num_simulations=8, num_candidates=4, num_policy_actions=1, num_top_actions=4)
    uniform = gumbel_search(root, flat, 0, **kwargs)
    corrected = gumbel_search(root, flat, 0, root_prior="proposal", **kwargs)
    np.testing.assert_allclose(uniform.improved_policy, 0.25, atol=1e-6)  # flat Q: uniform over candidates
    # π's own candidate outweighs the widened ones, which are unlikely under π (A = 3 here; 19 on the H1)
    assert corrected.improved_policy[0, 0] > 0.5 and np.argmax(corrected.improved_policy[0]) == 0
    assert corrected.action_index[0] == 0


def test_search_stats_and_spread_ratios():
    from ezm_training.search import SearchOutput

    out = SearchOutput(action=torch.tensor([[0.995, 0.0], [0.1, -0.999]]), action_index=torch.tensor([0, 3]),
                       candidate_actions=torch.zeros(2, 4, 2), improved_policy=torch.zeros(2, 4),
                       root_value=torch.zeros(2), q_values=torch.zeros(2, 4), visit_counts=torch.zeros(2, 4),
                       simulations_done=8)
    stats = diagnostics.search_stats(out, torch.full((2, 2), 0.3), num_policy_actions=1, widened=True, prefix="x")
    assert stats == pytest.approx({"x/chosen_widened": 0.5, "x/saturated": 0.5, "x/policy_std": 0.3})
    values = torch.tensor([[0.0, 0.0], [10.0, 10.0]])  # nothing across candidates, all across states
    assert float(diagnostics._spread_ratio(values)) == pytest.approx(0.0)
    values = torch.tensor([[-1.0, 1.0], [-1.0, 1.0]])  # the reverse
    assert float(diagnostics._spread_ratio(values)) > 1e6


def test_spearman_and_bootstrap():
    assert probe.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert probe.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(probe.spearman([1, 1, 1], [1, 2, 3]))
    assert probe.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)  # ties take the mean rank
    mean, low, high = probe.bootstrap_interval(np.arange(100.0))
    assert mean == pytest.approx(49.5) and low < mean < high


@pytest.mark.parametrize("env_id", ["gym:InvertedPendulum-v5", "gym:Pendulum-v1", "h1-stand-v0"])
def test_snapshot_restores_the_simulator_exactly(env_id):
    env = envs.make_env(env_id)
    env.reset(seed=1)
    action = np.full(env.action_space.shape, 0.3, np.float32)
    for _ in range(3):
        env.step(action)
    snap = probe.snapshot(env)
    first = [env.step(action)[:2] for _ in range(4)]
    probe.restore(env, snap)
    again = [env.step(action)[:2] for _ in range(4)]
    for (obs_a, reward_a), (obs_b, reward_b) in zip(first, again):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b
    env.close()


def test_probe_runs_on_a_checkpoint_model_and_reports_its_fields():
    cfg = EZMConfig.from_preset("fast", tasks="gym:InvertedPendulum-v5")
    model = WorldModel(cfg, *envs.task_dims(cfg.task_ids))
    search, mean_action, obs_dim, _ = probe.torch_searcher(model, cfg, widen=True)
    env = envs.make_env("gym:InvertedPendulum-v5")
    records = probe.probe_task(env, cfg.task_ids[0], 0, search, mean_action, obs_dim=obs_dim, num_states=3,
                               horizon=4, stride=1, discount=cfg.discount, seed=0)
    summary = probe.summarise(records, cfg.num_sampled_actions, 4)
    assert summary.states == 3 and summary.random_rank == 1.5
    assert all(0 <= r.chosen_rank < cfg.num_sampled_actions for r in records)
    assert all(r.worst_return <= r.chosen_return <= r.best_return for r in records)
    assert "rank corr." in probe.format_table([summary])


def test_multi_task_training_over_tasks_with_different_action_dims(tmp_path):
    """One model over Pendulum (1 action) and Reacher (2): actions padded to 2, each env takes its own."""
    from ezm_training.trainer import Trainer

    cfg = EZMConfig.from_preset("smoke", tasks="gym:Pendulum-v1,gym:Reacher-v5", training_steps=6,
                                start_transitions_per_task=20, eval_interval=6, checkpoint_interval=6,
                                eval_episode_steps=20, tensorboard=False)
    assert envs.action_dims(cfg.task_ids) == [1, 2]
    trainer = Trainer(cfg, tmp_path, num_workers=0, progress=False)
    trainer.run()
    assert trainer.learner.step == 6 and trainer.learner.model.action_dim == 2
    assert sorted(path.name for path in (tmp_path / "curves").iterdir()) == [
        "gym_Pendulum-v1.png", "gym_Reacher-v5.png"]


def test_short_names_of_every_family():
    from ezm_training.envs import EnvError, short_name

    assert [short_name(i) for i in ("h1-sit_hard-v0", "gym:InvertedPendulum-v5", "dmc:cartpole-swingup")] == \
        ["sit_hard", "InvertedPendulum-v5", "cartpole-swingup"]
    with pytest.raises(ValueError, match="unknown env id"):
        short_name("h1-fly-v0")
    with pytest.raises(EnvError):
        short_name("walk")
