"""Perturbed sim2sim: every perturbation acts (none is a no-op), draws repeat with the seed, and the nominal
model comes back."""

from __future__ import annotations

import numpy as np
import pytest

import sim_bridge
from sim_bridge.perturbations import LEVELS, Perturbation, Perturbed


@pytest.fixture()
def make():
    envs = []

    def _make(perturbation: Perturbation, env_id: str = "h1-stand-v0") -> Perturbed:
        env = Perturbed(sim_bridge.make(env_id), perturbation)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def _rollout(env, steps: int = 5, seed: int = 3):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-0.3, 0.3, size=env.action_space.shape).astype(np.float32))
        out.append(obs)
    return np.array(out)


def test_level_none_is_the_plain_environment(make):
    plain = sim_bridge.make("h1-stand-v0")
    try:
        expected = _rollout(plain)
    finally:
        plain.close()
    assert np.array_equal(_rollout(make(LEVELS["none"])), expected)


def test_the_model_draws_act_repeat_with_the_seed_and_are_undone(make):
    env = make(Perturbation(mass_scale=0.2, friction_scale=0.4, kp_scale=0.2))
    model = env.unwrapped.model
    nominal = (model.body_mass.copy(), model.geom_friction.copy(), model.actuator_gainprm[:, 0].copy())
    env.reset(seed=1)
    first = (model.body_mass.copy(), model.geom_friction.copy(), model.actuator_gainprm[:, 0].copy())
    for drawn, base, scale in zip(first, nominal, (0.2, 0.4, 0.2)):
        assert not np.allclose(drawn, base)
        ratio = drawn[base != 0] / base[base != 0]
        assert ratio.min() >= 1 - scale - 1e-9 and ratio.max() <= 1 + scale + 1e-9
    assert np.allclose(model.actuator_biasprm[:, 1], -model.actuator_gainprm[:, 0])  # still a position servo
    env.reset(seed=2)
    assert not np.allclose(model.body_mass, first[0])
    env.reset(seed=1)
    assert np.array_equal(model.body_mass, first[0]), "the same seed draws the same robot"
    env.close()
    assert np.array_equal(model.body_mass, nominal[0]) and np.array_equal(model.actuator_gainprm[:, 0], nominal[2])


def test_latency_applies_each_action_whole_steps_late(make):
    env = make(Perturbation(latency_steps=2))
    base = env.unwrapped
    env.reset(seed=0)
    actions = [np.full(base.action_space.shape, value, np.float32) for value in (0.1, 0.2, 0.3, 0.4, 0.5)]
    applied = []
    for action in actions:
        env.step(action)
        applied.append(base.data.ctrl[: base.action_map.size].copy())
    expected = [base.action_map.to_ctrl(a) for a in (actions[0], actions[0], actions[0], actions[1], actions[2])]
    for got, want in zip(applied, expected):
        assert np.allclose(got, want)


def test_observation_noise_and_bias_touch_the_measured_coordinates_only(make):
    env = make(Perturbation(obs_noise_std=0.01, obs_bias_std=0.01), "h1-reach-v0")
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    exact = base._last_obs
    robot = np.r_[np.arange(base.signals.robot_nq), base.model.nq + np.arange(base.signals.robot_nv)]
    extras = np.arange(base.model.nq + base.model.nv, len(exact))
    assert len(extras) > 0 and np.array_equal(obs[extras], exact[extras])
    assert np.abs(obs[robot] - exact[robot]).max() > 1e-3
    assert np.linalg.norm(obs[3:7]) == pytest.approx(1.0, abs=1e-6)


def test_period_jitter_varies_each_step_and_the_timestep_comes_back(make):
    env = make(Perturbation(period_jitter=0.1))
    base = env.unwrapped
    env.reset(seed=0)
    nominal, durations = base.model.opt.timestep, []
    for _ in range(5):
        before = base.data.time
        env.step(np.zeros(base.action_space.shape, np.float32))
        durations.append(base.data.time - before)
        assert base.model.opt.timestep == nominal
    assert len({round(d, 9) for d in durations}) > 1
    assert all(0.9 * base.dt - 1e-9 <= d <= 1.1 * base.dt + 1e-9 for d in durations)


def test_pushes_kick_the_pelvis(make):
    env = make(Perturbation(push_rate_hz=1e3, push_speed_mps=1.0))  # a push every step
    base = env.unwrapped
    env.reset(seed=0)
    env.step(np.zeros(base.action_space.shape, np.float32))
    assert env.pushes == 1 and np.linalg.norm(base.data.qvel[0:2]) > 0.5


@pytest.mark.parametrize("field, value", [("mass_scale", 1.0), ("kp_scale", -0.1), ("latency_steps", -1),
                                          ("obs_noise_std", -1.0), ("push_rate_hz", -0.5)])
def test_impossible_perturbations_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Perturbation(**{field: value})
