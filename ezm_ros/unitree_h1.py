"""The boundary to a real Unitree H1: JointCommand -> LowCmd, and LowState -> JointState and a pelvis Imu.

The safety layer (safety_node.py) takes and emits ezm_msgs/JointCommand; a robot bridge turns the emitted
command into the H1's own low-level command and the robot's low-level state into the topics the stack reads.
This module is that mapping, without the transport: the H1 speaks Unitree's `unitree_go` IDL over its own DDS
(`rt/lowcmd`, `rt/lowstate`; in ROS 2 `/lowcmd`, `/lowstate` from unitree_ros2), which has no wheel here, so
`LowCmd` and `LowState` below hold the fields of those messages as arrays, in motor order, for the bridge to
copy into the real ones (which also carry the CRC Unitree's SDK computes when it writes them). In simulation
the simulator node stands in for the robot behind the same boundary (JointCommand in, JointState/Imu/Odometry
out); tests/ezm_ros/test_unitree_h1.py checks this mapping against the simulator on fixed states.

Facts used (../shared/reference/deploy-stacks.md and Unitree's H1 low-level examples):
- H1 (not H1_2) has 20 motor slots; motor 9 is not used. The table below maps the stack's joint names to them.
- Motor mode 0x0A (servo) for the strong motors, 0x01 for the weak ones (ankles 10-11, arms 12-19).
- A slot without a target gets Unitree's stop values (PosStopF for q, VelStopF for dq), kp = kd = tau = 0.
- The IMU sits in the torso, which turns about z on the `torso` joint: its orientation and rates are rotated
  into the pelvis frame with that joint's angle and rate. The accelerometer is rotated, not moved: the lever
  arm from the torso IMU to the pelvis is ignored (the planner observes orientation and rates; accelerations
  feed only the safety layer's displays).
- Odometry (pelvis position and linear velocity) is not in LowState: a real robot needs a state estimator,
  which this stack does not provide.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Imu, JointState

from ezm_msgs.msg import JointCommand
from ezm_ros import conversions

NUM_MOTORS: Final = 20
UNUSED_MOTOR: Final = 9
#: Motor slot of each joint (the stack's joint names: the simulator's and the bundle's robot.joint_names).
#: Unitree's H1 JointIndex: right leg 8, 0, 1, 2, 11; left leg 7, 3, 4, 5, 10; torso 6; right arm 12-15;
#: left arm 16-19.
MOTOR_OF_JOINT: Final = {
    "left_hip_yaw": 7, "left_hip_roll": 3, "left_hip_pitch": 4, "left_knee": 5, "left_ankle": 10,
    "right_hip_yaw": 8, "right_hip_roll": 0, "right_hip_pitch": 1, "right_knee": 2, "right_ankle": 11,
    "torso": 6,
    "left_shoulder_pitch": 16, "left_shoulder_roll": 17, "left_shoulder_yaw": 18, "left_elbow": 19,
    "right_shoulder_pitch": 12, "right_shoulder_roll": 13, "right_shoulder_yaw": 14, "right_elbow": 15,
}
#: The joint whose angle turns the torso IMU's frame against the pelvis (about +z).
TORSO_JOINT: Final = "torso"
MODE_SERVO: Final = 0x0A  # strong motors
MODE_WEAK: Final = 0x01  # ankles and arms
WEAK_MOTORS: Final = frozenset(range(10, 20))
#: Unitree's "no target" values for q (rad) and dq (rad/s) (unitree_legged_const PosStopF, VelStopF).
POS_STOP: Final = 2.146e9
VEL_STOP: Final = 16000.0


class BoundaryError(ValueError):
    """A command or state that cannot cross the robot boundary; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class LowCmd:
    """unitree_go/LowCmd's motor_cmd[20] as arrays in motor order (the CRC is the SDK's, at write time)."""

    mode: np.ndarray  # (20,) uint8
    q: np.ndarray  # (20,) rad
    dq: np.ndarray  # (20,) rad/s
    tau: np.ndarray  # (20,) N·m
    kp: np.ndarray  # (20,) N·m/rad
    kd: np.ndarray  # (20,) N·m·s/rad


@dataclasses.dataclass(frozen=True)
class LowState:
    """The parts of unitree_go/LowState the stack reads: motor_state[20] (q, dq, tau_est) and imu_state."""

    q: np.ndarray  # (20,) rad
    dq: np.ndarray  # (20,) rad/s
    tau_est: np.ndarray  # (20,) N·m
    imu_quaternion: np.ndarray  # (4,) w, x, y, z: the torso's orientation in the world
    imu_gyroscope: np.ndarray  # (3,) rad/s, torso frame
    imu_accelerometer: np.ndarray  # (3,) m/s², torso frame (specific force)


def _motors(joint_names: Sequence[str]) -> np.ndarray:
    unknown = [name for name in joint_names if name not in MOTOR_OF_JOINT]
    if unknown:
        raise BoundaryError(f"joints {unknown} have no H1 motor (known: {sorted(MOTOR_OF_JOINT)})")
    if len(set(joint_names)) != len(joint_names):
        raise BoundaryError("joint names repeat")
    return np.array([MOTOR_OF_JOINT[name] for name in joint_names], dtype=np.int64)


