"""The envs the learner trains on: HumanoidBench's H1 tasks, gymnasium's own tasks, the DeepMind Control Suite.

Task ids name their family:
  h1-<task>-v0          sim_bridge's HumanoidBench tasks (the product; action repeat 1, as [EZM])
  gym:<Id>              any gymnasium id with flat Box spaces, e.g. gym:InvertedPendulum-v5, gym:Pendulum-v1
  dmc:<domain>-<task>   a DeepMind Control Suite task, e.g. dmc:cartpole-swingup, dmc:walker-walk

Every family goes through the same collector, replay, learner and evaluation: only the factory differs.
Actions are rescaled to [-1, 1] (the squashed-Gaussian policy's range); observations are flat float64.
`action_repeat` repeats each agent action and sums the rewards (TD-MPC2 and EZ V2 use 2 on DMC and count
env steps, not agent steps, on their x-axes: `env_steps_per_agent_step`).

The DeepMind Control Suite needs `dm_control`, which is not a dependency of this package: dm_control
1.0.50 fails to build its named-index tables on MuJoCo 4.0 (`MjModel has no attribute 'flex_vertedge'`)
and runs on MuJoCo 3.17. bench/learning.py therefore builds its own environment for it
(docs/design.md, "Fast benchmarks"); elsewhere a `dmc:` id gives an error saying so.
"""

from __future__ import annotations

import functools
from typing import Sequence

import gymnasium
import numpy as np

H1_PREFIX = "h1-"
GYM_PREFIX = "gym:"
DMC_PREFIX = "dmc:"


class EnvError(ValueError):
    """An env id no family knows, or an env this learner cannot drive (the message says why)."""


def family(env_id: str) -> str:
    """'h1' | 'gym' | 'dmc' for a task id (see the module docstring)."""
    if env_id.startswith(GYM_PREFIX):
        return "gym"
    if env_id.startswith(DMC_PREFIX):
        return "dmc"
    if env_id.startswith(H1_PREFIX):
        return "h1"
    raise EnvError(f"{env_id!r}: task ids are h1-<task>-v0, gym:<gymnasium id> or dmc:<domain>-<task>")


def short_name(env_id: str) -> str:
    """What logs and tables call a task: 'h1-walk-v0' -> 'walk' (sim_bridge's parser); other families
    without their prefix: 'gym:InvertedPendulum-v5' -> 'InvertedPendulum-v5'."""
    if family(env_id) == "h1":
        from sim_bridge import registry

        return registry.parse_env_id(env_id)[1]
    return env_id.split(":", 1)[1]


