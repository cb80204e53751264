"""A task's observation rebuilt from state topics, exactly as the simulator builds it.

HumanoidBench observes `concat(qpos, qvel)` with the robot's coordinates first and the scene objects'
after them, and reach appends the left hand site position and the goal. The topics carry exactly that:
the robot's coordinates in joint_states + odom (`ezm_ros.conversions`), the objects' coordinates and the
appended points in `ezm_msgs/TaskState` (see its definition for the rule this module implements).
tests/ezm_ros/test_observation.py checks equality with `env.step`'s observation for every task.
"""

from __future__ import annotations

import numpy as np

from ezm_msgs.msg import TaskState
from ezm_ros.conversions import RobotCoordinates, StateError


def build_observation(robot: RobotCoordinates, task_state: TaskState) -> np.ndarray:
    """(robot nq + object nq + robot nv + object nv + 3 · points,) float64 observation."""
    object_qpos = np.asarray(task_state.object_qpos, dtype=np.float64)
    object_qvel = np.asarray(task_state.object_qvel, dtype=np.float64)
    points = np.array([[p.x, p.y, p.z] for p in task_state.points], dtype=np.float64).reshape(-1)
    if len(task_state.point_names) != len(task_state.points):
        raise StateError(f"task_state has {len(task_state.point_names)} point names for "
                         f"{len(task_state.points)} points")
    obs = np.concatenate([robot.qpos, object_qpos, robot.qvel, object_qvel, points])
    if not np.isfinite(obs).all():
        raise StateError("task_state contains NaN or inf")
    return obs
