"""Joint commands (the five fields of a humanoid's joint controller) applied through MuJoCo's servos.

A command asks for tau = kp · (position - q) + kd · (velocity - dq) + effort per joint (ezm_msgs
JointCommand; Unitree's MotorCmd). HumanoidBench's H1 actuators are MuJoCo `<position>` servos with an
affine bias, force = gain · ctrl + b0 + b1 · q + b2 · dq, clamped to the actuator's force range. Setting
gain = kp, b0 = kd · velocity + effort, b1 = -kp, b2 = -kd and ctrl = position gives exactly the command,
still clamped by the H1's force limits and with the position target clamped to the joint range, as
HumanoidBench's servos do. A command with the optional fields empty restores HumanoidBench's own gains,
so the default path is HumanoidBench's physics bit for bit. Damping mode is kp = 0, kd = `damping_kd`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import mujoco
import numpy as np

#: Damping-mode gain (N·m·s/rad per joint) of a humanoid's low-level controller when commands stop:
#: Unitree's H1 deploy (unitree_rl_gym deploy_real/common/command_helper.py) and rl_sar's passive state
#: both use kp 0, kd 8.
DEFAULT_DAMPING_KD: float = 8.0
#: Gains past these are corrupt commands, not stiff ones: over 3x the stiffest servo of the H1 model
#: (300 N·m/rad, HumanoidBench's knees and torso; Unitree's H1 deploy uses the same) and over 15x its
#: largest damping (6 N·m·s/rad). An unbounded kp turns the servo into bang-bang at the force limit.
MAX_KP: float = 1000.0  # N·m/rad
MAX_KD: float = 100.0  # N·m·s/rad
#: A velocity target past this is no joint speed a humanoid motor reaches (H1's fastest are near 20 rad/s).
MAX_TARGET_VELOCITY: float = 100.0  # rad/s


@dataclasses.dataclass(frozen=True)
class CommandLimits:
    """What a joint command may ask for, per actuator in `joint_order`; beyond it the command is refused."""

    max_effort: np.ndarray  # (nu,) N·m: the actuator's force range (its force is clamped there anyway)
    max_kp: float = MAX_KP
    max_kd: float = MAX_KD
    max_velocity: float = MAX_TARGET_VELOCITY


class CommandError(ValueError):
    """A joint command that cannot be applied (unknown or missing joints, wrong length, NaN or inf)."""


@dataclasses.dataclass(frozen=True)
class ServoCommand:
    """A validated joint command in actuator order; None means "the default" for an optional field."""

    position: np.ndarray  # (nu,) rad
    velocity: np.ndarray | None = None  # (nu,) rad/s, default 0
    effort: np.ndarray | None = None  # (nu,) N·m, default 0
    kp: np.ndarray | None = None  # (nu,) N·m/rad, default: the model's servo kp
    kd: np.ndarray | None = None  # (nu,) N·m·s/rad, default: the model's servo kv

    @property
    def uses_model_gains(self) -> bool:
        return self.velocity is None and self.effort is None and self.kp is None and self.kd is None


def parse_joint_command(names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                        effort: Sequence[float], kp: Sequence[float], kd: Sequence[float],
                        joint_order: Sequence[str], limits: CommandLimits | None = None) -> ServoCommand:
    """The command's arrays, mapped by name onto `joint_order`; raises CommandError with the reason.

    Every joint of `joint_order` must appear exactly once (a low-level command always covers the whole
    robot, as Unitree's LowCmd does); optional arrays are empty or as long as `names`. With `limits`,
    kp, kd, velocity and effort beyond them are refused (positions are clamped to the ctrl range by the
    caller, as a servo clamps its target). Sizes are checked before any per-name work, so an oversized
    message costs no more than a normal one.
    """
    if len(names) != len(joint_order):
        raise CommandError(f"{len(names)} joint names for a robot of {len(joint_order)} joints")
    names = list(names)
    if len(set(names)) != len(names):
        raise CommandError("duplicate joint names")
    unknown = sorted(set(names) - set(joint_order))
    if unknown:
        raise CommandError(f"unknown joints {unknown[:3]}")
    missing = [n for n in joint_order if n not in set(names)]
    if missing:
        raise CommandError(f"missing joints {missing[:3]} ({len(names)} of {len(joint_order)} given)")
    order = [names.index(n) for n in joint_order]

    def mapped(field: str, values: Sequence[float], required: bool) -> np.ndarray | None:
        if len(values) == 0 and not required:
            return None
        if len(values) != len(names):
            raise CommandError(f"{field} has {len(values)} entries for {len(names)} joints")
        arr = np.asarray(values, dtype=np.float64)[order]
        if not np.isfinite(arr).all():
            raise CommandError(f"{field} contains NaN or inf")
        return arr

    command = ServoCommand(
        position=mapped("position", position, required=True),
        velocity=mapped("velocity", velocity, required=False),
        effort=mapped("effort", effort, required=False),
        kp=mapped("kp", kp, required=False),
        kd=mapped("kd", kd, required=False),
    )
    if (command.kp is not None and (command.kp < 0).any()) or (command.kd is not None and (command.kd < 0).any()):
        raise CommandError("kp and kd must be >= 0")
    if limits is not None:
        for field, values, bound, unit in (("kp", command.kp, limits.max_kp, "N·m/rad"),
                                           ("kd", command.kd, limits.max_kd, "N·m·s/rad"),
                                           ("velocity", command.velocity, limits.max_velocity, "rad/s"),
                                           ("effort", command.effort, limits.max_effort, "N·m")):
            if values is not None and (np.abs(values) > bound).any():
                worst = int(np.argmax(np.abs(values) - bound))
                raise CommandError(f"{field} of {joint_order[worst]} is {values[worst]:.4g}, beyond "
                                   f"{np.broadcast_to(bound, values.shape)[worst]:.4g} {unit}")
    return command


class Servos:
    """Sets the first `nu` position servos of a model for a command or for damping.

    Keeps the model's own gains (HumanoidBench's) so that a default command restores them exactly.
    """

    def __init__(self, model: mujoco.MjModel, nu: int) -> None:
        if not (model.actuator_biastype[:nu] == mujoco.mjtBias.mjBIAS_AFFINE).all():
            raise ValueError("joint commands need position servos (affine bias) on every joint")
        self._model = model
        self._nu = nu
        self._gain0 = model.actuator_gainprm[:nu, 0].copy()
        self._bias0 = model.actuator_biasprm[:nu, :3].copy()
        #: Motor strength per actuator: every stiffness applied, the command's or the model's, is multiplied by
        #: it (1: as commanded; perturbations.Perturber draws it for a perturbed sim2sim).
        self.strength = np.ones(nu)

    @property
    def limits(self) -> CommandLimits:
        """Command limits of this model: its actuators' force ranges, the module's gain bounds."""
        low, high = self._model.actuator_forcerange[:self._nu].T
        limited = self._model.actuator_forcelimited[:self._nu].astype(bool)
        return CommandLimits(max_effort=np.where(limited, np.maximum(-low, high), np.inf))

    @property
    def model_kp(self) -> np.ndarray:
        return self._gain0.copy()

    @property
    def model_kd(self) -> np.ndarray:
        return -self._bias0[:, 2]

    def apply(self, command: ServoCommand) -> None:
        """Servo gains for `command`; the caller then sets ctrl to `command.position`."""
        nu = self._nu
        if command.uses_model_gains:
            self._model.actuator_gainprm[:nu, 0] = self._gain0 * self.strength
            self._model.actuator_biasprm[:nu, :3] = self._bias0
            self._model.actuator_biasprm[:nu, 1] *= self.strength
            return
        kp = (self._gain0 if command.kp is None else command.kp) * self.strength
        kd = -self._bias0[:, 2] if command.kd is None else command.kd
        velocity = 0.0 if command.velocity is None else command.velocity
        effort = 0.0 if command.effort is None else command.effort
        self._model.actuator_gainprm[:nu, 0] = kp
        self._model.actuator_biasprm[:nu, 0] = kd * velocity + effort
        self._model.actuator_biasprm[:nu, 1] = -kp
        self._model.actuator_biasprm[:nu, 2] = -kd

    def damp(self, kd: float) -> None:
        """Zero stiffness, damping `kd` on every joint (the position target then has no effect)."""
        nu = self._nu
        self._model.actuator_gainprm[:nu, 0] = 0.0
        self._model.actuator_biasprm[:nu, 0] = 0.0
        self._model.actuator_biasprm[:nu, 1] = 0.0
        self._model.actuator_biasprm[:nu, 2] = -kd
