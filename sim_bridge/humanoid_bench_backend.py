"""The original HumanoidBench env behind sim_bridge's state API, to compare the two on the same actions.

HumanoidBench is not on PyPI and runs only on MuJoCo <= 3.2.0 (its vendored dm_control indexing breaks on
later releases), so this backend works only in an environment where `humanoid_bench` imports. Everything
here is a thin adapter: the physics, rewards and resets are HumanoidBench's own.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import mujoco
import numpy as np

from sim_bridge import registry

_INSTALL_HINT = (
    "backend='humanoid_bench' needs the original HumanoidBench package (carlosferrazza/humanoid-bench, "
    "installed from source with `pip install -e .`; it pins mujoco==3.1.6, dm_control and gymnasium 0.29)"
)


def _import_humanoid_bench_env() -> type:
    try:
        from humanoid_bench.env import HumanoidEnv as HumanoidBenchHumanoidEnv
    except ImportError as err:
        raise ImportError(f"{_INSTALL_HINT}: {err}") from err
    # Importing humanoid_bench registers its own envs under our ids; take ours back.
    registry.register_envs()
    return HumanoidBenchHumanoidEnv


class HumanoidBenchEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """HumanoidBench's `HumanoidEnv` for one h1 task, exposing `model`, `data`, `set_state`,
    `get_reward`, `get_terminated`, `task_state` and `task` like `sim_bridge.env.HumanoidEnv`."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task: str, robot: str = "h1", render_mode: str | None = None, **kwargs: Any) -> None:
        env_cls = _import_humanoid_bench_env()
        self._env = env_cls(robot=robot, control="pos", task=task, render_mode=render_mode, **kwargs)
        self.action_space = self._env.action_space
        self.observation_space = self._env.observation_space
        self.render_mode = render_mode

    @property
    def model(self) -> mujoco.MjModel:
        return self._env.model

    @property
    def data(self) -> mujoco.MjData:
        return self._env.data

    @property
    def task(self) -> Any:
        """HumanoidBench's task object (its own class, not `sim_bridge.tasks.base.Task`)."""
        return self._env.task

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self._env.step(action)

    def render(self) -> np.ndarray | None:
        return self._env.render() if self.render_mode is not None else None

    def close(self) -> None:
        self._env.close()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self._env.set_state(qpos, qvel)

    def get_reward(self) -> tuple[float, dict[str, float]]:
        reward, components = self._env.task.get_reward()
        return float(reward), {key: float(value) for key, value in components.items()}

    def get_terminated(self) -> bool:
        terminated, _ = self._env.task.get_terminated()
        return bool(terminated)

    @property
    def task_state(self) -> dict[str, Any]:
        """HumanoidBench keeps task state in ad-hoc attributes; none is exposed (empty dict)."""
        return {}

    @task_state.setter
    def task_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError("the humanoid_bench backend exposes no task state")


def make_humanoid_bench_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gymnasium.Env:
    """HumanoidBench's env for `env_id`, with its 1000-step TimeLimit."""
    robot, task = registry.parse_env_id(env_id)
    env = HumanoidBenchEnv(task=task, robot=robot, render_mode=render_mode, **kwargs)
    return gymnasium.wrappers.TimeLimit(env, max_episode_steps=registry.env_spec(env_id).max_episode_steps)
