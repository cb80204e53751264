"""`ezm-sim` (what `make sim` runs): the node list as processes, the live status line, the video on exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _ezm_sim(*args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ezm_ros.run_stack", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def test_ezm_sim_runs_prints_status_and_writes_the_video(tiny_bundle, tmp_path):
    video = tmp_path / "sim.mp4"
    result = _ezm_sim("--model", str(tiny_bundle), "--task", "stand", "--duration", "6", "--video", str(video),
                      "--video-seconds", "1", "--logs", str(tmp_path / "logs"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "started ezm_sim, ezm_planner" in out
    status = [line for line in out.splitlines() if line.startswith("task stand")]
    assert status, out
    for field in ("sim ", "RTF", "pelvis", "fwd", "planner p99", "misses"):
        assert field in status[-1]
    assert video.is_file() and video.stat().st_size > 1000 and "wrote" in out
    assert (tmp_path / "logs" / "ezm_planner.log").is_file()


def test_ezm_sim_stops_with_the_planners_reason_when_the_model_is_bad(tmp_path):
    result = _ezm_sim("--model", str(tmp_path / "missing"), "--duration", "20", "--no-video",
                      "--logs", str(tmp_path / "logs"))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "ezm_planner exited with status 2" in out and "not a directory" in out
