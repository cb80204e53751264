"""The collector in its own process: same chunks as the in-process collector, failures surfaced, and the
trainer's overlapped loop checkpoints and resumes."""

from __future__ import annotations

import csv
import os
import signal

import numpy as np
import pytest
import torch

from ezm_training import envs
from ezm_training.collector import Collector
from ezm_training.collector_process import CollectorProcess
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel
from ezm_training.trainer import Trainer


def _cfg(**overrides) -> EZMConfig:
    values = dict(tasks="h1-stand-v0,h1-walk-v0", envs_per_task=1, start_transitions_per_task=3, block_steps=10,
                  train_episode_steps=40, long_episode_steps=40)
    values.update(overrides)
    return EZMConfig.from_preset("smoke", **values)


def _model(cfg: EZMConfig) -> WorldModel:
    dims, action_dim = envs.task_dims(cfg.task_ids)
    torch.manual_seed(3)
    return WorldModel(cfg, dims, action_dim).eval().requires_grad_(False)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child searches on one thread; float order must match
    yield
    torch.set_num_threads(threads)


def test_a_chunk_from_the_process_equals_the_in_process_collectors(one_thread):
    cfg = _cfg()
    model = _model(cfg)
    venv = envs.make_vector_env(list(cfg.task_ids), num_workers=0)
    local = Collector(cfg, venv)
    remote = CollectorProcess(cfg, list(cfg.task_ids), num_workers=0)
    try:
        got_segments, expected_segments = [], []
        for steps in (5, 20):  # the first chunk crosses the random warm-up into searched actions
            expected = local.collect(model, steps)
            remote.submit(model, steps)
            got = remote.result()
            assert got.env_steps == expected.env_steps
            got_segments += got.segments
            expected_segments += expected.segments
        assert len(got_segments) == len(expected_segments) and got_segments  # a block is 10 steps + 10 ahead
        for a, b in zip(got_segments, expected_segments):
            assert (a.task, a.owned, a.terminated) == (b.task, b.owned, b.terminated)
            np.testing.assert_array_equal(a.actions, b.actions)
            np.testing.assert_array_equal(a.obs, b.obs)
            np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(remote.transitions, local.transitions)
        assert remote.state_dict()["calls"] == local.state_dict()["calls"]
        stats = remote.pop_stats()
        assert 0.0 <= stats["act/saturated"] <= 1.0 and stats["act/policy_std"] > 0
    finally:
        remote.close()
        venv.close()


@pytest.fixture
def remote():
    cfg = _cfg()
    process = CollectorProcess(cfg, list(cfg.task_ids), num_workers=0)
    yield cfg, process
    process.close()


def test_a_failure_in_the_process_is_raised_with_its_traceback(remote):
    cfg, remote = remote
    wrong = _model(cfg.replace(latent_dim=cfg.latent_dim + 4))  # weights of another shape
    remote.submit(wrong, 2)
    with pytest.raises(RuntimeError, match="(?s)collector process failed.*size mismatch"):
        remote.result()
    with pytest.raises(RuntimeError, match="no chunk in flight"):
        remote.result()


def test_a_killed_process_is_reported_not_waited_on(remote):
    cfg, remote = remote
    child = remote._channel._process
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    with pytest.raises(RuntimeError, match="collector process died"):
        remote.submit(_model(cfg), 2)
        remote.result()


def test_saving_while_a_chunk_is_in_flight_keeps_it_in_flight_and_a_restored_process_continues_exactly(one_thread):
    cfg = _cfg()
    model = _model(cfg)
    first = CollectorProcess(cfg, list(cfg.task_ids), num_workers=0)
    try:
        first.collect(model, 6)  # past the random warm-up: the chunks below are searched
        first.long_episodes = True  # as the trainer sets it once training passes long_episodes_after
        first.submit(model, 7)
        state = first.state_dict()  # a checkpoint in the middle of a chunk
        assert first.pending and state["held_chunk"] is not None and "in_flight" in state
        with pytest.raises(RuntimeError, match="already in flight"):
            first.submit(model, 2)
        expected = [first.result(), first.collect(model, 9)]
        expected_transitions = first.transitions.copy()
    finally:
        first.close()
    second = CollectorProcess(cfg, list(cfg.task_ids), num_workers=0, state=state, resume_count=1)
    try:
        assert second.pending  # the saved chunk is back in flight, not stored early
        assert second.long_episodes, "the next chunk goes out with the episode length the trainer had set"
        got = [second.result(), second.collect(model, 9)]
        np.testing.assert_array_equal(second.transitions, expected_transitions)
    finally:
        second.close()
    for got_chunk, expected_chunk in zip(got, expected):
        assert got_chunk.env_steps == expected_chunk.env_steps
        assert len(got_chunk.segments) == len(expected_chunk.segments)
        assert [(e.task, e.ret, e.length) for e in got_chunk.episodes] == [
            (e.task, e.ret, e.length) for e in expected_chunk.episodes]
        for a, b in zip(got_chunk.segments, expected_chunk.segments):
            np.testing.assert_array_equal(a.obs, b.obs)
            np.testing.assert_array_equal(a.actions, b.actions)


