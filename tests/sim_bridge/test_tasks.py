"""Properties every h1 task must have, over every task whose module exists (dm_control suite_test style).

Task-specific rewards of the scene tasks are tested in test_scene_tasks.py; known-answer tests of
stand/walk/run are in test_locomotion.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim_bridge
from sim_bridge.h1 import constants as c

TASK_IDS = sim_bridge.available_task_ids()
STEPS = 5

#: Reward range per task (HumanoidBench formulas, humanoidbench.md). Products of terms in [0, 1] unless noted.
REWARD_RANGE = {
    "maze": (0.0, 1.0 + 100.0 * 3),  # shaped part plus 100 x stage on reaching a checkpoint
    "reach": (-math.inf, 5.0 + 5.0 + 10.0),  # 5 upright + 5 near + 10 success; minus a velocity penalty
}
#: How to force each task's termination: pelvis dropped to 0.1 m, or the robot upside down; None: never ends.
TERMINATION = {
    "stand": "low", "walk": "low", "run": "low", "hurdle": "low", "sit_simple": "low", "sit_hard": "low",
    "balance_simple": "low", "balance_hard": "low", "pole": "low", "maze": "low",
    "stair": "upside_down", "slide": "upside_down",
    "crawl": None, "reach": None,
}
#: Lying on the back: pelvis 0.12 m high, pitched 90 degrees about y (body z axis along world x).
LYING_PELVIS_HEIGHT_M = 0.12
LYING_QUAT = [math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]
OBS_SIZE = {"sit_hard": 64, "balance_simple": 64, "balance_hard": 77, "reach": 57}


def _task(env_id: str) -> str:
    return sim_bridge.parse_env_id(env_id)[1]


@pytest.fixture(scope="module")
def envs():
    cache = {}
    yield lambda env_id: cache.setdefault(env_id, sim_bridge.make(env_id))
    for env in cache.values():
        env.close()


@pytest.fixture(params=TASK_IDS)
def env(request, envs):
    return envs(request.param)


def _rollout(env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for action in actions:
        obs, reward, *_ = env.step(action)
        trace.append(np.append(obs, reward))
    return np.concatenate(trace)


def test_registry_lists_all_fourteen_tasks():
    assert len(sim_bridge.TASK_IDS) == 14
    assert sim_bridge.TASK_IDS[:3] == ("h1-stand-v0", "h1-walk-v0", "h1-run-v0")
    assert set(TASK_IDS) <= set(sim_bridge.TASK_IDS)


def test_reset_is_deterministic_per_seed(env):
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, 19)).astype(np.float32)
    first = _rollout(env, 7, actions)
    np.testing.assert_array_equal(first, _rollout(env, 7, actions))
    other, _ = env.reset(seed=8)
    assert not np.array_equal(first[: other.size], other)


def test_reset_returns_noisy_keyframe_and_empty_info(env):
    obs, info = env.reset(seed=3)
    assert info == {}
    data = env.unwrapped.data
    np.testing.assert_array_equal(data.qvel, 0.0)
    np.testing.assert_array_equal(data.ctrl, 0.0)
    robot_qpos = data.qpos[: c.NQ]
    assert np.abs(np.delete(robot_qpos - c.KEYFRAME_QPOS, [0, 1, 2, 3, 4, 5, 6])).max() <= 0.01 + 1e-12
    assert np.linalg.norm(robot_qpos[3:7]) == pytest.approx(1.0, abs=1e-12)  # normalised by set_state


def test_observation_shape_and_dtype(env):
    obs, _ = env.reset(seed=0)
    size = OBS_SIZE.get(_task(env.spec.id), 51)
    assert env.observation_space.shape == (size,) and env.observation_space.dtype == np.float64
    assert obs.shape == (size,) and obs.dtype == np.float64
    assert env.action_space.shape == (19,) and env.action_space.dtype == np.float32
    step_obs, *_ = env.step(np.zeros(19, dtype=np.float32))
    assert step_obs.shape == (size,) and step_obs.dtype == np.float64 and np.isfinite(step_obs).all()
    assert not np.shares_memory(step_obs, env.unwrapped.data.qpos)


def test_reward_finite_in_range_and_reported_in_info(env):
    low, high = REWARD_RANGE.get(_task(env.spec.id), (0.0, 1.0))
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(STEPS):
        state_before = repr(env.unwrapped.task_state)
        _, reward, _, truncated, info = env.step(rng.uniform(-1, 1, 19).astype(np.float32))
        assert isinstance(reward, float) and math.isfinite(reward)
        assert low - 1e-12 <= reward <= high + 1e-12
        assert info["per_timestep_reward"] == reward
        assert "physics_error" not in info and not truncated
        # get_reward reads the same MjData the step did and changes nothing; it gives the step's reward
        # unless the step advanced the task's internal state (the maze stage) after computing it.
        qpos, state = env.unwrapped.data.qpos.copy(), repr(env.unwrapped.task_state)
        again, components = env.unwrapped.get_reward()
        if state == state_before:
            assert again == pytest.approx(reward, abs=1e-12)
            assert all(info[key] == pytest.approx(value, abs=1e-12) for key, value in components.items())
        np.testing.assert_array_equal(env.unwrapped.data.qpos, qpos)
        assert repr(env.unwrapped.task_state) == state


def test_termination_fires_when_forced_through_set_state(env):
    how = TERMINATION[_task(env.spec.id)]
    env.reset(seed=0)
    unwrapped = env.unwrapped
    qpos, qvel = unwrapped.data.qpos.copy(), np.zeros(unwrapped.model.nv)
    assert not unwrapped.get_terminated()
    if how == "upside_down":
        qpos[2], qpos[3:7] = 1.0, [0.0, 1.0, 0.0, 0.0]  # rotated 180 degrees about x: torso z axis down
    else:
        qpos[2], qpos[3:7] = LYING_PELVIS_HEIGHT_M, LYING_QUAT
    unwrapped.set_state(qpos, qvel)
    assert unwrapped.get_terminated() == (how is not None)
    *_, terminated, _, _ = env.step(np.zeros(19, dtype=np.float32))
    if how == "low":
        assert terminated  # still on the floor after one step


def test_task_state_round_trips(env):
    env.reset(seed=0)
    state = env.unwrapped.task_state
    assert isinstance(state, dict)
    env.unwrapped.task_state = state
    with pytest.raises(ValueError):
        env.unwrapped.task_state = {"no_such_key": 1}
