"""Named, read-only signals of the H1 read straight from MjData.

Every property reads MjData as it stands: no `mj_forward`. After an env step that means the state
HumanoidBench's rewards see (positions, frames and sensors from the start of the last physics substep,
qpos/qvel from its end; see docs/sim_bridge.md). Arrays are returned as copies, so callers can keep them.
Ids are looked up once, at construction, by the names in `sim_bridge.h1.constants`.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim_bridge.h1 import constants as c


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    idx = mujoco.mj_name2id(model, obj, name)
    if idx < 0:
        raise ValueError(f"the model has no {obj.name.removeprefix('mjOBJ_').lower()} named {name!r}")
    return idx


class H1Signals:
    """Read-only accessors for the H1's named quantities (world frame, SI units)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self._model = model
        self._data = data
        site = mujoco.mjtObj.mjOBJ_SITE
        body = mujoco.mjtObj.mjOBJ_BODY
        self._head = _id(model, site, c.HEAD_SITE)
        self._imu = _id(model, site, c.IMU_SITE)
        self._left_foot = _id(model, site, c.LEFT_FOOT_SITE)
        self._right_foot = _id(model, site, c.RIGHT_FOOT_SITE)
        self._left_hand = _id(model, site, c.LEFT_HAND_SITE)
        self._right_hand = _id(model, site, c.RIGHT_HAND_SITE)
        self._pelvis = _id(model, body, c.ROOT_BODY)
        self._torso = _id(model, body, c.TORSO_BODY)
        sensor = _id(model, mujoco.mjtObj.mjOBJ_SENSOR, c.PELVIS_SUBTREELINVEL_SENSOR)
        adr = model.sensor_adr[sensor]
        self._com_vel = slice(adr, adr + 3)
        velocimeter = _id(model, mujoco.mjtObj.mjOBJ_SENSOR, c.BODY_VELOCIMETER_SENSOR)
        adr = model.sensor_adr[velocimeter]
        self._body_vel = slice(adr, adr + 3)

        # The robot's own coordinates: the joints of the pelvis subtree. They come first in qpos/qvel
        # (the robot is built before any task object), which `free_base` at address 0 confirms.
        free = _id(model, mujoco.mjtObj.mjOBJ_JOINT, c.FREE_JOINT)
        if model.jnt_qposadr[free] != 0 or model.jnt_dofadr[free] != 0:
            raise ValueError(f"{c.FREE_JOINT!r} must be the first joint of the model")
        robot_joints = [j for j in range(model.njnt) if model.body_rootid[model.jnt_bodyid[j]] == self._pelvis]
        next_qposadr = np.append(model.jnt_qposadr, model.nq)
        next_dofadr = np.append(model.jnt_dofadr, model.nv)
        self._nq = int(max(next_qposadr[j + 1] for j in robot_joints))
        self._nv = int(max(next_dofadr[j + 1] for j in robot_joints))
        robot_joint_set = set(robot_joints)
        self._nu = sum(1 for a in range(model.nu) if model.actuator_trnid[a, 0] in robot_joint_set)

    # --- sizes ----------------------------------------------------------------------------------------
    @property
    def robot_nq(self) -> int:
        """Number of qpos entries of the robot (26 for h1): qpos[:robot_nq]."""
        return self._nq

    @property
    def robot_nv(self) -> int:
        """Number of qvel entries of the robot (25 for h1): qvel[:robot_nv]."""
        return self._nv

    @property
    def robot_nu(self) -> int:
        """Number of robot actuators (19 for h1)."""
        return self._nu

    # --- root -----------------------------------------------------------------------------------------
    @property
    def root_qpos(self) -> np.ndarray:
        """Free-joint qpos (7,): position (m) and unit quaternion (w, x, y, z) of the pelvis."""
        return self._data.qpos[0:7].copy()

    @property
    def root_qvel(self) -> np.ndarray:
        """Free-joint qvel (6,): linear velocity (m/s, world frame), angular velocity (rad/s, local)."""
        return self._data.qvel[0:6].copy()

    @property
    def pelvis_position(self) -> np.ndarray:
        """Pelvis body origin (3,), m (`xpos`)."""
        return self._data.xpos[self._pelvis].copy()

    @property
    def pelvis_quaternion(self) -> np.ndarray:
        """Pelvis body orientation (4,), (w, x, y, z) (`xquat`)."""
        return self._data.xquat[self._pelvis].copy()

    @property
    def pelvis_upright(self) -> float:
        """z-z entry of the pelvis rotation matrix: 1 upright, -1 upside down."""
        return float(self._data.xmat[self._pelvis, 8])

    # --- torso and head -------------------------------------------------------------------------------
    @property
    def torso_upright(self) -> float:
        """z-z entry of the torso_link rotation matrix: 1 upright, -1 upside down. HB `torso_upright`."""
        return float(self._data.xmat[self._torso, 8])

    @property
    def head_position(self) -> np.ndarray:
        """`head` site position (3,), m."""
        return self._data.site_xpos[self._head].copy()

    @property
    def head_height(self) -> float:
        """z of the `head` site, m. HB `head_height`."""
        return float(self._data.site_xpos[self._head, 2])

    @property
    def imu_position(self) -> np.ndarray:
        """`imu` site position (3,), m."""
        return self._data.site_xpos[self._imu].copy()

    # --- centre of mass ---------------------------------------------------------------------------------
    @property
    def center_of_mass_velocity(self) -> np.ndarray:
        """Linear velocity of the robot's centre of mass (3,), m/s, world frame (`pelvis_subtreelinvel`)."""
        return self._data.sensordata[self._com_vel].copy()

    @property
    def center_of_mass_position(self) -> np.ndarray:
        """Centre of mass of the robot (3,), m (`subtree_com` of the pelvis)."""
        return self._data.subtree_com[self._pelvis].copy()

    @property
    def body_velocity(self) -> np.ndarray:
        """Pelvis linear velocity in the pelvis frame (3,), m/s (`body_velocimeter` at site `com`)."""
        return self._data.sensordata[self._body_vel].copy()

    # --- actuators --------------------------------------------------------------------------------------
    @property
    def actuator_forces(self) -> np.ndarray:
        """Actuator forces (robot_nu,), N·m (`actuator_force`, after the force limits)."""
        return self._data.actuator_force[: self._nu].copy()

    # --- feet and hands ---------------------------------------------------------------------------------
    @property
    def left_foot_position(self) -> np.ndarray:
        return self._data.site_xpos[self._left_foot].copy()

    @property
    def right_foot_position(self) -> np.ndarray:
        return self._data.site_xpos[self._right_foot].copy()

    @property
    def left_foot_height(self) -> float:
        """z of the `left_foot` site (5 cm below the ankle joint), m."""
        return float(self._data.site_xpos[self._left_foot, 2])

    @property
    def right_foot_height(self) -> float:
        return float(self._data.site_xpos[self._right_foot, 2])

    @property
    def left_hand_position(self) -> np.ndarray:
        """`left_hand` site (3,), m: 0.31 m along the left elbow link."""
        return self._data.site_xpos[self._left_hand].copy()

    @property
    def right_hand_position(self) -> np.ndarray:
        return self._data.site_xpos[self._right_hand].copy()
