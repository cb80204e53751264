"""h1-balance_simple-v0 and h1-balance_hard-v0: stand still on a board resting on a sphere.

Scene and reward from HumanoidBench 791405f ("HB"): `assets/tasks/balance_{simple,hard}.xml`,
`assets/envs/h1_pos_balance_*.xml` (keyframes) and `envs/balance.py`. The reward is stand's, with the
head bound raised by the board's height. The board is a free body in both tasks; the sphere is fixed to
the world in balance_simple and free in balance_hard. Free joints follow the robot's in qpos/qvel, board
then sphere.

The episode ends when the robot's root drops below 0.8 m, when the sphere touches anything other than
the floor or the board, or when the floor touches anything other than the sphere: a foot, a hand or the
board reaching the floor all end it.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom, any_contact, geom_mask
from sim_bridge.tasks.base import Task
from sim_bridge.world import floor_geom_id

# --- scene (HB balance_*.xml); positions are the bodies' rest positions, which HB's keyframe repeats ----
BOARD_BODY = "stand_board"
BOARD_FREE_JOINT = "free_stand_board"
BOARD_COLLISION_GEOM = "stand_board_collision"
BOARD_POS_M = (0.0, 0.0, 0.37)  # board centre: on top of the sphere (0.34 m) plus half its thickness
#: 0.3 m long (x), 1.1 m wide (y), 0.06 m thick; 19.8 kg from its visual geom at 1000 kg/m³.
BOARD_HALF_SIZE_M = (0.15, 0.55, 0.03)
BOARD_RGBA = (0.7, 0.7, 0.7, 1.0)
SPHERE_BODY = "rolling_pivot"
SPHERE_FREE_JOINT = "free_rolling_pivot"
SPHERE_COLLISION_GEOM = "pivot_sphere_collision"
SPHERE_POS_M = (0.0, 0.0, 0.17)  # resting on the floor
SPHERE_RADIUS_M = 0.17  # 20.6 kg at 1000 kg/m³
SPHERE_RGBA = (0.3, 0.3, 0.3, 1.0)

# --- start (HB keyframe) -------------------------------------------------------------------------------
#: Robot root position (m) on the board, replacing the usual (0, 0, 0.98); joints as usual.
ROOT_START_POS_M = (-0.1, 0.0, 1.38)

# --- reward and termination (HB `BalanceBase`) -----------------------------------------------------------
#: Board height added to the stand bound (m): the head must be 1.65 + 0.37 = 2.02 m high.
BOARD_HEIGHT_M = 0.37
HEAD_BOUND_M = rewards.STAND_HEIGHT_M + BOARD_HEIGHT_M
TERMINATION_PELVIS_HEIGHT_M = 0.8  # terminated when the root's qpos z drops below this


class _Balance(Task):
    """HB's `BalanceBase`; `_sphere_is_free` picks simple (welded sphere) or hard (free sphere)."""

    success_bar = 800.0
    _sphere_is_free = False

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        board = spec.worldbody.add_body(name=BOARD_BODY, pos=BOARD_POS_M)
        board.add_freejoint(name=BOARD_FREE_JOINT)
        box = mujoco.mjtGeom.mjGEOM_BOX
        add_visual_geom(board, type=box, size=BOARD_HALF_SIZE_M, rgba=BOARD_RGBA)
        add_collision_geom(board, name=BOARD_COLLISION_GEOM, type=box, size=BOARD_HALF_SIZE_M)

        sphere = spec.worldbody.add_body(name=SPHERE_BODY, pos=SPHERE_POS_M)
        if self._sphere_is_free:
            sphere.add_freejoint(name=SPHERE_FREE_JOINT)
        ball = mujoco.mjtGeom.mjGEOM_SPHERE
        radius = (SPHERE_RADIUS_M, 0.0, 0.0)
        add_visual_geom(sphere, type=ball, size=radius, rgba=SPHERE_RGBA)
        add_collision_geom(sphere, name=SPHERE_COLLISION_GEOM, type=ball, size=radius)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._floor = geom_mask(model, [floor_geom_id(model)])
        self._sphere = geom_mask(model, [SPHERE_COLLISION_GEOM])
        self._floor_or_board = geom_mask(model, [floor_geom_id(model), BOARD_COLLISION_GEOM])

    def keyframe_qpos(self, model: mujoco.MjModel, robot_qpos: np.ndarray) -> np.ndarray:
        qpos = super().keyframe_qpos(model, robot_qpos)  # board and sphere at their rest positions
        qpos[0:3] = ROOT_START_POS_M
        return qpos

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        terms = rewards.stand_terms(s.head_height, s.torso_upright, s.actuator_forces, head_bound=HEAD_BOUND_M)
        dont_move = rewards.dont_move(s.center_of_mass_velocity[0:2])
        return terms.small_control * terms.stand_reward * dont_move, {**terms.info(), "dont_move": dont_move}

    def get_terminated(self, data: mujoco.MjData) -> bool:
        if data.qpos[2] < TERMINATION_PELVIS_HEIGHT_M:
            return True
        sphere_misplaced = any_contact(data, self._sphere, excluding=self._floor_or_board)
        floor_touched = any_contact(data, self._floor, excluding=self._sphere)
        return sphere_misplaced or floor_touched


class BalanceSimple(_Balance):
    name = "balance_simple"


class BalanceHard(_Balance):
    name = "balance_hard"
    _sphere_is_free = True
