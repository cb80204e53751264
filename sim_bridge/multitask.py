"""Several HumanoidBench tasks side by side in worker processes, with padded observations.

Tasks differ in observation size (51 for most h1 tasks, 57 reach, 64 sit_hard and balance_simple,
77 balance_hard) but share the action (19 joint targets). `MultiTaskVectorEnv` runs N envs, one per entry
of `env_ids`, spread over `num_workers` processes (default: one per CPU core, so both cores of a 2-core
machine are busy), zero-pads every observation to the largest size, and hands the learner:

    reset(seed)     -> obs (N, D) float64
    step(actions)   -> obs (N, D) float64, rewards (N,) float64, terminated (N,) bool, truncated (N,) bool,
                       infos: list of N dicts

N = number of envs, D = largest observation size. Two fixed attributes describe the rows: `obs_mask[i, j]`
is True where `obs[i, j]` is a real entry (padding is zeros and False); `task_index[i]` is the position of
env i's id in `sim_bridge.TASK_IDS`.
`reset(seed)` seeds env i with `seed + i` (as gymnasium's vector envs do).

Autoreset (gymnasium's "same step" convention): when env i's episode ends (terminated, or truncated by the
1000-step limit), the same `step` call resets it. `rewards[i]`, `terminated[i]`, `truncated[i]` and
`infos[i]` belong to the ending step, but `obs[i]` is already the first observation of the next episode;
the ending step's observation is `infos[i]["final_obs"]` (padded to D). So every `step` is one real
transition per env, with no dummy steps, and the next `step` continues the new episode.

Each worker hosts several envs, so one message per worker carries all of its envs' steps: with one env
per process (gymnasium's AsyncVectorEnv) the pipe round trip costs about as much as a physics step here.
For one task, `gymnasium.make_vec("h1-walk-v0", num_envs=N, vectorization_mode="async")` works as well.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np

from ezm_ros.process_lifetime import die_with_parent
from sim_bridge import registry
from sim_bridge.h1.constants import COLLISION_HUMANOIDBENCH, NU


@functools.lru_cache(maxsize=None)
def observation_size(env_id: str) -> int:
    """Observation size of a task (builds and compiles its model once per process)."""
    from sim_bridge.env import HumanoidEnv  # deferred: only needed here

    _, task = registry.parse_env_id(env_id)
    env = HumanoidEnv(task=task, collision=COLLISION_HUMANOIDBENCH)
    try:
        return int(env.observation_space.shape[0])
    finally:
        env.close()


def _space_sizes(make_env: EnvFactory, env_id: str) -> tuple[int, int]:
    """(observation size, action dim) of one instance of env_id; flat Box spaces only."""
    env = make_env(env_id)
    try:
        obs_space, action_space = env.observation_space, env.action_space
        if len(obs_space.shape) != 1 or not isinstance(action_space, gymnasium.spaces.Box) \
                or len(action_space.shape) != 1:
            raise ValueError(f"{env_id}: need a flat Box observation and action, got {obs_space} and {action_space}")
        return int(obs_space.shape[0]), int(action_space.shape[0])
    finally:
        env.close()


class PadObservation(gymnasium.ObservationWrapper[np.ndarray, np.ndarray, np.ndarray]):
    """Zero-pads a flat float64 observation to `size` entries (the real ones come first)."""

    def __init__(self, env: gymnasium.Env, size: int) -> None:
        super().__init__(env)
        own = env.observation_space.shape[0]
        if own > size:
            raise ValueError(f"observation of size {own} does not fit in {size}")
        self._own = own
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        padded = np.zeros(self.observation_space.shape, dtype=np.float64)
        padded[: self._own] = observation
        return padded


EnvFactory = Callable[[str], gymnasium.Env]
"""`make_env(env_id) -> env`: a flat-Box-observation, Box-action env whose actions are in [-1, 1]."""


def make_h1(env_id: str, collision: str = COLLISION_HUMANOIDBENCH) -> gymnasium.Env:
    """The default factory: a HumanoidBench task of this package (module level, so it pickles)."""
    from sim_bridge import make  # in the worker process

    return make(env_id, collision=collision)


def env_snapshot(env: gymnasium.Env) -> dict[str, Any] | None:
    """The state of one env's episode in progress, with its wrappers' (TimeLimit's step count), as arrays and
    plain values; None for an env this cannot capture exactly. Only envs with `snapshot()`/`restore()` on the
    unwrapped env (`sim_bridge.env.HumanoidEnv`) can: another MuJoCo env (gymnasium's Ant reads body positions
    left from the previous step, which a restore recomputes) would continue close to, not exactly as, before."""
    base = env.unwrapped
    if not (hasattr(base, "snapshot") and hasattr(base, "restore")):
        return None
    return {"env": base.snapshot(), "elapsed_steps": [wrapper._elapsed_steps for wrapper in _time_limits(env)]}


def restore_env(env: gymnasium.Env, snapshot: dict[str, Any]) -> None:
    """Continue the episode an `env_snapshot` of an env of the same id captured. ValueError if it does not fit
    (checked before anything is changed)."""
    if not isinstance(snapshot, dict) or set(snapshot) != {"env", "elapsed_steps"}:
        raise ValueError("a snapshot is a mapping of 'env' and 'elapsed_steps'")
    limits = _time_limits(env)
    try:
        elapsed = [int(steps) for steps in snapshot["elapsed_steps"]]
    except (TypeError, ValueError):
        raise ValueError(f"snapshot step counts {snapshot['elapsed_steps']!r} are not integers") from None
    if len(elapsed) != len(limits) or any(not 0 <= steps <= limit._max_episode_steps
                                          for steps, limit in zip(elapsed, limits)):
        raise ValueError(f"snapshot step counts {elapsed} do not fit this env's time limits")
    base = env.unwrapped
    if not hasattr(base, "restore"):
        raise ValueError(f"{type(base).__name__} cannot continue a snapshot")
    base.restore(snapshot["env"])
    for limit, steps in zip(limits, elapsed):
        limit._elapsed_steps = steps  # TimeLimit keeps its count private; a restored episode ends on time


def _time_limits(env: gymnasium.Env) -> list[gymnasium.wrappers.TimeLimit]:
    limits = []
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, gymnasium.wrappers.TimeLimit):
            limits.append(env)
        env = env.env
    return limits


class _EnvGroup:
    """The envs one worker hosts, stepped in turn, with same-step autoreset.

    Actions arrive padded to the largest action dim of the vector env; each env takes its first
    `action_dims[i]` entries (EZ-M's action mask: [EZM] sends `action[:n]` to the env).
    """

    def __init__(self, env_ids: Sequence[str], size: int, make_env: EnvFactory,
                 action_dims: Sequence[int] | None = None) -> None:
        self.envs = [PadObservation(make_env(env_id), size) for env_id in env_ids]
        self.action_dims = list(action_dims) if action_dims is not None else [None] * len(self.envs)

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        return np.stack([env.reset(seed=seed)[0] for env, seed in zip(self.envs, seeds)])

    def reset_some(self, payload: Sequence[tuple[int, int | None]]) -> np.ndarray:
        """Reset the envs at the given local indices, with their seeds; (M, D) first observations."""
        size = self.envs[0].observation_space.shape[0]
        rows = [self.envs[index].reset(seed=seed)[0] for index, seed in payload]
        return np.stack(rows) if rows else np.zeros((0, size))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        n = len(self.envs)
        obs = np.empty((n, self.envs[0].observation_space.shape[0]))
        rewards = np.empty(n)
        terminated = np.empty(n, dtype=bool)
        truncated = np.empty(n, dtype=bool)
        infos = []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            obs[i], rewards[i], terminated[i], truncated[i], info = env.step(action[: self.action_dims[i]])
            if terminated[i] or truncated[i]:
                info = {**info, "final_obs": obs[i].copy()}
                obs[i], _ = env.reset()
            infos.append(info)
        return obs, rewards, terminated, truncated, infos

    def snapshot(self, _=None) -> list[dict[str, Any] | None]:
        return [env_snapshot(env) for env in self.envs]

    def restore(self, snapshots: Sequence[dict[str, Any]]) -> None:
        for env, snapshot in zip(self.envs, snapshots, strict=True):
            restore_env(env, snapshot)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection: multiprocessing.connection.Connection, env_ids: Sequence[str], size: int,
            make_env: EnvFactory, action_dims: Sequence[int]) -> None:
    """Serve ("reset", seeds), ("step", actions), ("reset_some", [(index, seed)]), ("snapshot", None),
    ("restore", snapshots) and ("close", None) for one `_EnvGroup`."""
    die_with_parent()
    # Ctrl-C reaches the whole process group; the parent decides when its workers stop (it closes them),
    # so a trainer can finish its update and checkpoint first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    group = None
    try:
        group = _EnvGroup(env_ids, size, make_env, action_dims)
        connection.send(("ok", None))
        while True:
            command, payload = connection.recv()
            if command == "close":
                break
            try:
                result = {"reset": group.reset, "step": group.step, "reset_some": group.reset_some,
                          "snapshot": group.snapshot, "restore": group.restore}[command](payload)
            except (ValueError, KeyError, TypeError):  # bad input (an action, a snapshot): the caller's error;
                # nothing was changed by it (the envs check first), so this worker serves on
                connection.send(("error", traceback.format_exc()))
                continue
            connection.send(("ok", result))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:  # report any failure to the parent instead of dying silently
        connection.send(("error", traceback.format_exc()))
    finally:
        if group is not None:
            group.close()
        connection.close()


class MultiTaskVectorEnv:
    """N envs (ids may repeat) in `num_workers` processes; see the module docstring for the API.

    Args:
      env_ids: env ids from `sim_bridge.TASK_IDS`, one per env (any ids `make_env` knows, with `make_env`).
      collision: collision variant for every env (HumanoidBench tasks only).
      num_workers: worker processes; default one per CPU core (at most N). 0 runs every env in this
        process (same results; for debugging and tests).
      context: multiprocessing start method (None: the platform default; fork on Linux).
      make_env: a factory for other envs than this package's HumanoidBench tasks (gymnasium's own, the
        DeepMind Control Suite: ezm_training.envs). Observation sizes and action dims are read from one
        instance of each id; actions are padded to the largest action dim, `task_index` is the position of
        the id among the distinct ids of `env_ids`.
    """

    def __init__(
        self,
        env_ids: Sequence[str],
        *,
        collision: str = COLLISION_HUMANOIDBENCH,
        num_workers: int | None = None,
        context: str | None = None,
        make_env: EnvFactory | None = None,
    ) -> None:
        if not env_ids:
            raise ValueError("need at least one env id")
        self.env_ids: tuple[str, ...] = tuple(env_ids)
        if make_env is None:
            for env_id in env_ids:
                registry.parse_env_id(env_id)
            make_env = functools.partial(make_h1, collision=collision)
            sizes = np.array([observation_size(env_id) for env_id in self.env_ids])
            action_dims = np.full(self.num_envs, NU)  # every H1 task: one target per actuator
            #: (N,) index of each env's task in `sim_bridge.TASK_IDS`.
            self.task_index = np.array([registry.TASK_IDS.index(env_id) for env_id in self.env_ids], dtype=np.int64)
        else:
            distinct = list(dict.fromkeys(self.env_ids))
            shapes = {env_id: _space_sizes(make_env, env_id) for env_id in distinct}
            sizes = np.array([shapes[env_id][0] for env_id in self.env_ids])
            action_dims = np.array([shapes[env_id][1] for env_id in self.env_ids])
            self.task_index = np.array([distinct.index(env_id) for env_id in self.env_ids], dtype=np.int64)
        self.task_index.setflags(write=False)
        self.obs_size = int(sizes.max())
        #: (N, D) True where the observation entry is real, False where it is padding.
        self.obs_mask = np.arange(self.obs_size)[None, :] < sizes[:, None]
        self.obs_mask.setflags(write=False)
        #: (N,) each env's own action dim; actions are (N, max of these), an env takes its first entries.
        self.action_dims = action_dims.astype(np.int64)
        self.action_dims.setflags(write=False)
        action_size = int(action_dims.max())
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(action_size,), dtype=np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(self.num_envs, action_size), dtype=np.float32)

        workers = min(self.num_envs, os.cpu_count() or 1) if num_workers is None else num_workers
        if workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        # Contiguous chunks of envs per worker, as even as possible.
        bounds = np.linspace(0, self.num_envs, max(workers, 1) + 1).round().astype(int)
        self._chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        self._local: _EnvGroup | None = None
        self._connections: list[multiprocessing.connection.Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        if workers == 0:
            self._local = _EnvGroup(self.env_ids, self.obs_size, make_env, self.action_dims.tolist())
            return
        ctx = multiprocessing.get_context(context)
        for chunk in self._chunks:
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_worker, args=(child, self.env_ids[chunk], self.obs_size, make_env,
                                                        self.action_dims[chunk].tolist()),
                                  daemon=True, name=f"sim_bridge-worker-{chunk.start}")
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
        for connection in self._connections:
            self._receive(connection)

    @property
    def num_envs(self) -> int:
        return len(self.env_ids)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env (env i gets seed `seed + i`). Returns obs (N, D) (rows described by `obs_mask`)."""
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        if self._local is not None:
            obs = self._local.reset(seeds)
        else:
            for connection, chunk in zip(self._connections, self._chunks):
                connection.send(("reset", seeds[chunk]))
            obs = np.concatenate(self._receive_all(self._connections))
        return obs

    def reset_envs(self, mask: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Reset only the envs where mask (N,) is True (env i gets seed `seed + i`, or continues its own RNG
        with None). Returns their first observations (M, D), in env order.

        For a learner's own time limit shorter than the 1000-step TimeLimit (EZ-M trains on 500-step
        episodes first); the other envs keep their episodes.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"mask must have shape ({self.num_envs},), got {mask.shape}")
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        if self._local is not None:
            return self._local.reset_some([(i, seeds[i]) for i in np.flatnonzero(mask)])
        parts = []
        for connection, chunk in zip(self._connections, self._chunks):
            local = [(i - chunk.start, seeds[i]) for i in range(chunk.start, chunk.stop) if mask[i]]
            if local:
                connection.send(("reset_some", local))
                parts.append(connection)
        obs = self._receive_all(parts)
        return np.concatenate(obs) if obs else np.zeros((0, self.obs_size))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every env with `actions` (N, A) in [-1, 1] (A = 19 for the H1 tasks). Returns (obs, rewards, terminated, truncated, infos)."""
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        if self._local is not None:
            return self._local.step(actions)
        for connection, chunk in zip(self._connections, self._chunks):
            connection.send(("step", actions[chunk]))
        parts = self._receive_all(self._connections)
        infos = [info for part in parts for info in part[4]]
        obs, rewards, terminated, truncated = (np.concatenate([part[k] for part in parts]) for k in range(4))
        return obs, rewards, terminated, truncated, infos

    def snapshot(self) -> list[dict[str, Any] | None]:
        """Each env's episode in progress (`env_snapshot`; None where an env cannot be captured), in env order:
        arrays and plain values, for a checkpoint. `restore` continues them bit for bit."""
        if self._local is not None:
            return self._local.snapshot()
        for connection in self._connections:
            connection.send(("snapshot", None))
        return [snapshot for part in self._receive_all(self._connections) for snapshot in part]

    def restore(self, snapshots: Sequence[dict[str, Any]]) -> None:
        """Continue the episodes of a `snapshot` taken from a vector env of the same ids. ValueError if they
        do not fit (an env may then have been changed: reset before stepping again)."""
        if len(snapshots) != self.num_envs or any(snapshot is None for snapshot in snapshots):
            raise ValueError(f"need a snapshot for each of the {self.num_envs} envs")
        if self._local is not None:
            try:
                self._local.restore(snapshots)
            except (KeyError, TypeError) as error:
                raise ValueError(f"snapshot does not fit: {type(error).__name__}: {error}") from None
            return
        for connection, chunk in zip(self._connections, self._chunks):
            connection.send(("restore", list(snapshots[chunk])))
        try:
            self._receive_all(self._connections)
        except RuntimeError as error:
            raise ValueError(f"snapshot does not fit: {str(error).strip().splitlines()[-1]}") from None

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for connection in self._connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass  # the worker is gone already
            connection.close()
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        self._connections, self._processes = [], []

    def __enter__(self) -> MultiTaskVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_processes", None):
            self.close()

    @classmethod
    def _receive_all(cls, connections: Sequence[multiprocessing.connection.Connection]) -> list[Any]:
        """Every worker's reply, in order; a worker's error is raised only once all have answered, so no reply is
        left in a pipe to be taken for the next request's (workers serve on after a bad request)."""
        replies, error = [], None
        for connection in connections:
            try:
                replies.append(cls._receive(connection))
            except RuntimeError as err:
                error = error or err
        if error is not None:
            raise error
        return replies

    @staticmethod
    def _receive(connection: multiprocessing.connection.Connection) -> Any:
        status, payload = connection.recv()
        if status == "error":
            raise RuntimeError(f"a sim_bridge worker failed:\n{payload}")
        return payload