class ActionRepeat(gymnasium.Wrapper):
    """Repeat an action `repeat` times, summing rewards; stop early at a termination or truncation."""

    def __init__(self, env: gymnasium.Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise EnvError(f"action_repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class _FlatFloat64(gymnasium.ObservationWrapper):
    """A flat float64 Box observation (the vector env pads float64 rows)."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        size = int(np.prod(env.observation_space.shape))
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)

    def observation(self, observation):
        return np.asarray(observation, dtype=np.float64).reshape(-1)


def make_env(env_id: str, action_repeat: int = 1, **kwargs) -> gymnasium.Env:
    """One env of any family, actions in [-1, 1]; kwargs go to the family's constructor (render_mode...)."""
    kind = family(env_id)
    if kind == "h1":
        import sim_bridge

        env = sim_bridge.make(env_id, **kwargs)
    elif kind == "gym":
        env = _make_gym(env_id[len(GYM_PREFIX):], **kwargs)
    else:
        env = _make_dmc(env_id[len(DMC_PREFIX):], **kwargs)
    return ActionRepeat(env, action_repeat) if action_repeat > 1 else env


def _make_gym(gym_id: str, **kwargs) -> gymnasium.Env:
    try:
        env = gymnasium.make(gym_id, **kwargs)
    except gymnasium.error.Error as error:
        raise EnvError(f"gym:{gym_id}: {error}") from None
    if not isinstance(env.action_space, gymnasium.spaces.Box) or len(env.action_space.shape) != 1:
        raise EnvError(f"gym:{gym_id}: needs a flat Box action space, got {env.action_space}")
    if not np.all(np.isfinite(env.action_space.low)) or not np.all(np.isfinite(env.action_space.high)):
        raise EnvError(f"gym:{gym_id}: the action space must be bounded, got {env.action_space}")
    env = gymnasium.wrappers.RescaleAction(env, -1.0, 1.0)
    return _FlatFloat64(env)


def _make_dmc(name: str, **kwargs) -> gymnasium.Env:
    domain, _, task = name.partition("-")
    try:
        from dm_control import suite
    except ImportError as error:
        raise EnvError(f"dmc:{name} needs dm_control, which runs on MuJoCo 3.17, not this package's MuJoCo 4.0; "
                       f"bench/learning.py builds an environment with both ({error})") from None
    if (domain, task) not in suite.ALL_TASKS:
        raise EnvError(f"dmc:{name}: not a DeepMind Control Suite task (domain-task, e.g. dmc:cartpole-swingup)")
    return DMCEnv(domain, task, **kwargs)


class DMCEnv(gymnasium.Env):
    """A dm_control suite task as a gymnasium env: flat observation, actions in [-1, 1] rescaled to the
    task's bounds, its 1000-step limit a truncation (DMC tasks never terminate), rgb_array rendering."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, domain: str, task: str, render_mode: str | None = None, width: int = 256, height: int = 256):
        from dm_control import suite

        self._domain, self._task = domain, task
        self._env = None
        self._suite = suite
        self.render_mode, self._size = render_mode, (height, width)
        self._load(seed=0)
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        size = sum(int(np.prod(v.shape)) for v in self._env.observation_spec().values())
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
        self.dt = float(self._env.control_timestep())

    def _load(self, seed: int) -> None:
        if self._env is not None:
            self._env.close()
        self._env = self._suite.load(self._domain, self._task, task_kwargs={"random": int(seed)})

    def _flat(self, time_step) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in time_step.observation.values()])

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:  # dm_control seeds at load time
            self._load(seed)
        return self._flat(self._env.reset()), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        scaled = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
        time_step = self._env.step(scaled)
        return self._flat(time_step), float(time_step.reward or 0.0), False, bool(time_step.last()), {}

    def render(self):
        height, width = self._size
        return self._env.physics.render(height=height, width=width, camera_id=0)

    def close(self):
        if self._env is not None:
            self._env.close()
            self._env = None


def env_factory(action_repeat: int = 1):
    """A picklable `make_env(env_id)` for sim_bridge.multitask.MultiTaskVectorEnv's worker processes."""
    return functools.partial(make_env, action_repeat=action_repeat)


def make_vector_env(env_ids: Sequence[str], *, action_repeat: int = 1, num_workers: int | None = None):
    """A MultiTaskVectorEnv over env_ids (one entry per env, ids may repeat) of any family."""
    from sim_bridge.multitask import MultiTaskVectorEnv

    if all(family(env_id) == "h1" for env_id in env_ids) and action_repeat == 1:
        return MultiTaskVectorEnv(list(env_ids), num_workers=num_workers)
    return MultiTaskVectorEnv(list(env_ids), num_workers=num_workers, make_env=env_factory(action_repeat))


@functools.lru_cache(maxsize=None)
def _dims(env_id: str) -> tuple[int, int]:
    if family(env_id) == "h1":
        from sim_bridge.h1.constants import NU
        from sim_bridge.multitask import observation_size

        return observation_size(env_id), NU
    env = make_env(env_id)
    try:
        return int(env.observation_space.shape[0]), int(env.action_space.shape[0])
    finally:
        env.close()


def task_dims(task_ids: Sequence[str]) -> tuple[list[int], int]:
    """(each task's own observation size, the shared action dim: the largest, actions padded to it)."""
    dims = [_dims(env_id) for env_id in task_ids]
    return [obs for obs, _ in dims], max(action for _, action in dims)


def action_dims(task_ids: Sequence[str]) -> list[int]:
    """Each task's own action dim (the env takes the first this many of the padded action)."""
    return [_dims(env_id)[1] for env_id in task_ids]
