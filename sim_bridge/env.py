"""`HumanoidEnv`: one HumanoidBench task on one robot, as a gymnasium environment.

The environment owns what all tasks share (see `sim_bridge.tasks.base` for what a task owns):

- the model: the robot's `MjSpec` (with its collision variant) plus the task's scene, compiled once;
- the action map (`sim_bridge.h1.actuators.ActionMap`) and the physics step, done exactly as HumanoidBench
  (gymnasium's `MujocoEnv.do_simulation`): `ctrl = map(a)`, `mj_step(model, data, nstep=frame_skip)`,
  `mj_rnePostConstraint`, and no `mj_forward` afterwards, so rewards read the stale kinematics HB reads;
- reset: `mj_resetData`, the task's keyframe, U(-0.01, 0.01) noise on every qpos entry from the env's
  seeded generator, the task's own randomisation, zero velocity, `set_state`;
- the state API shared with the HumanoidBench backend: `model`, `data`, `set_state`, `get_reward`,
  `get_terminated`, `task_state`, `task`;
- input checks and divergence handling (below); offscreen rendering.

Invalid actions (wrong shape, non-numeric, NaN or inf) raise ValueError before anything is changed.
A diverged simulation (MuJoCo warnings, non-finite state) ends the episode: `terminated=True`, reward 0,
`info["physics_error"]` says what happened, and the observation is the last finite one (from the
previous step or reset), never NaN. Reset to continue.
"""

from __future__ import annotations

from typing import Any, Final

import gymnasium
import mujoco
import numpy as np

from sim_bridge import divergence, registry
from sim_bridge.h1.actuators import ActionMap
from sim_bridge.h1.signals import H1Signals
from sim_bridge.rendering import TrackingRenderer
from sim_bridge.robot import Robot
from sim_bridge.tasks.base import Task

#: Half-width of the uniform noise added to every qpos entry at reset. HB env.py `DEFAULT_RANDOMNESS`.
RESET_NOISE: Final = 0.01
#: Default image size of `render()` (px). HB env.py uses 256 x 256.
DEFAULT_RENDER_SIZE_PX: Final = 256


class HumanoidEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A HumanoidBench task. Use `sim_bridge.make("h1-walk-v0")`, which adds the 1000-step TimeLimit.

    Args:
      task: task name (`"walk"`) or a `Task` instance.
      robot: robot name (`"h1"`) or a `Robot`.
      collision: the robot's collision variant; None means its default (`"humanoidbench"` for h1).
      render_mode: None or `"rgb_array"`.
      width, height: image size of `render()` in pixels.
      camera: camera for `render()`; None means the task's, else the robot's default tracking camera.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str | Task = "walk",
        robot: str | Robot = "h1",
        collision: str | None = None,
        render_mode: str | None = None,
        width: int = DEFAULT_RENDER_SIZE_PX,
        height: int = DEFAULT_RENDER_SIZE_PX,
        camera: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        self.robot: Robot = registry.get_robot(robot) if isinstance(robot, str) else robot
        self.task: Task = registry.make_task(task) if isinstance(task, str) else task
        self.collision = self.robot.default_collision if collision is None else collision

        spec = self.robot.build_spec(self.collision)
        self.task.build_scene(spec)
        self.model: mujoco.MjModel = spec.compile()
        self.data: mujoco.MjData = mujoco.MjData(self.model)
        self.signals: H1Signals = self.robot.make_signals(self.model, self.data)
        self.task.bind(self.model, self.signals)
        if self.robot.keyframe_qpos.shape != (self.signals.robot_nq,):
            raise ValueError(f"robot keyframe has {self.robot.keyframe_qpos.shape} entries, "
                             f"the robot has nq={self.signals.robot_nq}")

        self.frame_skip = self.robot.frame_skip
        self.action_map = ActionMap.from_model(self.model, nu=self.signals.robot_nu)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(self.action_map.size,), dtype=np.float32)
        obs_size = self.task.observation_size(self.model)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float64)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}

        self.render_mode = render_mode
        self._render_size = (width, height)
        self._camera = camera or self.task.camera_name or self.robot.default_camera
        self._renderer: TrackingRenderer | None = None
        self._last_obs = np.zeros(obs_size, dtype=np.float64)

    # --- gymnasium API ------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        """Control period in seconds (0.02 s for h1: 10 physics steps of 2 ms)."""
        return self.model.opt.timestep * self.frame_skip

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """HB's reset; the same seed gives the same start state. Returns (obs, {})."""
        if options:
            raise ValueError(f"reset options are not supported, got {sorted(options)}")
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        qpos = np.array(self.task.keyframe_qpos(self.model, self.robot.keyframe_qpos), dtype=np.float64)
        qpos = qpos + self.np_random.uniform(-RESET_NOISE, RESET_NOISE, size=self.model.nq)
        qpos = self.task.randomize_qpos(qpos, self.np_random)
        self.task.reset_task_state(self.np_random)
        self.set_state(qpos, np.zeros(self.model.nv))
        return self._last_obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One control step (frame_skip physics steps). `truncated` is always False here (TimeLimit sets it)."""
        ctrl = self.action_map.to_ctrl(self._checked_action(action))
        warnings_before = divergence.warning_counts(self.data)
        self.data.ctrl[: self.action_map.size] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        mujoco.mj_rnePostConstraint(self.model, self.data)

        error = divergence.physics_error(self.data, warnings_before,
                                         check_finite=not divergence.autoreset_enabled(self.model))
        if error is not None:
            return self._last_obs.copy(), 0.0, True, False, {"per_timestep_reward": 0.0, "physics_error": error}

        obs = self.task.observation(self.data)
        reward, components = self.task.get_reward(self.data)
        terminated = bool(self.task.get_terminated(self.data))
        extra = self.task.after_step(self.data)
        self._last_obs = obs.copy()
        reward = float(reward)
        return obs, reward, terminated, False, {"per_timestep_reward": reward, **components, **extra}

    def render(self) -> np.ndarray | None:
        """(height, width, 3) uint8 frame from the tracking camera, or None without render_mode."""
        if self.render_mode is None:
            return None
        if self._renderer is None:
            width, height = self._render_size
            self._renderer = TrackingRenderer(self.model, width=width, height=height, camera=self._camera)
        return self._renderer.render(self.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # --- state API (shared with the humanoid_bench backend) -----------------------------------------
    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set qpos/qvel and run the forward pass, as HB's (MuJoCo 3.1.6) `set_state` did.

        Free-joint quaternions are normalised and `qacc_warmstart` is set from the new `qacc`: MuJoCo
        3.1.6's `mj_forward` did both, 4.0's does neither.
        """
        qpos = np.asarray(qpos, dtype=np.float64)
        qvel = np.asarray(qvel, dtype=np.float64)
        if qpos.shape != (self.model.nq,) or qvel.shape != (self.model.nv,):
            raise ValueError(f"expected qpos ({self.model.nq},) and qvel ({self.model.nv},), "
                             f"got {qpos.shape} and {qvel.shape}")
        if not (np.isfinite(qpos).all() and np.isfinite(qvel).all()):
            raise ValueError("qpos and qvel must be finite")
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_normalizeQuat(self.model, self.data.qpos)
        mujoco.mj_forward(self.model, self.data)
        self.data.qacc_warmstart[:] = self.data.qacc
        self._last_obs = self.task.observation(self.data).copy()

    def get_reward(self) -> tuple[float, dict[str, float]]:
        """(reward, components) of MjData as it stands; changes nothing."""
        reward, components = self.task.get_reward(self.data)
        return float(reward), components

    def get_terminated(self) -> bool:
        return bool(self.task.get_terminated(self.data))

    @property
    def task_state(self) -> dict[str, Any]:
        """The task's internal state (maze stage, reach goal); with qpos/qvel it restores an episode."""
        return self.task.task_state

    @task_state.setter
    def task_state(self, state: dict[str, Any]) -> None:
        self.task.task_state = state

    def snapshot(self) -> dict[str, Any]:
        """Everything the next steps depend on, as arrays and plain values (a checkpoint stores it):
        MuJoCo's integration state (qpos, qvel, act, warm start, ctrl, time, ...: what `mj_step` reads),
        the env's RNG, the task's state and the last observation. `restore` on an env of the same task and
        robot continues the episode bit for bit."""
        return {"physics": physics_state(self.model, self.data), "np_random": self.np_random.bit_generator.state,
                "task_state": self.task_state, "last_obs": self._last_obs.copy()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue the episode `snapshot` was taken in. ValueError, with nothing changed, if it does not fit:
        every part is checked before any is applied."""
        keys = {"physics", "np_random", "task_state", "last_obs"}
        if not isinstance(snapshot, dict) or set(snapshot) != keys:
            raise ValueError(f"a HumanoidEnv snapshot has exactly {sorted(keys)}")
        last_obs = np.asarray(snapshot["last_obs"], dtype=np.float64)
        if last_obs.shape != self._last_obs.shape:
            raise ValueError(f"snapshot observation has shape {last_obs.shape}, this env's is {self._last_obs.shape}")
        generator = np.random.Generator(np.random.PCG64())
        try:
            generator.bit_generator.state = snapshot["np_random"]
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"snapshot RNG state is not a PCG64 state ({err})") from None
        task_state = snapshot["task_state"]
        if not isinstance(task_state, dict) or set(task_state) != set(self.task_state):
            raise ValueError(f"snapshot task state {task_state!r} is not this task's ({sorted(self.task_state)})")
        physics = np.asarray(snapshot["physics"], dtype=np.float64)
        check_physics_state(self.model, physics)
        set_physics_state(self.model, self.data, physics)
        self.task_state = dict(task_state)
        self.np_random = generator
        self._last_obs = last_obs.copy()

    # --- helpers ------------------------------------------------------------------------------------------
    def _checked_action(self, action: np.ndarray) -> np.ndarray:
        """The action as a numeric array of the right shape with finite entries, else ValueError.

        Float actions keep their dtype (HB's action map promotes with float32 bounds; see ActionMap).
        """
        try:
            arr = np.asarray(action)
            if arr.dtype.kind == "O":
                arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action must be numeric, got {type(action).__name__}: {err}") from err
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"action must be numeric, got dtype {arr.dtype}")
        if arr.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"action must be finite, got {arr}")
        return arr



#: What `mj_step` reads: MuJoCo's documented set for reproducing a simulation exactly (mjSTATE_INTEGRATION).
_INTEGRATION_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


def physics_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """MuJoCo's integration state of `data` as one float64 vector (`set_physics_state` puts it back)."""
    state = np.empty(mujoco.mj_stateSize(model, _INTEGRATION_STATE))
    mujoco.mj_getState(model, data, state, _INTEGRATION_STATE)
    return state


def check_physics_state(model: mujoco.MjModel, state: np.ndarray) -> None:
    """ValueError unless `state` is a finite `physics_state` vector of this model."""
    size = mujoco.mj_stateSize(model, _INTEGRATION_STATE)
    if state.shape != (size,):
        raise ValueError(f"physics state has shape {state.shape}, this model's is ({size},)")
    if not np.isfinite(state).all():
        raise ValueError("physics state must be finite")


def set_physics_state(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
    """Put back a `physics_state` vector and recompute the derived quantities (positions, contacts, sensors)
    that readers of `data` see, without touching the state. ValueError if it has the wrong size or is not
    finite (nothing is changed then)."""
    state = np.asarray(state, dtype=np.float64)
    check_physics_state(model, state)
    mujoco.mj_setState(model, data, state, _INTEGRATION_STATE)
    mujoco.mj_forward(model, data)
    mujoco.mj_setState(model, data, state, _INTEGRATION_STATE)  # mj_forward may not change what mj_step reads


__all__ = ["DEFAULT_RENDER_SIZE_PX", "RESET_NOISE", "HumanoidEnv", "check_physics_state", "physics_state",
           "set_physics_state"]
