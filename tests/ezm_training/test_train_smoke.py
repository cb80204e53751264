"""End to end on the CPU: `ezm-train --preset smoke` on h1-stand, then `--resume` and `ezm-eval` (subprocesses)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOKE_BUDGET_S = 180  # the issue: the smoke run finishes in under 3 minutes on this 2-core machine


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
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < SMOKE_BUDGET_S, f"smoke run took {elapsed:.0f} s"
    print(f"smoke run: {elapsed:.1f} s")

    with open(run_dir / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and int(rows[-1]["step"]) == 100 and float(rows[-1]["skipped_total"]) == 0
    assert (run_dir / "curves" / "h1-stand-v0.png").stat().st_size > 0
    assert (run_dir / "eval_history.csv").exists() and (run_dir / "episodes.csv").exists()
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt_*"))
    assert [p.name for p in checkpoints] == ["ckpt_000000050", "ckpt_000000100"]
    assert all((p / name).exists() for p in checkpoints for name in ("state.pt", "replay.npz", "config.json"))

    # Lose the last checkpoint, as a kill between the two would; --resume continues from step 50.
    shutil.rmtree(checkpoints[-1])
    resumed = _run(["train", "--resume", str(run_dir), "--no-progress"], timeout=SMOKE_BUDGET_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "at step 50" in resumed.stderr
    assert (run_dir / "checkpoints" / "ckpt_000000100" / "state.pt").exists()

    evaluated = _run(["eval", str(run_dir), "--episodes", "1", "--out", str(tmp_path / "eval")], timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "h1-stand-v0" in evaluated.stdout
    assert (tmp_path / "eval" / "eval.csv").exists() and (tmp_path / "eval" / "eval.json").exists()
