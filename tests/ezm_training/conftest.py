"""Shared fixtures of the ezm_training tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ezm_training.config import EZMConfig
from ezm_training.replay import MultiTaskReplay, Segment

OBS_DIM, ACTION_DIM = 51, 19  # h1 stand/walk/run
REPO = Path(__file__).resolve().parents[2]
TRAIN = "import sys; from ezm_training.cli import train_main; sys.exit(train_main(sys.argv[1:]))"


@pytest.fixture
def sigterm_training():
    """`sigterm_training(args, run_dir, budget_s)`: `ezm-train ARGS out=RUN_DIR` in a subprocess, sent SIGTERM
    once its train_log.csv has a few rows (running, and seconds of updates from its end); returns its stderr
    after it exited with status 0 and said where it stopped."""

    def run(args: list[str], run_dir: Path, budget_s: float) -> str:
        process = subprocess.Popen([sys.executable, "-c", TRAIN, *args, f"out={run_dir}", "--no-progress"],
                                   cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + budget_s
            log = run_dir / "train_log.csv"
            while (time.monotonic() < deadline and process.poll() is None
                   and not (log.exists() and len(log.read_text().splitlines()) > 2)):
                time.sleep(0.5)
            assert process.poll() is None, process.communicate()[1][-3000:]
            process.terminate()
            _, stderr = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, stderr[-3000:]
        assert "stopped on request at update" in stderr
        return stderr

    return run


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: the tests' tensors are tiny, and the 2-core CI machine also runs env workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def random_replay():
    """`random_replay(cfg, full_segments=1, seed=0)`: a replay with, per task, `full_segments` segments of a
    block plus look-ahead and one short terminated episode end (random obs, actions and rewards)."""

    def build(cfg: EZMConfig, full_segments: int = 1, seed: int = 0) -> MultiTaskReplay:
        rng = np.random.default_rng(seed)
        replay = MultiTaskReplay(cfg, OBS_DIM, ACTION_DIM)
        width = cfg.block_steps + cfg.unroll_steps + cfg.td_steps
        for task in range(cfg.num_tasks):
            for n, terminated in [(width, False)] * full_segments + [(6, True)]:
                replay.add(Segment(task, rng.normal(size=(n + 1, OBS_DIM)).astype(np.float32),
                                   rng.uniform(-0.9, 0.9, (n, ACTION_DIM)).astype(np.float32),
                                   rng.uniform(0, 2, n).astype(np.float32), min(n, cfg.block_steps), terminated))
        return replay

    return build
