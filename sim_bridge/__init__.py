"""sim_bridge: HumanoidBench's H1 tasks on current MuJoCo, with a gymnasium API.

    import sim_bridge
    env = sim_bridge.make("h1-walk-v0")            # HumanoidBench's walk, mesh collision
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Importing the package registers every id in `TASK_IDS` with gymnasium (so `gymnasium.make("h1-walk-v0")`
and `gymnasium.make_vec(..., vectorization_mode="async")` work) and, on a Linux machine without a display,
selects MuJoCo's EGL backend for offscreen rendering unless `MUJOCO_GL` is set (`sim_bridge.rendering`).
numpy and mujoco only: nothing here imports torch.
"""

from __future__ import annotations

from sim_bridge.rendering import default_headless_gl

default_headless_gl()  # must run before anything imports mujoco

from typing import Any, Final  # noqa: E402

import gymnasium  # noqa: E402

from sim_bridge.h1.constants import COLLISION_HUMANOIDBENCH, COLLISION_VARIANTS  # noqa: E402
from sim_bridge.registry import (  # noqa: E402
    TASK_IDS,
    TASKS,
    available_task_ids,
    env_spec,
    parse_env_id,
    register_envs,
)

BACKEND_SIM_BRIDGE: Final = "sim_bridge"
BACKEND_HUMANOID_BENCH: Final = "humanoid_bench"
BACKENDS: Final = (BACKEND_SIM_BRIDGE, BACKEND_HUMANOID_BENCH)


def make(
    env_id: str,
    backend: str = BACKEND_SIM_BRIDGE,
    collision: str = COLLISION_HUMANOIDBENCH,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gymnasium.Env:
    """A HumanoidBench env with gymnasium's TimeLimit (1000 steps) and the state API on `.unwrapped`.

    Args:
      env_id: one of `TASK_IDS`, e.g. `"h1-walk-v0"`.
      backend: `"sim_bridge"` (this package, MuJoCo 4) or `"humanoid_bench"` (the original package, if
        installed; it needs MuJoCo <= 3.2.0), both with the same state API.
      collision: `"humanoidbench"` (link meshes, as HB) or `"primitive"` (Menagerie's capsules; faster).
      render_mode: None or `"rgb_array"`.
      **kwargs: passed to `sim_bridge.env.HumanoidEnv` (width, height, camera).
    """
    parse_env_id(env_id)  # a clear error for unknown ids, whatever the backend
    if backend == BACKEND_SIM_BRIDGE:
        # Our own spec, not gymnasium's registry entry: HumanoidBench registers the same ids on import.
        return gymnasium.make(env_spec(env_id), collision=collision, render_mode=render_mode, **kwargs)
    if backend == BACKEND_HUMANOID_BENCH:
        if collision != COLLISION_HUMANOIDBENCH:
            raise ValueError("the humanoid_bench backend has only its own (mesh) collision")
        from sim_bridge.humanoid_bench_backend import make_humanoid_bench_env

        return make_humanoid_bench_env(env_id, render_mode=render_mode, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")


register_envs()

__all__ = [
    "BACKENDS",
    "COLLISION_VARIANTS",
    "TASKS",
    "TASK_IDS",
    "available_task_ids",
    "make",
    "parse_env_id",
]
