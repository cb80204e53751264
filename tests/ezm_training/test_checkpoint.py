"""Checkpoints: resuming reproduces an uninterrupted run, and a SIGKILL mid-write never loses the last good one."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ezm_training import checkpoint as ckpt
from ezm_training.config import EZMConfig
from ezm_training.learner import Learner
from ezm_training.reanalyze import Reanalyzer
from ezm_training.trainer import train_step


def _cfg() -> EZMConfig:
    return EZMConfig.from_preset("smoke", tasks="h1-stand-v0,h1-walk-v0", batch_size=8, block_steps=10,
                                 entropy_samples=8, lr=1e-3)


def _parts(cfg: EZMConfig, random_replay):
    replay = random_replay(cfg, full_segments=2)
    return Learner(cfg, [51, 51], 19), replay, Reanalyzer(cfg), np.random.default_rng(cfg.seed)


def _state(learner, rng) -> dict:
    return {"learner": learner.state_dict(), "rng": rng.bit_generator.state, "global_rng": ckpt.rng_state()}


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, random_replay):
    cfg = _cfg()
    # Uninterrupted: 12 steps (the EMA fires at 5 and 10, across the checkpoint at 6).
    learner, replay, reanalyzer, rng = _parts(cfg, random_replay)
    for _ in range(12):
        train_step(learner, replay, reanalyzer, rng)
    reference = {name: tensor.clone() for name, tensor in learner.state_dict()["model"].items()}
    reference_target = {name: tensor.clone() for name, tensor in learner.target_model.state_dict().items()}
    reference_priorities = [buffer.priorities.copy() for buffer in replay.tasks]

    # Interrupted: 6 steps, checkpoint, fresh objects, load, 6 more.
    learner, replay, reanalyzer, rng = _parts(cfg, random_replay)
    for _ in range(6):
        train_step(learner, replay, reanalyzer, rng)
    path = ckpt.save_checkpoint(tmp_path, learner.step, _state(learner, rng), replay.state_dict(), cfg.to_json())
    del learner, replay, rng
    learner, replay, reanalyzer, rng = _parts(cfg, random_replay)
    state, replay_state, config_json = ckpt.load_checkpoint(path)
    assert EZMConfig.from_json(config_json) == cfg
    learner.load_state_dict(state["learner"])
    replay.load_state_dict(replay_state)
    rng.bit_generator.state = state["rng"]
    ckpt.set_rng_state(state["global_rng"])
    for _ in range(6):
        train_step(learner, replay, reanalyzer, rng)

    for name, tensor in learner.state_dict()["model"].items():
        assert torch.equal(tensor, reference[name]), name  # bitwise
    for name, tensor in learner.target_model.state_dict().items():
        assert torch.equal(tensor, reference_target[name]), name
    for buffer, expected in zip(replay.tasks, reference_priorities):
        np.testing.assert_array_equal(buffer.priorities, expected)


def test_old_checkpoints_are_pruned_and_temporaries_ignored(tmp_path):
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, step, {"step": step}, {"x": np.zeros(1)}, "{}", keep=2)
    (tmp_path / "ckpt_000000009.tmp-123").mkdir()  # a killed writer's leftover
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt_000000003", "ckpt_000000004"]
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt_000000004"
    ckpt.save_checkpoint(tmp_path, 5, {"step": 5}, {"x": np.zeros(1)}, "{}", keep=2)
    assert not list(tmp_path.glob("*.tmp-*"))


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from ezm_training import checkpoint as ckpt

    root = Path(sys.argv[1])
    ckpt.save_checkpoint(root, 1, {"step": 1}, {"x": np.arange(10)}, '{"good": true}')
    print("first saved", flush=True)
    big = {f"a{i}": np.random.default_rng(i).random(4_000_000) for i in range(20)}  # ~640 MB: slow to write
    ckpt.save_checkpoint(root, 2, {"step": 2}, big, "{}")
    print("second saved", flush=True)
""")


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    root = tmp_path / "checkpoints"
    process = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        assert process.stdout.readline().strip() == "first saved"
        deadline = time.monotonic() + 60
        # Wait until the second checkpoint's temporary directory has started receiving replay data.
        while not any(p.stat().st_size > 0 for p in root.glob("ckpt_000000002.tmp-*/replay.npz")):
            assert process.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    latest = ckpt.latest_checkpoint(root)
    assert latest is not None and latest.name == "ckpt_000000001"
    state, replay, config_json = ckpt.load_checkpoint(latest)
    assert state == {"step": 1} and config_json == '{"good": true}'
    np.testing.assert_array_equal(replay["x"], np.arange(10))