def to_low_cmd(command: JointCommand, default_kp: dict[str, float] | None = None,
               default_kd: dict[str, float] | None = None) -> LowCmd:
    """The H1's LowCmd for a JointCommand of every joint in MOTOR_OF_JOINT (any order, mapped by name).

    Empty kp or kd in the command take `default_kp`/`default_kd` (per joint name, e.g. the robot's deploy
    gains); with neither, BoundaryError: a missing gain never falls back silently on a real robot. Every
    value must be finite. Motor 9 gets the stop values."""
    names = list(command.name)
    missing = sorted(set(MOTOR_OF_JOINT) - set(names))
    if missing:
        raise BoundaryError(f"command lacks joints {missing}: the H1 takes a target for every motor")
    motors = _motors(names)
    fields = {}
    for field, default, required in (("position", None, True), ("velocity", 0.0, False), ("effort", 0.0, False),
                                     ("kp", default_kp, False), ("kd", default_kd, False)):
        values = np.asarray(getattr(command, field), dtype=np.float64)
        if values.size == 0 and not required:
            if isinstance(default, dict):
                absent = [name for name in names if name not in default]
                if absent:
                    raise BoundaryError(f"no {field} for {absent}: the command has none and no default was given")
                values = np.array([default[name] for name in names], dtype=np.float64)
            elif default is None:
                raise BoundaryError(f"the command has no {field} and no default {field} was given: a real robot "
                                    "never falls back to a gain it was not told")
            else:
                values = np.full(len(names), default)
        if values.shape != (len(names),):
            raise BoundaryError(f"{field} has {values.size} entries for {len(names)} joints")
        if not np.isfinite(values).all():
            raise BoundaryError(f"{field} is not finite")
        fields[field] = values
    q, dq = np.full(NUM_MOTORS, POS_STOP), np.full(NUM_MOTORS, VEL_STOP)
    tau, kp, kd = np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS)
    q[motors], dq[motors], tau[motors] = fields["position"], fields["velocity"], fields["effort"]
    kp[motors], kd[motors] = fields["kp"], fields["kd"]
    mode = np.zeros(NUM_MOTORS, dtype=np.uint8)
    mode[motors] = [MODE_WEAK if motor in WEAK_MOTORS else MODE_SERVO for motor in motors]
    return LowCmd(mode, q.astype(np.float32), dq.astype(np.float32), tau.astype(np.float32),
                  kp.astype(np.float32), kd.astype(np.float32))


def from_low_state(state: LowState, joint_names: Sequence[str], stamp: Time) -> tuple[JointState, Imu]:
    """JointState (in `joint_names`' order) and the pelvis-frame Imu the stack reads, from the H1's LowState."""
    motors = _motors(joint_names)
    arrays = {field.name: np.asarray(getattr(state, field.name), dtype=np.float64)
              for field in dataclasses.fields(LowState)}
    for name, size in (("q", NUM_MOTORS), ("dq", NUM_MOTORS), ("tau_est", NUM_MOTORS), ("imu_quaternion", 4),
                       ("imu_gyroscope", 3), ("imu_accelerometer", 3)):
        if arrays[name].shape != (size,):
            raise BoundaryError(f"{name} has shape {arrays[name].shape}, the H1's has ({size},)")
        if not np.isfinite(arrays[name]).all():
            raise BoundaryError(f"{name} is not finite")
    norm = np.linalg.norm(arrays["imu_quaternion"])
    if not 0.9 < norm < 1.1:
        raise BoundaryError(f"imu_quaternion has norm {norm:.3g}, not a rotation")
    joints = conversions.joint_state_msg(stamp, joint_names, arrays["q"][motors], arrays["dq"][motors],
                                         arrays["tau_est"][motors])
    torso = MOTOR_OF_JOINT[TORSO_JOINT]
    quat, gyro, accel = pelvis_imu(arrays["imu_quaternion"] / norm, arrays["imu_gyroscope"],
                                   arrays["imu_accelerometer"], arrays["q"][torso], arrays["dq"][torso])
    return joints, conversions.imu_msg(stamp, quat, gyro, accel)


def pelvis_imu(torso_quat_wxyz: np.ndarray, torso_gyro: np.ndarray, torso_accel: np.ndarray, torso_angle: float,
               torso_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The torso IMU's reading moved into the pelvis frame. The torso frame is the pelvis frame turned by the
    torso joint's angle θ about z: R_pelvis = R_torso Rz(-θ); the torso spins at the pelvis's rate plus θ̇ about
    z, so ω_pelvis = Rz(θ) ω_torso - θ̇ e_z (both in their own frames); the specific force is rotated only."""
    half = 0.5 * float(torso_angle)
    undo_torso = np.array([np.cos(half), 0.0, 0.0, -np.sin(half)])  # Rz(-θ)
    quat = _multiply(np.asarray(torso_quat_wxyz, dtype=np.float64), undo_torso)
    turn = np.array([np.cos(half), 0.0, 0.0, np.sin(half)])  # Rz(θ): torso frame -> pelvis frame
    gyro = conversions.rotate(turn, torso_gyro) - np.array([0.0, 0.0, float(torso_rate)])
    accel = conversions.rotate(turn, torso_accel)
    return quat / np.linalg.norm(quat), gyro, accel


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of two (w, x, y, z) quaternions: the rotation b, then a."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])
