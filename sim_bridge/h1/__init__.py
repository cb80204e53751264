"""HumanoidBench's Unitree H1 (no hands): constants, model builder, signals and action map."""

from __future__ import annotations

from sim_bridge.h1 import constants
from sim_bridge.h1.actuators import ActionMap
from sim_bridge.h1.model import build_h1_model, build_h1_spec
from sim_bridge.h1.signals import H1Signals
from sim_bridge.robot import Robot

#: The `h1` robot of the env ids `h1-<task>-v0`.
H1 = Robot(
    name=constants.ROBOT_NAME,
    build_spec=build_h1_spec,
    keyframe_qpos=constants.KEYFRAME_QPOS,
    make_signals=H1Signals,
    collision_variants=constants.COLLISION_VARIANTS,
    frame_skip=constants.FRAME_SKIP,
    default_camera=constants.DEFAULT_CAMERA,
)

__all__ = ["H1", "ActionMap", "H1Signals", "build_h1_model", "build_h1_spec", "constants"]
