"""The rollout video ezm-sim writes: an MP4, or a small looping GIF for a README."""

from __future__ import annotations

import numpy as np
import pytest

from ezm_msgs.msg import TaskState
from ezm_ros.conversions import RobotCoordinates
from sim_bridge.h1 import constants
from sim_bridge.rollout_video import VIDEO_FPS, RolloutRecorder

imageio = pytest.importorskip("imageio.v2")


def test_a_gif_path_gives_a_half_size_half_rate_looping_gif(tmp_path):
    recorder = RolloutRecorder(max_seconds=1.0)
    for step in range(VIDEO_FPS):
        qpos = np.asarray(constants.KEYFRAME_QPOS, np.float64).copy()
        qpos[2] -= 0.02 * step  # a sinking pelvis: every frame differs (a GIF writer merges equal frames)
        recorder.add(step * 10**9 // VIDEO_FPS, RobotCoordinates(qpos, np.zeros(len(qpos) - 1)),
                     TaskState(task="stand"))
    try:
        written = recorder.write(tmp_path / "clip.gif")
    except Exception as err:  # noqa: BLE001  MuJoCo's renderer raises its own types without a GL backend
        if "OpenGL" in str(err) or "GL" in type(err).__name__:
            pytest.skip(f"no OpenGL backend here: {err}")
        raise
    assert written == VIDEO_FPS
    frames = imageio.mimread(tmp_path / "clip.gif")
    assert len(frames) == (VIDEO_FPS + 1) // 2 and frames[0].shape[:2] == (180, 240)
