"""h1-sit_simple-v0 and h1-sit_hard-v0: sit down on a chair behind the robot.

Scene and reward from HumanoidBench 791405f ("HB"): `assets/tasks/sit_{simple,hard}.xml` and
`envs/basic_locomotion_envs.py` (`Sit`, `SitHard`). In sit_simple the chair is fixed to the world; in
sit_hard it is a free body (7 more qpos, 6 more qvel, after the robot's) and the robot starts at a random
place and heading in front of it.

The reward reads the root position from qpos (end of the step) and the chair position from the chair
body's `xpos` (start of the last substep), as HB does.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom
from sim_bridge.tasks.base import Task

_BOX = mujoco.mjtGeom.mjGEOM_BOX

# --- chair (HB sit_simple.xml / sit_hard.xml) -----------------------------------------------------------
CHAIR_BODY = "chair"
CHAIR_FREE_JOINT = "free_chair"
#: Where the chair stands (m): 0.25 m behind the robot's start, on the floor.
CHAIR_POS_M = (-0.25, 0.0, 0.0)
#: HB textures the chair with a wood image; we colour it instead (rendering only).
CHAIR_RGBA = (0.76, 0.6, 0.42, 1.0)
#: Drawn parts, (centre, half-size) in the chair frame (m): four legs, seat, two back posts, backrest.
#: They carry the chair's mass at 1000 kg/m³: 15.75 kg in all (HB's density default).
CHAIR_VISUAL_BOXES = (
    ((0.19, 0.19, 0.225), (0.02, 0.02, 0.225)),
    ((0.19, -0.19, 0.225), (0.02, 0.02, 0.225)),
    ((-0.19, 0.19, 0.225), (0.02, 0.02, 0.225)),
    ((-0.19, -0.19, 0.225), (0.02, 0.02, 0.225)),
    ((0.0, 0.0, 0.45), (0.21, 0.21, 0.025)),
    ((-0.23, 0.19, 0.6375), (0.02, 0.02, 0.2125)),
    ((-0.23, -0.19, 0.6375), (0.02, 0.02, 0.2125)),
    ((-0.23, 0.0, 0.77), (0.02, 0.21, 0.08)),
)
#: Collision parts (massless, HB's collision class overrides their `density` attributes): a slab for
#: the back and a solid block from the floor to the seat top at 0.475 m.
CHAIR_COLLISION_BOXES = (
    ((-0.23, 0.0, 0.65), (0.02, 0.21, 0.2)),
    ((0.0, 0.0, 0.2375), (0.21, 0.21, 0.2375)),
)

# --- reward and termination (HB `Sit`) -------------------------------------------------------------------
#: Root height (qpos z, m) band that counts as sitting, and its gaussian margin.
SITTING_HEIGHT_BOUNDS_M = (0.68, 0.72)
SITTING_HEIGHT_MARGIN_M = 0.2
#: Root x minus chair x (m) band that counts as on the chair, and margin; root y must match chair y.
ON_CHAIR_X_BOUNDS_M = (-0.19, 0.19)
ON_CHAIR_X_MARGIN_M = 0.2
ON_CHAIR_Y_MARGIN_M = 0.1
#: Head height above the IMU (m) band of an upright sitting posture, and margin.
POSTURE_HEAD_ABOVE_IMU_BOUNDS_M = (0.35, 0.45)
POSTURE_MARGIN_M = 0.3
#: Torso z-z above which `upright` is 1 (linear to 0 over the margin, i.e. at z-z = 0.05).
UPRIGHT_BOUND = 0.95
UPRIGHT_MARGIN = 0.9
TERMINATION_PELVIS_HEIGHT_M = 0.5  # terminated when the root's qpos z drops below this

# --- sit_hard start (HB `SitHard.reset_model`) -----------------------------------------------------------
#: The robot root is moved to x ~ U(0.2, 0.4) m, y ~ U(-0.15, 0.15) m, yaw ~ U(-1.8, 1.8) rad, drawn in
#: that order, replacing the noisy x, y and orientation (z keeps its noise).
START_X_RANGE_M = (0.2, 0.4)
START_Y_RANGE_M = (-0.15, 0.15)
START_YAW_RANGE_RAD = (-1.8, 1.8)


class _Sit(Task):
    """HB's `Sit` reward and termination around a chair that is free or fixed (`_chair_is_free`)."""

    success_bar = 750.0
    _chair_is_free = False

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        chair = spec.worldbody.add_body(name=CHAIR_BODY, pos=CHAIR_POS_M)
        if self._chair_is_free:
            chair.add_freejoint(name=CHAIR_FREE_JOINT)
        for centre, half_size in CHAIR_VISUAL_BOXES:
            add_visual_geom(chair, type=_BOX, pos=centre, size=half_size, rgba=CHAIR_RGBA)
        for centre, half_size in CHAIR_COLLISION_BOXES:
            add_collision_geom(chair, type=_BOX, pos=centre, size=half_size)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._chair = model.body(CHAIR_BODY).id

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        root_x, root_y, root_z = data.qpos[0:3]
        chair_x, chair_y = data.xpos[self._chair, 0:2]
        sitting = rewards.tolerance(float(root_z), bounds=SITTING_HEIGHT_BOUNDS_M, margin=SITTING_HEIGHT_MARGIN_M)
        on_chair = (
            rewards.tolerance(float(root_x - chair_x), bounds=ON_CHAIR_X_BOUNDS_M, margin=ON_CHAIR_X_MARGIN_M)
            * rewards.tolerance(float(root_y - chair_y), margin=ON_CHAIR_Y_MARGIN_M)
        )
        sitting_posture = rewards.tolerance(s.head_height - float(s.imu_position[2]),
                                            bounds=POSTURE_HEAD_ABOVE_IMU_BOUNDS_M, margin=POSTURE_MARGIN_M)
        upright = rewards.upright(s.torso_upright, bound=UPRIGHT_BOUND, margin=UPRIGHT_MARGIN)
        sit_reward = (0.5 * sitting + 0.5 * on_chair) * upright * sitting_posture
        small_control = rewards.small_control(s.actuator_forces)
        dont_move = rewards.dont_move(s.center_of_mass_velocity[0:2])
        return small_control * sit_reward * dont_move, {
            "small_control": small_control,
            "sit_reward": sit_reward,
            "dont_move": dont_move,
            "sitting": sitting,
            "upright": upright,
            "sitting_posture": sitting_posture,
        }

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return bool(data.qpos[2] < TERMINATION_PELVIS_HEIGHT_M)


class SitSimple(_Sit):
    name = "sit_simple"


class SitHard(_Sit):
    name = "sit_hard"
    _chair_is_free = True

    def randomize_qpos(self, qpos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Place and turn the robot in front of the chair. HB draws from numpy's global RNG; we draw
        from the env's seeded generator so that a seed reproduces the start (docs/scene_tasks.md)."""
        qpos = qpos.copy()
        qpos[0] = rng.uniform(*START_X_RANGE_M)
        qpos[1] = rng.uniform(*START_Y_RANGE_M)
        yaw = rng.uniform(*START_YAW_RANGE_RAD)
        qpos[3:7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))  # rotation about world z
        return qpos
