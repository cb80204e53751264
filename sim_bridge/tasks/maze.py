"""h1-maze-v0: walk through a maze past checkpoints (0,0) -> (3,0) -> (3,6) -> (6,6).

Scene and reward from HumanoidBench 791405f ("HB"): `assets/locomotion/generated_xml_maze.xml`,
`assets/tasks/maze.xml` and `envs/maze.py`. The task state is the stage: how many checkpoints have
been reached (0..4). A checkpoint counts as reached when the pelvis body is within 0.4 m of it
horizontally, one per step; reaching the k-th pays a one-off 100·k. The robot starts on checkpoint
(0, 0), so the first step pays 100.

HB advances the stage inside its reward function and then computes the rest of that step's reward with
the new stage (new direction, next checkpoint, the payment). Here `get_reward` is pure: it computes the
stage the step reaches (`_reached_stage`) and rewards exactly as HB would with it; `after_step` then
stores that stage. Both read the same MjData, so they agree.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom, any_contact, geom_mask
from sim_bridge.tasks.base import Task

# --- maze blocks (HB generated_xml_maze.xml) ----------------------------------------------------------
#: Body "maze" at (-2.25, -2.25, 0) m. Block (i, j) of this map ('#' = block) is a 1.5 m cube-ish box,
#: 1.2 m tall, centred at (0.75 + 1.5 j, 9.75 - 1.5 i, 0.6) m in the maze frame, so world x = 1.5 j - 1.5,
#: y = 7.5 - 1.5 i. Row 0 is the far (+y) side. Blocks are added row by row, visual then collision;
#: the collision geom of (i, j) is "block_collision_<i><j>".
MAZE_POS_M = (-2.25, -2.25, 0.0)
MAZE_MAP = (
    "#######",
    "#.....#",
    "###.#.#",
    "#.....#",
    "#.#.###",
    "#.....#",
    "#######",
)
BLOCK_PITCH_M = 1.5
BLOCK_ORIGIN_M = (0.75, 9.75)  # centre of block (0, 0) in the maze frame; rows run towards -y
BLOCK_HALF_SIZE_M = (0.75, 0.75, 0.6)
BLOCK_RGBA = (0.4, 0.4, 0.4, 0.3)
#: HB discounts contacts with any geom whose id is at least this one's: every block, since the maze
#: is the last thing in the model (a visual geom past it never collides).
FIRST_WALL_GEOM = "block_collision_00"

# --- checkpoints (HB `Maze.checkpoints`, maze.xml markers) ---------------------------------------------
#: Checkpoint positions (x, y) in metres; stage k's target is CHECKPOINTS_XY[k] (the last one once all
#: are reached).
CHECKPOINTS_XY = ((0.0, 0.0), (3.0, 0.0), (3.0, 6.0), (6.0, 6.0))
FINAL_STAGE = len(CHECKPOINTS_XY)  # 4: every checkpoint reached
_CHECKPOINTS = np.array(CHECKPOINTS_XY)
#: Unit direction (x, y) in which `move` asks for speed, by stage: towards the stage's checkpoint.
#: Stage 0 (start) points +x; the last entry is HB's, though `move` is 1 at the final stage anyway.
MOVE_DIRECTION_BY_STAGE = ((1.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, 1.0))
CHECKPOINT_REACHED_M = 0.4  # horizontal pelvis distance at which a checkpoint counts as reached
STAGE_PAYMENT = 100.0  # reaching checkpoint k (stage k) pays STAGE_PAYMENT * k once
#: Marker geoms and sites "intersection_a".."_d" at the checkpoints, 1 m up (drawn only).
MARKER_NAMES = ("intersection_a", "intersection_b", "intersection_c", "intersection_d")
MARKER_HEIGHT_M = 1.0
MARKER_RADIUS_M = 0.05
MARKER_GROUP = 1
#: HB colours a reached checkpoint's marker green and the next one red (the others stay black).
MARKER_BLACK = (0.0, 0.0, 0.0, 1.0)
MARKER_GREEN = (0.0, 1.0, 0.0, 1.0)
MARKER_RED = (1.0, 0.0, 0.0, 1.0)

# --- reward and termination (HB `MazeBase`) ---------------------------------------------------------------
MOVE_SPEED_MPS = 2.0  # asked-for speed along the stage direction; 0 across it
MOVE_MARGIN_MPS = 1.0  # linear fall-off of each velocity component's error
CHECKPOINT_MARGIN_M = 1.0  # gaussian margin of the IMU's horizontal distance to the target checkpoint
WALL_CONTACT_DISCOUNT = 0.1
W_STAND = 0.2
W_MOVE = 0.4
W_CHECKPOINT = 0.4
TERMINATION_PELVIS_HEIGHT_M = 0.2  # terminated when the root's qpos z drops below this


class Maze(Task):
    name = "maze"
    success_bar = 1200.0
    camera_name = "cam_maze"

    def __init__(self) -> None:
        super().__init__()
        self._stage = 0
        self._model: mujoco.MjModel | None = None

    # --- scene ----------------------------------------------------------------------------------------
    def build_scene(self, spec: mujoco.MjSpec) -> None:
        maze = spec.worldbody.add_body(name="maze", pos=MAZE_POS_M)
        box = mujoco.mjtGeom.mjGEOM_BOX
        x0, y0 = BLOCK_ORIGIN_M
        for i, row in enumerate(MAZE_MAP):
            for j, cell in enumerate(row):
                if cell != "#":
                    continue
                centre = (x0 + BLOCK_PITCH_M * j, y0 - BLOCK_PITCH_M * i, BLOCK_HALF_SIZE_M[2])
                add_visual_geom(maze, type=box, pos=centre, size=BLOCK_HALF_SIZE_M, rgba=BLOCK_RGBA)
                add_collision_geom(maze, name=f"block_collision_{i}{j}", type=box, pos=centre,
                                   size=BLOCK_HALF_SIZE_M)
        for name, (x, y) in zip(MARKER_NAMES, CHECKPOINTS_XY):
            pos = (x, y, MARKER_HEIGHT_M)
            spec.worldbody.add_site(name=name, pos=pos)
            spec.worldbody.add_geom(name=name, pos=pos, size=(MARKER_RADIUS_M, 0.0, 0.0), rgba=MARKER_BLACK,
                                    contype=0, conaffinity=0, group=MARKER_GROUP)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._model = model
        self._walls = geom_mask(model, range(model.geom(FIRST_WALL_GEOM).id, model.ngeom))
        self._markers = [model.geom(name).id for name in MARKER_NAMES]
        self._paint_markers()

    # --- stage ----------------------------------------------------------------------------------------
    def reset_task_state(self, rng: np.random.Generator) -> None:
        self._stage = 0
        self._paint_markers()

    @property
    def task_state(self) -> dict[str, Any]:
        return {"stage": self._stage}

    @task_state.setter
    def task_state(self, state: dict[str, Any]) -> None:
        Task.task_state.fset(self, state)  # rejects unknown keys
        stage = int(state["stage"])
        if not 0 <= stage <= FINAL_STAGE:
            raise ValueError(f"maze stage must be in 0..{FINAL_STAGE}, got {stage}")
        self._stage = stage
        self._paint_markers()

    def _reached_stage(self, data: mujoco.MjData) -> int:
        """The stage after this step: one more if the pelvis is on the current target checkpoint."""
        if self._stage == FINAL_STAGE:
            return self._stage
        offset = self.signals.pelvis_position[0:2] - _CHECKPOINTS[self._stage]
        if np.linalg.norm(offset) < CHECKPOINT_REACHED_M:
            return self._stage + 1
        return self._stage

    def after_step(self, data: mujoco.MjData) -> dict[str, float]:
        stage = self._reached_stage(data)
        if stage != self._stage:
            self._stage = stage
            self._paint_markers()
        return {}

    def _paint_markers(self) -> None:
        if self._model is None:
            return
        for k, geom in enumerate(self._markers):
            reached = k < self._stage or k == 0  # HB paints the start green from the first step
            colour = MARKER_GREEN if reached else MARKER_RED if k == self._stage else MARKER_BLACK
            self._model.geom_rgba[geom] = colour

    # --- reward ---------------------------------------------------------------------------------------
    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        stage = self._reached_stage(data)
        stage_convert_reward = STAGE_PAYMENT * stage if stage > self._stage else 0.0

        stand_reward = rewards.standing(s.head_height) * rewards.upright(s.torso_upright)
        small_control = rewards.small_control(s.actuator_forces)
        wall_collision_discount = WALL_CONTACT_DISCOUNT if any_contact(data, self._walls) else 1.0

        if stage == FINAL_STAGE:
            along = 1.0
        else:
            direction_x, direction_y = MOVE_DIRECTION_BY_STAGE[stage]
            vx, vy = s.center_of_mass_velocity[0:2]
            along = (self._velocity_match(vx - direction_x * MOVE_SPEED_MPS)
                     * self._velocity_match(vy - direction_y * MOVE_SPEED_MPS))
        move = (5.0 * along + 1.0) / 6.0  # HB's move mapping, as in rewards.move

        distance = np.linalg.norm(_CHECKPOINTS[min(stage, FINAL_STAGE - 1)] - s.imu_position[0:2])
        checkpoint_proximity_reward = rewards.tolerance(float(distance), margin=CHECKPOINT_MARGIN_M)

        reward = (
            W_STAND * (stand_reward * small_control)
            + W_MOVE * move
            + W_CHECKPOINT * checkpoint_proximity_reward
        ) * wall_collision_discount + stage_convert_reward
        return reward, {
            "stand_reward": stand_reward,
            "small_control": small_control,
            "move": move,
            "wall_collision_discount": wall_collision_discount,
            "stage_convert_reward": stage_convert_reward,
            "checkpoint_proximity_reward": checkpoint_proximity_reward,
            "success_subtasks": float(stage),
        }

    @staticmethod
    def _velocity_match(error_mps: float) -> float:
        return rewards.tolerance(float(error_mps), margin=MOVE_MARGIN_MPS, sigmoid="linear", value_at_margin=0.0)

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return bool(data.qpos[2] < TERMINATION_PELVIS_HEIGHT_M)
