"""Perturbed sim2sim: the H1 tasks with the differences a real robot brings, to try a planner before hardware.

    env = Perturbed(sim_bridge.make("h1-stand-v0"), LEVELS["medium"])

Per reset (from the reset's seed, so an episode is reproducible) the wrapper draws each body's mass, each
geom's sliding friction and each servo's stiffness (kp: motor strength) as the nominal value times
U(1 - s, 1 + s), and a bias per observed joint coordinate. Per step it adds observation noise, delays the
action by whole control steps (the 50 Hz period quantises latency: 0, 20, 40 ms), jitters the control period
(the physics timestep times U(1 - j, 1 + j) for that step), and pushes the pelvis: at `push_rate_hz` on
average, a horizontal velocity kick of `push_speed_mps` in a random direction. The nominal model is restored
before every draw, so perturbations never accumulate.

Observation noise and bias touch the robot's joint coordinates (qpos and qvel after the free joint): what
encoders measure. The floating base's entries stand for the IMU and state estimator, which get the same
noise. Task extras (object states, targets) are left exact.

No anchor stack perturbs its sim2sim (reference/deploy-stacks.md §4 item 7); the levels below are this
project's choice, set around what sim2real papers randomise: mass ±10-20 %, friction ±20-40 %, kp ±10-20 %,
latency 20-40 ms, encoder noise of a few mrad.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Final

import gymnasium
import numpy as np

from ezm_ros.manifest import FREE_QPOS
from sim_bridge.h1.constants import CONTROL_DT_S


@dataclasses.dataclass(frozen=True)
class Perturbation:
    mass_scale: float = 0.0  # body masses x U(1 - s, 1 + s) per reset
    friction_scale: float = 0.0  # geom sliding friction x U(1 - s, 1 + s) per reset
    kp_scale: float = 0.0  # servo stiffness x U(1 - s, 1 + s) per reset
    latency_steps: int = 0  # actions applied this many control steps late (x 20 ms)
    obs_noise_std: float = 0.0  # Gaussian noise on the robot's coordinates, per step (rad, rad/s, m)
    obs_bias_std: float = 0.0  # a bias per coordinate, drawn per reset
    period_jitter: float = 0.0  # physics timestep x U(1 - j, 1 + j) per control step
    push_rate_hz: float = 0.0  # pushes per second of sim time, on average
    push_speed_mps: float = 0.0  # horizontal pelvis velocity each push adds

    def __post_init__(self) -> None:
        for name in ("mass_scale", "friction_scale", "kp_scale", "period_jitter"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("obs_noise_std", "obs_bias_std", "push_rate_hz", "push_speed_mps"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.latency_steps < 0:
            raise ValueError(f"latency_steps must be >= 0, got {self.latency_steps}")


#: The levels bench/sim2sim.py runs (BENCHMARKS.md, "Perturbed sim2sim").
LEVELS: Final = {
    "none": Perturbation(),
    "low": Perturbation(mass_scale=0.05, friction_scale=0.1, kp_scale=0.05, latency_steps=0, obs_noise_std=0.002,
                        obs_bias_std=0.002, period_jitter=0.02, push_rate_hz=0.1, push_speed_mps=0.2),
    "medium": Perturbation(mass_scale=0.1, friction_scale=0.2, kp_scale=0.1, latency_steps=1, obs_noise_std=0.005,
                           obs_bias_std=0.005, period_jitter=0.05, push_rate_hz=0.2, push_speed_mps=0.4),
    "high": Perturbation(mass_scale=0.2, friction_scale=0.4, kp_scale=0.2, latency_steps=2, obs_noise_std=0.01,
                         obs_bias_std=0.01, period_jitter=0.1, push_rate_hz=0.5, push_speed_mps=0.8),
}


class Perturber:
    """The perturbations of one MuJoCo model and its data, for any loop that steps it: the `Perturbed` gym
    wrapper below, and the simulator node (`perturbation` parameter, live).

    `draw(seed)` at each reset; `delay(command)` each control step, before the command is applied;
    `step_begin()` and `step_end()` around the physics step; `observe(obs)` or `observe_coordinates(qpos,
    qvel)` on what is measured. Servo stiffness is drawn as `kp_factor` (per actuator) and put into the model's
    own servo gains; a loop that sets the gains itself (joint_servos.Servos) multiplies its kp by it."""

    def __init__(self, model, data, robot_nq: int, robot_nv: int, perturbation: Perturbation) -> None:
        self.perturbation = perturbation
        self._model, self._data = model, data
        self._nominal = {"body_mass": model.body_mass.copy(), "geom_friction": model.geom_friction.copy(),
                         "gain": model.actuator_gainprm[:, 0].copy(), "bias": model.actuator_biasprm[:, 1].copy(),
                         "timestep": model.opt.timestep}
        self._nq, self._nv = robot_nq, robot_nv
        # Observation entries of the robot's coordinates: qpos [0, nq) and qvel [model.nq, model.nq + nv).
        self._observed = np.concatenate([np.arange(robot_nq), model.nq + np.arange(robot_nv)])
        self._rng = np.random.default_rng(0)
        self._noise_rng = np.random.default_rng(1)
        self._bias = np.zeros(len(self._observed))
        self._pending: collections.deque = collections.deque()
        self.kp_factor = np.ones(model.nu)
        self.pushes = 0  # pushes so far (all episodes)

    def draw(self, seed: int | None) -> None:
        """New masses, frictions, servo stiffness and encoder biases, from the nominal model; delays cleared."""
        p, model = self.perturbation, self._model
        self._rng = rng = np.random.default_rng(None if seed is None else [seed, 0x5eed])
        # The encoder noise has a stream of its own: how often a state is read (a simulator republishing an idle
        # state) must not change the pushes and jitter that follow.
        self._noise_rng = np.random.default_rng(None if seed is None else [seed, 0x5eed, 1])
        self.restore()

        def factors(scale: float, size: int) -> np.ndarray:
            return rng.uniform(1 - scale, 1 + scale, size=size) if scale else np.ones(size)

        mass = factors(p.mass_scale, model.nbody)
        friction = factors(p.friction_scale, model.ngeom)
        self.kp_factor = factors(p.kp_scale, model.nu)
        model.body_mass[:] = self._nominal["body_mass"] * mass
        model.geom_friction[:, 0] = self._nominal["geom_friction"][:, 0] * friction
        model.actuator_gainprm[:, 0] = self._nominal["gain"] * self.kp_factor  # a position servo: kp, -kp q
        model.actuator_biasprm[:, 1] = self._nominal["bias"] * self.kp_factor
        self._bias = rng.normal(0.0, p.obs_bias_std, size=len(self._observed)) if p.obs_bias_std else \
            np.zeros(len(self._observed))
        self._pending.clear()

    def restore(self) -> None:
        """The nominal model (before a draw, and when the perturbation ends)."""
        model, nominal = self._model, self._nominal
        model.body_mass[:] = nominal["body_mass"]
        model.geom_friction[:] = nominal["geom_friction"]
        model.actuator_gainprm[:, 0] = nominal["gain"]
        model.actuator_biasprm[:, 1] = nominal["bias"]
        model.opt.timestep = nominal["timestep"]
        self.kp_factor = np.ones(model.nu)

    def delay(self, command):
        """The command (an action, a servo command: anything) to apply now, `latency_steps` control steps late;
        until the first delayed one is due, the first one holds."""
        latency = self.perturbation.latency_steps
        if not latency:
            return command
        self._pending.append(command)
        return self._pending[0] if len(self._pending) <= latency else self._pending.popleft()

    def step_begin(self) -> None:
        """Before the physics step: this step's period jitter, and maybe a push."""
        p = self.perturbation
        if p.period_jitter:
            self._model.opt.timestep = self._nominal["timestep"] * self._rng.uniform(1 - p.period_jitter,
                                                                                     1 + p.period_jitter)
        if p.push_rate_hz and self._rng.random() < p.push_rate_hz * CONTROL_DT_S:
            angle = self._rng.uniform(0.0, 2.0 * np.pi)
            self._data.qvel[0:2] += p.push_speed_mps * np.array([np.cos(angle), np.sin(angle)])
            self.pushes += 1

    def step_end(self) -> None:
        self._model.opt.timestep = self._nominal["timestep"]

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """An env observation with the encoder noise and bias on the robot's coordinates."""
        p = self.perturbation
        if not (p.obs_noise_std or p.obs_bias_std):
            return obs
        obs = np.array(obs, copy=True)
        obs[self._observed] += self._offsets().astype(obs.dtype)
        quaternion = obs[3:FREE_QPOS]  # keep the base orientation a unit quaternion
        obs[3:FREE_QPOS] = quaternion / max(float(np.linalg.norm(quaternion)), 1e-9)
        return obs

    def observe_coordinates(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """qpos and qvel as measured (the simulator node publishes these): noise and bias on the robot's part."""
        qpos, qvel = np.array(qpos, dtype=np.float64), np.array(qvel, dtype=np.float64)
        p = self.perturbation
        if p.obs_noise_std or p.obs_bias_std:
            offsets = self._offsets()
            qpos[:self._nq] += offsets[:self._nq]
            qvel[:self._nv] += offsets[self._nq:]
            qpos[3:FREE_QPOS] /= max(float(np.linalg.norm(qpos[3:FREE_QPOS])), 1e-9)
        return qpos, qvel

    def _offsets(self) -> np.ndarray:
        p = self.perturbation
        noise = self._noise_rng.normal(0.0, p.obs_noise_std, size=len(self._observed)) if p.obs_noise_std else 0.0
        return self._bias + noise


class Perturbed(gymnasium.Wrapper):
    """A sim_bridge env (HumanoidEnv, possibly behind TimeLimit) with `perturbation` applied."""

    def __init__(self, env: gymnasium.Env, perturbation: Perturbation) -> None:
        super().__init__(env)
        base = env.unwrapped
        self.perturber = Perturber(base.model, base.data, base.signals.robot_nq, base.signals.robot_nv,
                                   perturbation)

    @property
    def perturbation(self) -> Perturbation:
        return self.perturber.perturbation

    @property
    def pushes(self) -> int:
        return self.perturber.pushes

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.perturber.draw(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self.perturber.observe(obs), info

    def step(self, action):
        action = self.perturber.delay(np.asarray(action, dtype=np.float32))
        self.perturber.step_begin()
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        finally:
            self.perturber.step_end()
        return self.perturber.observe(obs), reward, terminated, truncated, info

    def close(self) -> None:
        self.perturber.restore()
        super().close()


__all__ = ["LEVELS", "Perturbation", "Perturbed", "Perturber"]
