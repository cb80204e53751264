"""Replay storage, episode blocks and prioritised sampling on hand-made data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ezm_training.collector import Collector, _EpisodeBlocks
from ezm_training.config import EZMConfig
from ezm_training.replay import MultiTaskReplay, Segment, TaskReplay

OBS, ACT = 3, 2


def _cfg(**overrides) -> EZMConfig:
    values = dict(tasks="h1-stand-v0", block_steps=4, unroll_steps=1, td_steps=1, transitions_per_task=40,
                  recent_window_per_task=40, mixed_value_threshold_per_task=40, batch_size=8)
    values.update(overrides)
    return EZMConfig.from_preset("smoke", **values)


def _segment(task: int, n: int, owned: int, terminated: bool = False, start: float = 0.0) -> Segment:
    obs = (start + np.arange(n + 1, dtype=np.float32))[:, None].repeat(OBS, 1)
    return Segment(task, obs, np.zeros((n, ACT), np.float32), start + np.arange(n, dtype=np.float32), owned, terminated)


def _episode_segments(length: int, block: int, pad: int, terminated: bool) -> list[Segment]:
    blocks = _EpisodeBlocks(task=0, block=block, pad=pad)
    blocks.start(np.zeros(OBS))
    segments = []
    for t in range(length):
        segment = blocks.append(np.full(ACT, t, dtype=np.float32), float(t), np.full(OBS, t + 1.0))
        if segment is not None:
            segments.append(segment)
    return segments + blocks.finish(terminated)


def test_every_block_of_an_episode_is_stored_including_the_last():
    segments = _episode_segments(237, block=100, pad=10, terminated=True)
    assert [s.owned for s in segments] == [100, 100, 37]
    assert [s.num_transitions for s in segments] == [110, 110, 37]
    assert sum(s.owned for s in segments) == 237
    # Only the segment reaching the episode end says terminated; its last obs is the terminal one.
    assert [s.terminated for s in segments] == [False, False, True]
    assert segments[-1].rewards[-1] == 236.0 and segments[-1].obs[-1, 0] == 237.0
    # A segment's look-ahead is the next block's start.
    np.testing.assert_array_equal(segments[0].rewards[100:], segments[1].rewards[:10])


def test_an_episode_ending_inside_the_lookahead_gives_two_terminal_segments():
    segments = _episode_segments(105, block=100, pad=10, terminated=True)
    assert [(s.owned, s.num_transitions, s.terminated) for s in segments] == [(100, 105, True), (5, 5, True)]


class _FakeVecEnv:
    """Env 0 terminates at its 3rd step; env 1 never ends (the collector's own limit truncates it)."""

    num_envs = 2

    class single_action_space:  # noqa: N801 - mimics the gymnasium attribute
        shape = (ACT,)

    def __init__(self):
        self.t = np.zeros(2, dtype=int)
        self.resets: list[list[int]] = []

    def reset(self, seed=None):
        self.t[:] = 0
        return np.zeros((2, OBS))

    def step(self, actions):
        self.t += 1
        obs = self.t[:, None].repeat(OBS, 1).astype(float)
        terminated = np.array([self.t[0] == 3, False])
        infos = [{}, {}]
        if terminated[0]:
            infos[0] = {"final_obs": obs[0].copy()}
            obs[0] = -1.0  # the autoreset's first observation
            self.t[0] = 0
        return obs, np.ones(2), terminated, np.zeros(2, bool), infos

    def reset_envs(self, mask, seed=None):
        self.resets.append(list(np.flatnonzero(mask)))
        self.t[mask] = 0
        return np.full((int(mask.sum()), OBS), -2.0)


def test_terminations_end_episodes_and_are_stored_and_time_limits_truncate():
    cfg = _cfg(tasks="h1-stand-v0,h1-walk-v0", train_episode_steps=5, long_episode_steps=5,
               start_transitions_per_task=10**6)  # random actions only: no model needed
    venv = _FakeVecEnv()
    collector = Collector(cfg, venv)
    result = collector.collect(model=None, num_steps=6)
    by_task = {task: [e for e in result.episodes if e.task == task] for task in (0, 1)}
    assert [(e.length, e.terminated) for e in by_task[0]] == [(3, True), (3, True)]
    assert [(e.length, e.terminated) for e in by_task[1]] == [(5, False)]
    assert venv.resets == [[1]]  # only the env at the collector's own limit was reset by it
    terminal = [s for s in result.segments if s.task == 0]
    assert [(s.num_transitions, s.terminated) for s in terminal] == [(3, True), (3, True)]
    assert terminal[0].obs[-1, 0] == 3.0  # the final obs, not the autoreset one
    assert terminal[1].obs[0, 0] == -1.0  # the next episode starts from the autoreset obs
    truncated = [s for s in result.segments if s.task == 1]
    assert [(s.owned, s.num_transitions, s.terminated) for s in truncated] == [(4, 5, False), (1, 1, False)]


def test_ignoring_terminations_stores_them_as_truncations():
    cfg = _cfg(tasks="h1-stand-v0,h1-walk-v0", respect_terminations=False, start_transitions_per_task=10**6)
    result = Collector(cfg, _FakeVecEnv()).collect(model=None, num_steps=3)
    assert [s.terminated for s in result.segments if s.task == 0] == [False]


def test_prioritised_sampling_follows_priorities_and_is_weights():
    cfg = _cfg(priority_alpha=1.0, priority_beta=0.5, is_weight_min=0.0)
    buffer = TaskReplay(cfg, OBS, ACT)
    buffer.add(_segment(0, 6, owned=4))
    buffer.add(_segment(0, 3, owned=3, terminated=True))
    assert buffer.priorities[0].tolist() == [1, 1, 1, 1] and buffer.priorities[1].tolist() == [1, 1, 1, 0]
    buffer.priorities[0] = [1.0, 2.0, 3.0, 4.0]
    buffer.priorities[1, :3] = [2.0, 2.0, 6.0]
    expected = np.array([1, 2, 3, 4, 2, 2, 6], dtype=float) / 20.0
    segments, positions, weights, _ = buffer.sample(200_000, np.random.default_rng(0))
    flat = segments * 4 + positions
    counts = np.bincount(flat, minlength=8) / flat.size
    np.testing.assert_allclose(counts[[0, 1, 2, 3, 4, 5, 6]], expected, atol=3e-3)
    assert counts[7] == 0  # the position a 3-step segment does not own is never sampled
    # w = (N·P)^−β / max over the sample, N = 7 eligible positions.
    raw = (7 * np.array([1, 2, 3, 4, 2, 2, 6]) / 20.0) ** -0.5
    assert weights[flat == 0][0] == pytest.approx(raw[0] / raw.max())
    assert weights[flat == 6][0] == pytest.approx(raw[6] / raw.max())


def test_is_weights_are_clipped_and_new_data_gets_the_max_priority():
    cfg = _cfg(priority_beta=1.0, is_weight_min=0.1)
    buffer = TaskReplay(cfg, OBS, ACT)
    buffer.add(_segment(0, 6, owned=4))
    buffer.priorities[0] = [1.0, 1.0, 1.0, 100.0]
    _, _, weights, _ = buffer.sample(1000, np.random.default_rng(1))
    assert weights.min() == pytest.approx(0.1) and weights.max() == 1.0
    buffer.add(_segment(0, 5, owned=4))
    assert buffer.priorities[1].tolist() == [100.0] * 4


def test_priority_updates_land_on_the_sampled_positions():
    cfg = _cfg()
    replay = MultiTaskReplay(cfg, OBS, ACT)
    replay.add(_segment(0, 6, owned=4))
    batch = replay.sample(8, np.random.default_rng(0))
    replay.update_priorities(batch.index, np.full(8, 0.5))
    touched = set(map(tuple, batch.index[:, 1:]))
    for seg, pos in touched:
        assert replay.tasks[0].priorities[seg, pos] == 0.5


def test_batches_are_split_equally_across_tasks():
    cfg = _cfg(tasks="h1-stand-v0,h1-walk-v0,h1-run-v0", batch_size=9)
    replay = MultiTaskReplay(cfg, OBS, ACT)
    for task, segments in ((0, 1), (1, 5), (2, 2)):  # very different amounts of data per task
        for s in range(segments):
            replay.add(_segment(task, 6, owned=4, start=100.0 * task + s))
    batch = replay.sample(cfg.batch_size_per_task, np.random.default_rng(0))
    assert np.bincount(batch.task).tolist() == [3, 3, 3]
    # Each row comes from its own task's buffer (rewards encode the task in their hundreds).
    assert ((batch.rewards[:, 0] // 100) == batch.task).all()


def test_windows_are_zero_past_the_data_and_report_what_is_available():
    cfg = _cfg()
    replay = MultiTaskReplay(cfg, OBS, ACT)
    replay.add(_segment(0, 3, owned=3, terminated=True, start=1.0))
    batch = replay.sample(64, np.random.default_rng(0))
    position = batch.index[:, 2]
    np.testing.assert_array_equal(batch.available, 3 - position)
    assert batch.terminated.all()
    row = int(np.flatnonzero(position == 2)[0])
    np.testing.assert_array_equal(batch.rewards[row], [3.0, 0.0])  # r_2, then past the end
    np.testing.assert_array_equal(batch.obs[row, :, 0], [3.0, 4.0, 0.0])


def test_only_the_recent_window_is_sampled_and_recency_is_flagged():
    cfg = _cfg(recent_window_per_task=4, mixed_value_threshold_per_task=2)
    replay = MultiTaskReplay(cfg, OBS, ACT)
    replay.add(_segment(0, 6, owned=4, start=0.0))
    replay.add(_segment(0, 6, owned=4, start=50.0))
    batch = replay.sample(256, np.random.default_rng(0))
    assert (batch.index[:, 1] == 1).all()
    np.testing.assert_array_equal(batch.recent, batch.index[:, 2] >= 2)


def test_replay_state_round_trips():
    cfg = _cfg()
    replay = MultiTaskReplay(cfg, OBS, ACT)
    for s in range(3):
        replay.add(_segment(0, 6, owned=4, start=s))
    restored = MultiTaskReplay(cfg, OBS, ACT)
    restored.load_state_dict(replay.state_dict())
    a = replay.sample(8, np.random.default_rng(3))
    b = restored.sample(8, np.random.default_rng(3))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert restored.transitions() == replay.transitions()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_multitask_env_resets_only_the_masked_envs(num_workers):
    from sim_bridge.multitask import MultiTaskVectorEnv

    with MultiTaskVectorEnv(["h1-stand-v0", "h1-walk-v0", "h1-stand-v0"], num_workers=num_workers) as venv:
        first = venv.reset(seed=0)
        moved, *_ = venv.step(np.zeros((3, 19), np.float32))
        again = venv.reset_envs(np.array([True, False, True]), seed=0)
        np.testing.assert_array_equal(again, first[[0, 2]])  # same seeds, same start states
        after, *_ = venv.step(np.zeros((3, 19), np.float32))
        assert not np.array_equal(after[1], moved[1])  # env 1 kept its episode going
