"""`ezm-sim` (what `make sim` runs): the node list as processes, the live status line, the video on exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _ezm_sim(*args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim_bridge.run_stack", *args], capture_output=True, text=True,
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


def test_ezm_sim_stops_with_the_planners_reason_when_the_model_is_bad(tmp_path, tiny_bundle):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    data = bytearray((broken / "initial.onnx").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\0" * 64
    (broken / "initial.onnx").write_bytes(bytes(data))
    result = _ezm_sim("--model", str(broken), "--duration", "20", "--no-video", "--logs", str(tmp_path / "logs"))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "ezm_planner exited with status 2" in out and "initial.onnx sha256 mismatch" in out


def test_ezm_sim_refuses_a_model_for_another_robot_before_starting_nodes(tmp_path, tiny_bundle):
    other = tmp_path / "other-robot"
    shutil.copytree(tiny_bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["robot"]["ctrl_high"][3] += 0.1
    (other / "manifest.json").write_text(json.dumps(manifest))
    for model, reason in ((other, "made for another robot than the simulated H1"),
                          (tmp_path / "missing", "is not a directory")):
        result = _ezm_sim("--model", str(model), "--duration", "20", "--no-video", "--logs", str(tmp_path / "logs"))
        out = result.stdout + result.stderr
        assert result.returncode != 0 and reason in out and "started" not in out, out