class _RunsCode:
    """A pickle payload: unpickling it calls os.system, which a checkpoint loader must never do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_corrupt_or_foreign_state_is_refused_without_running_it(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, {"step": 1, "rng": np.random.default_rng(0).bit_generator.state,
                                              "legacy": np.random.get_state()}, {"x": np.zeros(3)}, "{}")
    assert ckpt.load_checkpoint(path)[0]["step"] == 1  # numpy RNG states load under weights_only
    good = (path / "state.pt").read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    (path / "state.pt").write_bytes(bytes(flipped))
    with pytest.raises(ckpt.CheckpointError, match="does not match its sha256"):
        ckpt.load_checkpoint(path)
    # A pickle that runs code, with hashes made to match: refused by the unpickler, and nothing ran.
    marker = tmp_path / "ran"
    torch.save({"learner": _RunsCode(marker)}, path / "state.pt")
    hashes = json.loads((path / ckpt.HASHES).read_text())
    hashes["state.pt"] = hashlib.sha256((path / "state.pt").read_bytes()).hexdigest()
    (path / ckpt.HASHES).write_text(json.dumps(hashes))
    with pytest.raises(ckpt.CheckpointError, match="could run code"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match="could run code"):
        ckpt.load_model(tmp_path)
    assert not marker.exists()


def test_a_half_deleted_checkpoint_is_never_the_latest(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1}, {"x": np.zeros(1)}, "{}")
    half = ckpt.save_checkpoint(tmp_path, 2, {"step": 2}, {"x": np.zeros(1)}, "{}")
    (half / "state.pt").unlink()  # as an rmtree cut short leaves it
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt_000000001"
    (tmp_path / "ckpt_000000003.deleting-42").mkdir()  # a deletion cut short
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt_000000001"
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1, "again": True}, {"x": np.zeros(1)}, "{}")  # same step again
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))[0] == {"step": 1, "again": True}
    assert not list(tmp_path.glob("*.deleting-*")) and not list(tmp_path.glob("*.tmp-*"))
    assert not list(tmp_path.glob("*.replaced-*"))


def test_a_resave_killed_between_its_renames_loses_no_step(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1}, {"x": np.zeros(1)}, "{}")
    newest = ckpt.save_checkpoint(tmp_path, 2, {"step": 2}, {"x": np.zeros(1)}, "{}")
    # A re-save of step 2 killed after moving the old one aside, before the new one was renamed in:
    newest.rename(tmp_path / "ckpt_000000002.replaced-4242")
    (tmp_path / "ckpt_000000002.tmp-4242").mkdir()
    aside = ckpt.latest_checkpoint(tmp_path)
    assert aside.name == "ckpt_000000002.replaced-4242", "step 2 is still the newest, where it lies"
    assert ckpt.load_checkpoint(aside)[0] == {"step": 2}
    ckpt.save_checkpoint(tmp_path, 2, {"step": 2, "again": True}, {"x": np.zeros(1)}, "{}")  # the writer repairs
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt_000000002"
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))[0] == {"step": 2, "again": True}
    # Killed after the new one was renamed in: the old one aside is removed, the new one stays.
    (tmp_path / "ckpt_000000002.replaced-4243").mkdir()
    ckpt.save_checkpoint(tmp_path, 3, {"step": 3}, {"x": np.zeros(1)}, "{}")
    assert not list(tmp_path.glob("*.replaced-*")) and not list(tmp_path.glob("*.tmp-*"))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt_000000001", "ckpt_000000002",
                                                                 "ckpt_000000003"]


def test_a_checkpoint_carried_without_its_replay_loads_only_when_asked_and_is_still_hash_checked(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 7, {"step": 7}, {"x": np.zeros(3)}, "{}")
    (path / ckpt.REPLAY).unlink()  # what docs/runs/ commits: state.pt, config.json, sha256.json
    with pytest.raises(ckpt.CheckpointError, match="--rebuild-replay"):
        ckpt.load_checkpoint(path)
    state, replay, _ = ckpt.load_checkpoint(path, without_replay=True)
    assert state == {"step": 7} and replay is None
    flipped = bytearray((path / "state.pt").read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    (path / "state.pt").write_bytes(bytes(flipped))
    with pytest.raises(ckpt.CheckpointError, match="does not match its sha256"):
        ckpt.load_checkpoint(path, without_replay=True)
    with pytest.raises(ckpt.CheckpointError, match="does not match its sha256"):
        ckpt.load_model(path)  # evaluation and export check the weights they read, too