def test_a_restored_collector_continues_its_episodes_bit_for_bit(one_thread):
    """Episodes in flight (physics, env RNGs, unfinished blocks) are part of the state: the resumed collector
    emits what the uninterrupted one does, where it used to start fresh episodes."""
    cfg = _cfg(train_episode_steps=30, long_episode_steps=30)
    model = _model(cfg)
    venv = envs.make_vector_env(list(cfg.task_ids), num_workers=0)
    collector = Collector(cfg, venv)
    try:
        collector.collect(model, 13)  # mid-episode and mid-block
        state = collector.state_dict()
        expected = collector.collect(model, 40)  # across an episode end and its reset
    finally:
        collector.close()
    venv = envs.make_vector_env(list(cfg.task_ids), num_workers=0)
    resumed = Collector(cfg, venv, resume_count=1)
    try:
        assert resumed.load_state_dict(state)
        got = resumed.collect(model, 40)
    finally:
        resumed.close()
    assert [(e.task, e.ret, e.length) for e in got.episodes] == [(e.task, e.ret, e.length) for e in expected.episodes]
    assert got.episodes and len(got.segments) == len(expected.segments)
    for a, b in zip(got.segments, expected.segments):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)

    # Without its episodes (a rebuilt replay) the collector starts fresh ones on new seeds.
    venv = envs.make_vector_env(list(cfg.task_ids), num_workers=0)
    fresh = Collector(cfg, venv, resume_count=1)
    try:
        assert not fresh.load_state_dict(state, episodes=False)
        assert fresh.seed != cfg.seed and fresh.calls == state["calls"]
    finally:
        fresh.close()


def test_episodes_in_flight_that_do_not_fit_are_refused(one_thread):
    cfg = _cfg()
    venv = envs.make_vector_env(list(cfg.task_ids), num_workers=0)
    collector = Collector(cfg, venv)
    try:
        state = collector.state_dict()
        wrong = {**state, "in_flight": {**state["in_flight"], "obs": state["in_flight"]["obs"][:1]}}
        with pytest.raises(ValueError, match="episodes in flight were collected on"):
            collector.load_state_dict(wrong)
        blocks = [dict(b) for b in state["in_flight"]["blocks"]]
        blocks[0]["rewards"] = [1.0]  # a reward without its action
        with pytest.raises(ValueError, match="must be n \\+ 1, n and n"):
            collector.load_state_dict({**state, "in_flight": {**state["in_flight"], "blocks": blocks}})
    finally:
        collector.close()


@pytest.mark.slow
def test_the_overlapped_trainer_checkpoints_and_resumes(tmp_path):
    cfg = _cfg(tasks="h1-stand-v0", collector_process=True, training_steps=40, checkpoint_interval=20,
               eval_interval=10**6, log_interval=10, tensorboard=False, start_transitions_per_task=20,
               transitions_per_task=200, recent_window_per_task=200, mixed_value_threshold_per_task=50)
    trainer = Trainer(cfg, tmp_path / "run", num_workers=0, progress=False)
    trainer.run()
    with open(tmp_path / "run" / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["step"]) == 40 and float(rows[-1]["skipped_total"]) == 0
    # Every update had its stored steps: pacing holds although collection runs ahead.
    stored = int(rows[-1]["env_steps/h1-stand-v0"])
    assert stored >= cfg.start_transitions_per_task + 40 * cfg.transitions_per_step

    checkpoint = tmp_path / "run" / "checkpoints" / "ckpt_000000040"
    resumed = Trainer(cfg.replace(training_steps=60), tmp_path / "run", resume=checkpoint, num_workers=0,
                      progress=False)
    assert resumed.learner.step == 40
    np.testing.assert_array_equal(resumed.collector.transitions, trainer.collector.transitions)
    resumed.run()
    assert resumed.learner.step == 60
