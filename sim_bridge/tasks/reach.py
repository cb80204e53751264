"""h1-reach-v0: stay upright and bring the left hand to a random goal point.

Reward and observation from HumanoidBench 791405f ("HB"): `envs/reach.py` (the scene adds nothing).
The reward is a sum and can be negative: 5 · (pelvis z-z) for staying upright, minus a small penalty
on the robot's squared joint velocities, plus 5 when the hand is within 1 m of the goal and 10 more
within 5 cm. It never terminates.

The goal is the task state. HB draws it from numpy's global RNG at reset; we draw it from the env's
seeded generator, so a seed reproduces it (a deliberate difference, docs/scene_tasks.md).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim_bridge.tasks.base import Task

# --- goal (HB `Reach.target_low/high`) --------------------------------------------------------------------
GOAL_LOW_M = np.array([-2.0, -2.0, 0.2])
GOAL_HIGH_M = np.array([2.0, 2.0, 2.0])
#: A site that shows the goal (drawn only; HB draws a 5 cm red marker there).
GOAL_SITE = "reach_goal"
GOAL_SITE_RADIUS_M = 0.05
GOAL_SITE_RGBA = (0.8, 0.28, 0.28, 1.0)

# --- reward (HB `Reach.get_reward`) ------------------------------------------------------------------------
HEALTHY_WEIGHT = 5.0  # times the pelvis z-z (xmat of body 1 in HB, the pelvis, not the torso)
MOTION_PENALTY_WEIGHT = 1e-4  # times the sum of the robot's squared qvel, (m/s)² and (rad/s)² mixed
CLOSE_DISTANCE_M = 1.0
CLOSE_BONUS = 5.0
SUCCESS_DISTANCE_M = 0.05
SUCCESS_BONUS = 10.0


class Reach(Task):
    name = "reach"
    success_bar = 12000.0

    def __init__(self) -> None:
        super().__init__()
        self._goal = np.zeros(3)  # HB's value before the first reset
        self._model: mujoco.MjModel | None = None

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        spec.worldbody.add_site(name=GOAL_SITE, size=(GOAL_SITE_RADIUS_M, 0.0, 0.0), rgba=GOAL_SITE_RGBA)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._model = model
        self._goal_site = model.site(GOAL_SITE).id
        self._show_goal()

    # --- goal -----------------------------------------------------------------------------------------
    def reset_task_state(self, rng: np.random.Generator) -> None:
        self._goal = rng.uniform(GOAL_LOW_M, GOAL_HIGH_M)
        self._show_goal()

    @property
    def task_state(self) -> dict[str, Any]:
        return {"goal": self._goal.copy()}

    @task_state.setter
    def task_state(self, state: dict[str, Any]) -> None:
        Task.task_state.fset(self, state)  # rejects unknown keys
        goal = np.array(state["goal"], dtype=np.float64)
        if goal.shape != (3,):
            raise ValueError(f"reach goal must have shape (3,), got {goal.shape}")
        self._goal = goal
        self._show_goal()

    def _show_goal(self) -> None:
        if self._model is not None:
            self._model.site_pos[self._goal_site] = self._goal  # world site: seen at the next forward

    # --- reward, termination, observation -----------------------------------------------------------
    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        hand_dist = float(np.sqrt(np.square(s.left_hand_position - self._goal).sum()))  # HB's arithmetic
        healthy_reward = HEALTHY_WEIGHT * s.pelvis_upright
        motion_penalty = float(np.square(data.qvel[: s.robot_nv]).sum())
        reward_close = CLOSE_BONUS if hand_dist < CLOSE_DISTANCE_M else 0.0
        reward_success = SUCCESS_BONUS if hand_dist < SUCCESS_DISTANCE_M else 0.0
        reward = healthy_reward - MOTION_PENALTY_WEIGHT * motion_penalty + reward_close + reward_success
        return reward, {
            "hand_dist": hand_dist,
            "healthy_reward": healthy_reward,
            "motion_penalty": motion_penalty,
            "reward_close": reward_close,
            "reward_success": reward_success,
        }

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return False  # HB's reach never terminates

    def observation(self, data: mujoco.MjData) -> np.ndarray:
        """[robot qpos (26), robot qvel (25), left hand site position (3, stale like HB), goal (3)]."""
        s = self.signals
        return np.concatenate([data.qpos[: s.robot_nq], data.qvel[: s.robot_nv], s.left_hand_position, self._goal])

    def observation_size(self, model: mujoco.MjModel) -> int:
        # Reach adds no joints, so the robot's coordinates are all of qpos/qvel.
        return model.nq + model.nv + 3 + 3
