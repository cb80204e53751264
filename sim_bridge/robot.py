"""What the environment needs to know about a robot, so the robot is a parameter and not baked in.

`sim_bridge.h1.H1` is the only robot today; h1hand (61 actuators) would be a second `Robot` with its own
builder, keyframe and signals, and the tasks would run on it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import mujoco
import numpy as np

from sim_bridge.h1.signals import H1Signals


@dataclasses.dataclass(frozen=True)
class Robot:
    """A robot model plus the few facts the environment needs about it."""

    name: str  # first part of env ids: `<name>-<task>-v0`
    build_spec: Callable[[str], mujoco.MjSpec]  # collision variant -> robot in the world, uncompiled
    keyframe_qpos: np.ndarray  # (robot nq,) reset pose before noise
    make_signals: Callable[[mujoco.MjModel, mujoco.MjData], H1Signals]
    collision_variants: tuple[str, ...]  # the first is the default
    frame_skip: int  # physics steps per env step
    default_camera: str  # tracking camera used by render() unless the task names another

    @property
    def default_collision(self) -> str:
        return self.collision_variants[0]
