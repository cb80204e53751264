"""Offscreen rendering and the `sim-bridge` CLI, each in a fresh interpreter.

A fresh interpreter matters: MuJoCo fixes its OpenGL platform when it is first imported, and sim_bridge
picks EGL on a machine without a display only if it is imported first (sim_bridge.rendering).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RENDER_ONE_FRAME = """
import sys, numpy as np, sim_bridge
env = sim_bridge.make("h1-walk-v0", render_mode="rgb_array", width=96, height=64)
env.reset(seed=0)
env.step(np.zeros(19, dtype=np.float32))
frame = env.render()
env.close()
assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8, (frame.shape, frame.dtype)
print("STD", float(frame.std()))
"""


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MUJOCO_GL", None)  # let sim_bridge choose, as for a user
    return env


def _gl_unavailable_reason(output: str) -> str | None:
    for marker in ("cannot create an OpenGL context", "Failed to import OpenGL backend"):
        if marker in output:
            return f"no OpenGL backend works on this machine: {output.strip().splitlines()[-1]}"
    return None


def test_render_one_frame_headless():
    result = subprocess.run([sys.executable, "-c", RENDER_ONE_FRAME], capture_output=True, text=True,
                            env=_clean_env(), timeout=120)
    output = result.stdout + result.stderr
    if result.returncode != 0 and (reason := _gl_unavailable_reason(output)):
        pytest.skip(reason)
    assert result.returncode == 0, output
    std = float(output.split("STD")[1].split()[0])
    assert std > 5.0  # not a constant image: robot, floor and sky


def test_cli_rollout_writes_video_and_plot(tmp_path: Path):
    video, plot = tmp_path / "walk.mp4", tmp_path / "walk.png"
    result = subprocess.run(
        [sys.executable, "-m", "sim_bridge.cli", "rollout", "h1-walk-v0", "--policy", "random", "--steps", "8",
         "--seed", "1", "--collision", "primitive", "--width", "64", "--height", "48",
         "--video", str(video), "--plot", str(plot)],
        capture_output=True, text=True, env=_clean_env(), timeout=180)
    output = result.stdout + result.stderr
    if result.returncode != 0 and (reason := _gl_unavailable_reason(output)):
        pytest.skip(reason)
    assert result.returncode == 0, output
    assert "h1-walk-v0: 8 steps" in result.stdout
    assert video.stat().st_size > 1000 and video.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_gallery_renders_every_task(tmp_path: Path):
    out = tmp_path / "tasks.png"
    result = subprocess.run([sys.executable, "-m", "sim_bridge.cli", "gallery", str(out), "--size", "48"],
                            capture_output=True, text=True, env=_clean_env(), timeout=300)
    output = result.stdout + result.stderr
    if result.returncode != 0 and (reason := _gl_unavailable_reason(output)):
        pytest.skip(reason)
    assert result.returncode == 0, output
    import sim_bridge

    assert result.stdout.count("rendered h1-") == len(sim_bridge.available_task_ids()) == 14
    image = __import__("imageio").v3.imread(out)
    assert image.ndim == 3 and image.std() > 10  # frames, not a blank canvas


def test_cli_list_prints_ids_sizes_and_bars():
    from sim_bridge.cli import main

    result = subprocess.run([sys.executable, "-m", "sim_bridge.cli", "list"], capture_output=True, text=True,
                            env=_clean_env(), timeout=180)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert lines["h1-walk-v0"] == ["51", "700"] and lines["h1-stand-v0"] == ["51", "800"]
    assert callable(main)
