"""Robot state <-> ROS messages, both directions in one module so the conventions live in one place.

The simulator turns MuJoCo's generalised coordinates into standard messages, as a robot driver would;
the planner turns the messages back into the coordinates its model was trained on. Conventions:

- joint_states (sensor_msgs/JointState): name, position (rad), velocity (rad/s), effort (N·m) per joint
  in the model's order (the bundle's `robot.joint_names`); readers map by name, not by index.
- odom (nav_msgs/Odometry, REP-105): pose of `pelvis` in `odom`; twist in the child frame `pelvis`,
  as the message definition requires. MuJoCo's free joint has the linear velocity in the world frame
  and the angular velocity in the body frame, so only the linear part is rotated (and rotated back).
  Quaternions: MuJoCo (w, x, y, z) <-> geometry_msgs (x, y, z, w).
- imu (sensor_msgs/Imu) at the pelvis: orientation in `odom`, angular velocity and specific force
  (gravity included, what an accelerometer measures) in the pelvis frame.

Covariances are not modelled: ground truth from the simulator, so the first element of each
covariance matrix is 0 (known) per sensor_msgs convention; -1 would mean "not provided".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState

from diagnostic_msgs.msg import KeyValue
from ezm_msgs.msg import TaskState
from ezm_ros import topics


class StateError(ValueError):
    """A state message that cannot be turned into coordinates (wrong joints or length, NaN or inf)."""


# --- small vector helpers -----------------------------------------------------------------------------
# numpy, not MuJoCo: the planner runs on a robot computer without it. Same formula as MuJoCo's
# mju_rotVecQuat, v' = v + 2 q_xyz x (q_w v + q_xyz x v), which needs no normalised rotation matrix.
def rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """`vec` rotated by the unit quaternion (w, x, y, z): body frame -> world frame."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    v = np.asarray(vec, dtype=np.float64)
    w, axis = q[0], q[1:4]
    return v + 2.0 * np.cross(axis, w * v + np.cross(axis, v))


def rotate_inverse(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """`vec` rotated by the inverse of (w, x, y, z): world frame -> body frame."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    return rotate(np.concatenate([q[:1], -q[1:4]]), vec)


def yaw_of(quat_wxyz: np.ndarray) -> float:
    """Heading (rad, about +z of odom) of a body with orientation (w, x, y, z)."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def stamp_from_ns(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# --- simulator side: coordinates -> messages -------------------------------------------------------------
def joint_state_msg(stamp: Time, names: Sequence[str], position: np.ndarray, velocity: np.ndarray,
                    effort: np.ndarray) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = np.asarray(position, dtype=np.float64).tolist()
    msg.velocity = np.asarray(velocity, dtype=np.float64).tolist()
    msg.effort = np.asarray(effort, dtype=np.float64).tolist()
    return msg


def odometry_msg(stamp: Time, root_qpos: np.ndarray, root_qvel: np.ndarray) -> Odometry:
    """Odometry of the pelvis from its free-joint qpos (7,) and qvel (6,)."""
    msg = Odometry()
    msg.header.stamp = stamp
    msg.header.frame_id = topics.ODOM_FRAME
    msg.child_frame_id = topics.BASE_FRAME
    position, quat = root_qpos[:3], root_qpos[3:7]
    msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z = (float(v) for v in position)
    _set_quaternion(msg.pose.pose.orientation, quat)
    linear_body = rotate_inverse(quat, root_qvel[:3])  # world -> pelvis frame
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (float(v) for v in linear_body)
    angular = root_qvel[3:6]  # MuJoCo's free-joint angular velocity is already in the body frame
    msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = (float(v) for v in angular)
    return msg


def imu_msg(stamp: Time, quat_wxyz: np.ndarray, angular_velocity_body: np.ndarray,
            specific_force_body: np.ndarray) -> Imu:
    msg = Imu()
    msg.header.stamp = stamp
    msg.header.frame_id = topics.BASE_FRAME
    _set_quaternion(msg.orientation, quat_wxyz)
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (
        float(v) for v in angular_velocity_body)
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = (
        float(v) for v in specific_force_body)
    return msg


def task_state_msg(stamp: Time, task: str, object_joint_names: Sequence[str], object_qpos: np.ndarray,
                   object_qvel: np.ndarray, points: Sequence[tuple[str, np.ndarray]],
                   internal_state: dict[str, object]) -> TaskState:
    msg = TaskState()
    msg.header.stamp = stamp
    msg.header.frame_id = topics.ODOM_FRAME
    msg.task = task
    msg.object_joint_names = list(object_joint_names)
    msg.object_qpos = np.asarray(object_qpos, dtype=np.float64).tolist()
    msg.object_qvel = np.asarray(object_qvel, dtype=np.float64).tolist()
    msg.point_names = [name for name, _ in points]
    msg.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for _, p in points]
    msg.internal_state = [KeyValue(key=key, value=str(value)) for key, value in internal_state.items()]
    return msg


def _set_quaternion(target, quat_wxyz: np.ndarray) -> None:
    target.w, target.x, target.y, target.z = (float(v) for v in quat_wxyz)


# --- planner side: messages -> coordinates ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RobotCoordinates:
    """The robot's generalised coordinates as MuJoCo orders them (free joint first, then hinges)."""

    qpos: np.ndarray  # (7 + J,) position m, quaternion (w, x, y, z), joint angles rad
    qvel: np.ndarray  # (6 + J,) linear m/s (odom frame), angular rad/s (pelvis frame), joint rates rad/s


def robot_coordinates(joint_state: JointState, odom: Odometry, joint_names: Sequence[str]) -> RobotCoordinates:
    """qpos and qvel of the robot from its joint_states and odom, joints in `joint_names` order.

    Raises StateError when a joint is missing, a length is wrong, or a value is NaN or inf.
    """
    names = list(joint_state.name)
    if len(joint_state.position) != len(names) or len(joint_state.velocity) != len(names):
        raise StateError(f"joint_states has {len(names)} names but {len(joint_state.position)} positions "
                         f"and {len(joint_state.velocity)} velocities")
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in joint_names if name not in index]
    if missing:
        raise StateError(f"joint_states lacks joints {missing[:3]}{'...' if len(missing) > 3 else ''} "
                         f"({len(names)} given, {len(joint_names)} expected)")
    order = [index[name] for name in joint_names]
    joint_q = np.asarray(joint_state.position, dtype=np.float64)[order]
    joint_dq = np.asarray(joint_state.velocity, dtype=np.float64)[order]

    pose, twist = odom.pose.pose, odom.twist.twist
    quat = np.array([pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z])
    root_q = np.concatenate([[pose.position.x, pose.position.y, pose.position.z], quat])
    linear_body = np.array([twist.linear.x, twist.linear.y, twist.linear.z])
    angular_body = np.array([twist.angular.x, twist.angular.y, twist.angular.z])
    qpos = np.concatenate([root_q, joint_q])
    if not np.isfinite(qpos).all() or not (np.isfinite(linear_body).all() and np.isfinite(angular_body).all()
                                             and np.isfinite(joint_dq).all()):
        raise StateError("state contains NaN or inf")
    if not 0.5 < float(np.dot(quat, quat)) < 2.0:
        raise StateError(f"odom orientation is not a unit quaternion (norm² {float(np.dot(quat, quat)):.3g})")
    qvel = np.concatenate([rotate(quat, linear_body), angular_body, joint_dq])
    return RobotCoordinates(qpos=qpos, qvel=qvel)
