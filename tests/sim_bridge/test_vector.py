"""Vectorised use: gymnasium.make_vec with subprocess workers, and the multi-task vector env."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import sim_bridge
from sim_bridge.multitask import MultiTaskVectorEnv, PadObservation

#: Tasks of three observation sizes (51, 57, 77) when the other engineer's modules exist; else walk/stand.
WANTED = ("h1-walk-v0", "h1-reach-v0", "h1-balance_hard-v0")
IDS = tuple(i for i in WANTED if i in sim_bridge.available_task_ids()) or ("h1-walk-v0", "h1-stand-v0")


def test_make_vec_async_walk():
    envs = gymnasium.make_vec("h1-walk-v0", num_envs=2, vectorization_mode="async")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 51) and obs.dtype == np.float64
        obs, rewards, terminated, truncated, infos = envs.step(np.zeros((2, 19), dtype=np.float32))
        assert obs.shape == (2, 51) and rewards.shape == (2,) and np.isfinite(rewards).all()
        assert infos["move"].shape == (2,)
        assert not np.array_equal(obs[0], obs[1])  # seeds 0 and 1
    finally:
        envs.close()


def _run(envs: MultiTaskVectorEnv, seed: int, steps: int) -> list[np.ndarray]:
    obs = envs.reset(seed=seed)
    trace = [obs]
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, envs.num_envs, 19)).astype(np.float32)
    for action in actions:
        obs, rewards, terminated, truncated, _ = envs.step(action)
        trace += [obs, rewards, terminated, truncated]
    return trace


@pytest.fixture(scope="module")
def multitask():
    envs = MultiTaskVectorEnv(IDS + IDS[:1], num_workers=2)  # 2 processes, uneven chunks
    yield envs
    envs.close()


def test_multitask_padding_mask_and_task_index(multitask):
    ids = multitask.env_ids
    sizes = [sim_bridge.make(i, collision="primitive").observation_space.shape[0] for i in ids]
    obs = multitask.reset(seed=0)
    mask, task_index = multitask.obs_mask, multitask.task_index
    assert multitask.obs_size == max(sizes)
    assert obs.shape == mask.shape == (len(ids), max(sizes)) and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(axis=1), sizes)
    assert np.all(mask[:, :51])  # real entries come first
    np.testing.assert_array_equal(task_index, [sim_bridge.TASK_IDS.index(i) for i in ids])
    obs, rewards, terminated, truncated, infos = multitask.step(np.zeros((len(ids), 19), np.float32))
    assert obs.shape == mask.shape and rewards.shape == terminated.shape == truncated.shape == (len(ids),)
    assert len(infos) == len(ids) and all("per_timestep_reward" in info for info in infos)
    np.testing.assert_array_equal(obs[~mask], 0.0)
    # Each env's real entries are exactly what its own single env would return for the same seed.
    for i, env_id in enumerate(ids):
        single = sim_bridge.make(env_id)
        single.reset(seed=0 + i)  # AsyncVectorEnv seeds env i with seed + i
        expected, *_ = single.step(np.zeros(19, np.float32))
        np.testing.assert_array_equal(obs[i, : expected.size], expected)
        single.close()
    with pytest.raises(ValueError):
        multitask.step(np.zeros((len(ids) + 1, 19), np.float32))


def test_multitask_is_deterministic_with_seed(multitask):
    first, again, other = _run(multitask, 5, 3), _run(multitask, 5, 3), _run(multitask, 6, 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_multitask_autoreset_is_same_step():
    envs = MultiTaskVectorEnv(("h1-walk-v0",), num_workers=0)
    try:
        envs.reset(seed=0)
        unwrapped = envs._local.envs[0].unwrapped  # drop the robot to force the end of the episode
        qpos = unwrapped.data.qpos.copy()
        qpos[2], qpos[3:7] = 0.12, [np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0]
        unwrapped.set_state(qpos, np.zeros(25))
        obs, rewards, terminated, truncated, infos = envs.step(np.zeros((1, 19), np.float32))
        assert terminated[0] and not truncated[0] and rewards.shape == (1,)
        assert infos[0]["final_obs"][2] < 0.2  # the fallen state
        assert "move" in infos[0]
        assert obs[0, 2] > 0.9  # already the next episode's first observation
    finally:
        envs.close()


def test_multitask_worker_errors_surface_in_the_parent(multitask):
    with MultiTaskVectorEnv(("h1-walk-v0",), num_workers=1) as envs:
        envs.reset(seed=0)
        with pytest.raises(RuntimeError, match="worker failed"):
            envs._connections[0].send(("step", np.zeros((1, 18), np.float32)))  # bypasses the shape check
            envs._receive(envs._connections[0])


def test_pad_observation_rejects_too_small_size():
    env = sim_bridge.make("h1-walk-v0", collision="primitive")
    with pytest.raises(ValueError):
        PadObservation(env, 50)
    env.close()


def test_a_snapshot_continues_every_episode_bit_for_bit_in_another_vector_env():
    """What a training checkpoint keeps of the episodes in flight: physics, env RNGs, task state (reach's goal),
    the time limit's count. A fresh vector env, restored, steps exactly as the original, resets included."""
    ids = ("h1-walk-v0", "h1-reach-v0", "h1-stand-v0")
    actions = np.random.default_rng(4).uniform(-1, 1, size=(40, len(ids), 19)).astype(np.float32)
    with MultiTaskVectorEnv(ids, num_workers=2) as original, MultiTaskVectorEnv(ids, num_workers=2) as copy:
        original.reset(seed=11)
        for action in actions[:15]:
            original.step(action)
        snapshot = original.snapshot()
        expected = [original.step(action) for action in actions[15:]]
        expected_reset = original.reset_envs(np.ones(len(ids), bool))  # each env's own RNG, after the episode

        copy.reset(seed=99)
        copy.restore(snapshot)
        got = [copy.step(action) for action in actions[15:]]
        for (obs, rewards, terminated, *_), (want_obs, want_rewards, want_terminated, *_) in zip(got, expected):
            np.testing.assert_array_equal(obs, want_obs)
            np.testing.assert_array_equal(rewards, want_rewards)
            np.testing.assert_array_equal(terminated, want_terminated)
        np.testing.assert_array_equal(copy.reset_envs(np.ones(len(ids), bool)), expected_reset)

        # A snapshot of another model (one entry short) is refused by name, and the workers serve on.
        wrong = list(snapshot)
        wrong[2] = {**snapshot[2], "env": {**snapshot[2]["env"], "physics": snapshot[2]["env"]["physics"][:-1]}}
        with pytest.raises(ValueError, match="physics state has shape"):
            copy.restore(wrong)
        with pytest.raises(ValueError, match="a snapshot for each"):
            copy.restore(snapshot[:2])
        broken = [{"env": {k: v for k, v in snapshot[0]["env"].items() if k != "np_random"},
                   "elapsed_steps": snapshot[0]["elapsed_steps"]}] + list(snapshot[1:])
        with pytest.raises(ValueError, match="snapshot does not fit: .*exactly"):
            copy.restore(broken)  # a key missing: refused by name, the worker serves on
        assert copy.step(actions[0])[0].shape == (len(ids), copy.obs_size)


def test_a_bad_request_to_one_worker_leaves_every_pipe_in_step():
    """Workers serve on after refusing bad input; the vector env reads every worker's reply before raising, so
    the next request gets its own answers, not a stale one left in a pipe."""
    ids = ("h1-walk-v0", "h1-stand-v0")
    with MultiTaskVectorEnv(ids, num_workers=2) as envs:
        envs.reset(seed=0)
        actions = np.zeros((2, 19), np.float32)
        actions[0, 0] = np.nan
        with pytest.raises(RuntimeError, match="action"):
            envs.step(actions)
        obs = envs.reset(seed=1)
        assert obs.shape == (2, envs.obs_size)
        assert envs.step(np.zeros((2, 19), np.float32))[0].shape == (2, envs.obs_size)
