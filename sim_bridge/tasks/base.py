"""The contract between the environment and a HumanoidBench task.

A task owns what differs between HumanoidBench tasks: the scene objects it adds to the robot's world,
its reset keyframe and randomisation, its reward, its termination, its observation extras and any
internal state (the maze stage, the reach goal). The environment (`sim_bridge.env.HumanoidEnv`) owns
what is common: building and compiling the model, the action map, frame skip, reset noise, time
limits and the gymnasium API. Tasks read the robot only through `sim_bridge.h1.signals.H1Signals`,
never through raw ids, so a second robot (h1hand) can reuse them.

Lifecycle, as `HumanoidEnv` drives it:

1. `build_scene(spec)` once, on the robot's `MjSpec` before compiling: add bodies, geoms, joints,
   sites of the task's scene. Free joints must be added in HumanoidBench's order, because qpos/qvel
   layouts are part of the parity contract (robot first, then task objects).
2. `bind(model, signals)` once after compiling: cache ids, keep the signals object.
3. On reset: `keyframe_qpos(model, robot_qpos)` gives the full qpos before noise; the env adds
   U(-0.01, 0.01) to every entry from its seeded generator, then calls `randomize_qpos(qpos, rng)`
   (sit_hard moves the robot), then `reset_task_state(rng)` (reach draws its goal), then sets state.
4. On each step, after physics: `get_reward(data)` and `get_terminated(data)` read MjData as it
   stands (stale kinematics, exactly as HumanoidBench), then `after_step(data)` may advance internal
   state (the maze stage). `get_reward` must not change any state: the parity check and the ROS bridge
   call it freely.
"""

from __future__ import annotations

import abc
from typing import Any

import mujoco
import numpy as np

from sim_bridge.h1.signals import H1Signals

#: HumanoidBench's episode length for every h1 task, in control steps (50 Hz). Source: HumanoidBench 791405f.
DEFAULT_EPISODE_STEPS = 1000


class Task(abc.ABC):
    """One HumanoidBench task. Subclasses set `name` and implement `get_reward`/`get_terminated`."""

    #: Task name as in the env id `h1-<name>-v0`.
    name: str = ""
    #: Episode length in control steps; `truncated` fires when it is reached.
    max_episode_steps: int = DEFAULT_EPISODE_STEPS
    #: HumanoidBench's success threshold on the episode return (its "bar").
    success_bar: float = 0.0
    #: Camera `render()` uses (a tracking camera of the robot, e.g. HB's `cam_hurdle`, `cam_maze`);
    #: None means the robot's default (`cam_default`).
    camera_name: str | None = None

    def __init__(self) -> None:
        self._signals: H1Signals | None = None

    @property
    def signals(self) -> H1Signals:
        if self._signals is None:
            raise RuntimeError(f"task {self.name!r} used before bind()")
        return self._signals

    # --- model building -------------------------------------------------------------------------
    def build_scene(self, spec: mujoco.MjSpec) -> None:
        """Add the task's scene objects to `spec` (the robot is already in it). Default: none."""

    def bind(self, model: mujoco.MjModel, signals: H1Signals) -> None:
        """Cache ids after compilation. Subclasses that override must call super().bind()."""
        self._signals = signals

    # --- reset ------------------------------------------------------------------------------------
    def keyframe_qpos(self, model: mujoco.MjModel, robot_qpos: np.ndarray) -> np.ndarray:
        """Full qpos the episode starts from, before noise (HumanoidBench's keyframe 0).

        `robot_qpos` is the robot's own keyframe (its first `len(robot_qpos)` entries); task objects
        default to where the scene placed them (`model.qpos0`). Balance tasks override this.
        """
        qpos = model.qpos0.copy()
        qpos[: robot_qpos.size] = robot_qpos
        return qpos

    def randomize_qpos(self, qpos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Task-specific start randomisation after the uniform noise. Default: none."""
        return qpos

    def reset_task_state(self, rng: np.random.Generator) -> None:
        """Reset internal state at the start of an episode (draw goals, rewind stages)."""

    # --- stepping ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        """(reward, components) from MjData as it stands; components use HumanoidBench's info keys."""

    @abc.abstractmethod
    def get_terminated(self, data: mujoco.MjData) -> bool:
        """HumanoidBench's termination condition on MjData as it stands."""

    def after_step(self, data: mujoco.MjData) -> dict[str, float]:
        """Advance internal state after the reward was computed; returns extra info entries."""
        return {}

    # --- observation ------------------------------------------------------------------------------
    def observation(self, data: mujoco.MjData) -> np.ndarray:
        """HumanoidBench's flat observation: concat(qpos, qvel) as float64, objects included."""
        return np.concatenate([data.qpos, data.qvel])

    def observation_size(self, model: mujoco.MjModel) -> int:
        return model.nq + model.nv

    # --- internal state ---------------------------------------------------------------------------
    @property
    def task_state(self) -> dict[str, Any]:
        """Everything besides qpos/qvel needed to restore the task exactly. Default: nothing."""
        return {}

    @task_state.setter
    def task_state(self, state: dict[str, Any]) -> None:
        unknown = set(state) - set(self.task_state)
        if unknown:
            raise ValueError(f"task {self.name!r} has no state keys {sorted(unknown)}; "
                             f"known: {sorted(self.task_state)}")
