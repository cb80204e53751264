"""End to end on the CPU: `ezm-train --preset smoke` on h1-stand, then `--resume` and `ezm-eval` (subprocesses)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ezm_training import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[2]
SMOKE_BUDGET_S = 600  # a hang guard, not a speed test: the smoke run takes 1-3 minutes on a 2-core machine


def _leaves(value, path=""):
    """(path, leaf) of a nested state: tensors, arrays and plain values."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}/{index}")
    else:
        yield path, value


def assert_same_checkpoint(got: Path, expected: Path) -> None:
    """Bit for bit: every tensor, array, counter and RNG state of state.pt, and every replay array. Only the
    resume count and wall-clock timers may differ."""
    got_state, got_replay, _ = ckpt.load_checkpoint(got)
    expected_state, expected_replay, _ = ckpt.load_checkpoint(expected)
    got_leaves, expected_leaves = dict(_leaves(got_state)), dict(_leaves(expected_state))
    assert got_leaves.keys() == expected_leaves.keys()
    differ = [path for path, value in expected_leaves.items()
              if path != "/resume_count" and "/timers/" not in path
              and not (torch.equal(value, got_leaves[path]) if isinstance(value, torch.Tensor)
                       else np.array_equal(np.asarray(value), np.asarray(got_leaves[path])))]
    assert not differ, f"{len(differ)} entries differ from the uninterrupted run's, e.g. {differ[:5]}"
    assert got_replay.keys() == expected_replay.keys()
    assert not [key for key in expected_replay if not np.array_equal(got_replay[key], expected_replay[key])]


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    code = "import sys; from ezm_training.cli import train_main, eval_main; sys.exit({}(sys.argv[1:]))"
    entry = "eval_main" if args[0] == "eval" else "train_main"
    return subprocess.run([sys.executable, "-c", code.format(entry), *args[1:]], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_smoke_run_writes_log_curve_checkpoint_and_resumes(tmp_path):
    run_dir = tmp_path / "smoke"
    start = time.monotonic()
    done = _run(["train", "--preset", "smoke", "tasks=h1-stand", f"out={run_dir}", "--no-progress"],
                timeout=SMOKE_BUDGET_S + 60)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"smoke run: {time.monotonic() - start:.1f} s")  # a figure for the log; timing is not tested

    with open(run_dir / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and int(rows[-1]["step"]) == 100 and float(rows[-1]["skipped_total"]) == 0
    assert (run_dir / "curves" / "h1-stand-v0.png").stat().st_size > 0
    assert (run_dir / "eval_history.csv").exists() and (run_dir / "episodes.csv").exists()
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt_*"))
    assert [p.name for p in checkpoints] == ["ckpt_000000050", "ckpt_000000100"]
    assert all((p / name).exists() for p in checkpoints for name in ("state.pt", "replay.npz", "config.json"))

    # Lose the last checkpoint, as a kill between the two would; --resume continues from step 50, bit for bit.
    uninterrupted = tmp_path / "uninterrupted_ckpt_100"
    shutil.move(checkpoints[-1], uninterrupted)
    episodes = (run_dir / "episodes.csv").read_text()
    resumed = _run(["train", "--resume", str(run_dir), "--no-progress"], timeout=SMOKE_BUDGET_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "at step 50" in resumed.stderr
    assert "episodes in flight: restored" in resumed.stderr
    assert_same_checkpoint(run_dir / "checkpoints" / "ckpt_000000100", uninterrupted)
    assert (run_dir / "episodes.csv").read_text() == episodes
    # Rows the first run wrote after update 50 were cut back, not doubled by the resumed run's.
    for name, key in (("train_log.csv", "step"), ("eval_history.csv", "step")):
        with open(run_dir / name, newline="") as handle:
            steps = [int(row[key]) for row in csv.DictReader(handle)]
        assert steps == sorted(set(steps)), f"{name} has duplicate or unordered rows: {steps}"
    assert steps == [50, 100]

    # A checkpoint carried without its replay (what docs/runs/ commits) resumes only when asked to rebuild it.
    carried = tmp_path / "carried" / "ckpt_000000050"
    carried.mkdir(parents=True)
    for name in ("state.pt", "config.json", "sha256.json"):
        shutil.copy(run_dir / "checkpoints" / "ckpt_000000050" / name, carried / name)
    refused = _run(["train", "--resume", str(carried), "--no-progress", f"out={tmp_path / 'rebuilt'}"], timeout=120)
    assert refused.returncode == 2 and "--rebuild-replay" in refused.stderr
    rebuilt = _run(["train", "--resume", str(carried), "--rebuild-replay", f"out={tmp_path / 'rebuilt'}",
                    "--no-progress"], timeout=SMOKE_BUDGET_S)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert "replay rebuilt" in rebuilt.stderr and "at step 50" in rebuilt.stderr
    assert "episodes in flight: not restored" in rebuilt.stderr
    assert (tmp_path / "rebuilt" / "checkpoints" / "ckpt_000000100" / "replay.npz").exists()

    evaluated = _run(["eval", str(run_dir), "--episodes", "1", "--out", str(tmp_path / "eval")], timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "h1-stand-v0" in evaluated.stdout
    assert (tmp_path / "eval" / "eval.csv").exists() and (tmp_path / "eval" / "eval.json").exists()
    # The same episodes acted by the policy mean alone, written beside the search's, not over them.
    mean_only = _run(["eval", str(run_dir), "--episodes", "1", "--out", str(tmp_path / "eval"),
                      "--actor", "policy_mean"], timeout=120)
    assert mean_only.returncode == 0, mean_only.stderr[-3000:]
    assert "acting: policy_mean" in mean_only.stdout
    assert (tmp_path / "eval" / "eval_policy_mean.json").exists() and (tmp_path / "eval" / "eval.json").exists()


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_update_and_the_resumed_run_is_the_uninterrupted_one(tmp_path,
                                                                                           sigterm_training):
    """A scheduler's SIGTERM (or Ctrl-C) costs nothing: the update in flight is checkpointed, with the chunk the
    collector process has in flight and every env's episode, and `--resume` continues bit for bit."""
    args = ["--preset", "smoke", "tasks=h1-stand", "collector_process=true", "training_steps=200",
            "checkpoint_interval=100000", "eval_interval=100000"]
    reference = _run(["train", *args, f"out={tmp_path / 'uninterrupted'}", "--no-progress"], timeout=SMOKE_BUDGET_S)
    assert reference.returncode == 0, reference.stderr[-3000:]

    run_dir = tmp_path / "stopped"
    stderr = sigterm_training(args, run_dir, SMOKE_BUDGET_S)  # a few logged updates of 20
    stopped_at = int(stderr.split("stopped on request at update ")[1].split(";")[0])
    assert stopped_at < 200
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt_*"))
    assert [p.name for p in checkpoints] == [f"ckpt_{stopped_at:09d}"]
    assert (checkpoints[0] / "state.pt").exists() and (checkpoints[0] / "replay.npz").exists()

    resumed = _run(["train", "--resume", str(run_dir), "--no-progress"], timeout=SMOKE_BUDGET_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "episodes in flight: restored" in resumed.stderr
    assert_same_checkpoint(run_dir / "checkpoints" / "ckpt_000000200",
                           tmp_path / "uninterrupted" / "checkpoints" / "ckpt_000000200")
    assert (run_dir / "episodes.csv").read_text() == (tmp_path / "uninterrupted" / "episodes.csv").read_text()
