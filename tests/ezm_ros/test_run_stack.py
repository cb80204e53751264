"""`ezm-sim` (what `make sim` runs): the node list as processes, the live status line, the video on exit."""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ezm_ros.manifest import sealed

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
    (other / "manifest.json").write_text(json.dumps(sealed(manifest)))  # a consistent bundle
    for model, reason in ((other, "made for another robot than the simulated H1"),
                          (tmp_path / "missing", "is not a directory")):
        result = _ezm_sim("--model", str(model), "--duration", "20", "--no-video", "--logs", str(tmp_path / "logs"))
        out = result.stdout + result.stderr
        assert result.returncode != 0 and reason in out and "started" not in out, out


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc: Linux, where the parent-death signal applies)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_sigkilled_ezm_sim_takes_its_nodes_with_it(tiny_bundle, tmp_path):
    launcher = subprocess.Popen([sys.executable, "-m", "sim_bridge.run_stack", "--model", str(tiny_bundle),
                                 "--task", "stand", "--no-video", "--logs", str(tmp_path / "logs")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    nodes: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(nodes) < 2 and launcher.poll() is None:
            time.sleep(0.5)
            nodes = _children(launcher.pid)
        assert len(nodes) >= 2, f"ezm-sim did not start its nodes: {nodes}"
        time.sleep(2.0)  # the nodes are past their start (a node checks its launcher as it starts)
        launcher.kill()  # SIGKILL: ezm-sim stops nothing itself
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in nodes):
            time.sleep(0.2)
        assert not [pid for pid in nodes if _alive(pid)], "nodes outlived a SIGKILLed ezm-sim"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in nodes:  # a failed test leaves no orphan behind either
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_ezm_sim_with_the_safety_layer_reaches_plan_by_itself(tiny_bundle, tmp_path):
    # The planner's commands go to ezm/planner_command and through the safety node to the simulator; in
    # simulation the node walks DAMPING -> STAND_UP -> HOLD -> PLAN on its own (autostart).
    result = _ezm_sim("--model", str(tiny_bundle), "--task", "stand", "--safety", "--duration", "10", "--no-video",
                      "--logs", str(tmp_path / "logs"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "ezm_safety" in out
    safety_log = (tmp_path / "logs" / "ezm_safety.log").read_text()
    for change in ("DAMPING -> STAND_UP: autostart", "STAND_UP -> HOLD", "HOLD -> PLAN: autostart (plan)"):
        assert change in safety_log, safety_log
    sim_log = (tmp_path / "logs" / "ezm_sim.log").read_text()
    assert "rejected joint command" not in sim_log, sim_log
