"""HumanoidBench's stand, walk and run: one task class, parameterised by the target speed.

reward = small_control * standing * upright * (dont_move if speed == 0 else move(speed)), each term in
[0, 1] (see `sim_bridge.rewards`); the episode terminates when the pelvis drops below 0.2 m. Source:
HumanoidBench 791405f `humanoid_bench/envs/basic_locomotion_envs.py` (`Walk`, `Stand`, `Run`).
"""

from __future__ import annotations

from typing import ClassVar, Final

import mujoco

from sim_bridge import rewards
from sim_bridge.tasks.base import Task

#: Pelvis height (qpos[2], m) below which the robot has fallen. HB `Walk.get_terminated`.
FALL_HEIGHT_M: Final = 0.2


class Locomotion(Task):
    """Stand up and move forward (+x) at `move_speed` m/s; `move_speed` 0 means stand still."""

    move_speed: ClassVar[float] = 0.0

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        terms = rewards.stand_terms(s.head_height, s.torso_upright, s.actuator_forces)
        com_velocity = s.center_of_mass_velocity
        # The products keep HB's evaluation order, so the floats match HB's bit for bit.
        if self.move_speed == 0:
            dont_move = rewards.dont_move(com_velocity[:2])
            return terms.small_control * terms.stand_reward * dont_move, {**terms.info(), "dont_move": dont_move}
        move = rewards.move(float(com_velocity[0]), self.move_speed)
        return terms.small_control * terms.stand_reward * move, {**terms.info(), "move": move}

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return bool(data.qpos[2] < FALL_HEIGHT_M)


class Stand(Locomotion):
    name = "stand"
    move_speed = 0.0
    success_bar = 800.0


class Walk(Locomotion):
    name = "walk"
    move_speed = rewards.WALK_SPEED_MPS
    success_bar = 700.0


class Run(Locomotion):
    name = "run"
    move_speed = rewards.RUN_SPEED_MPS
    success_bar = 700.0
