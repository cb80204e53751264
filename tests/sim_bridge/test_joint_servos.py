"""Joint commands through HumanoidBench's position servos: tau = kp (q* - q) + kd (dq* - dq) + tau_ff,
clamped by the H1's force limits; the default command is HumanoidBench's servo exactly; damping is kd only."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import sim_bridge
from sim_bridge.h1 import constants
from sim_bridge.joint_servos import (MAX_KD, MAX_KP, MAX_TARGET_VELOCITY, CommandError, Servos, ServoCommand,
                                     parse_joint_command)

NU = len(constants.ACTUATORS)


@pytest.fixture()
def env():
    env = sim_bridge.make("h1-stand-v0").unwrapped
    env.reset(seed=0)
    qvel = np.zeros(env.model.nv)
    qvel[6:] = np.linspace(-1.0, 1.0, NU)  # joint velocities, so the damping terms matter
    env.set_state(env.data.qpos.copy(), qvel)
    yield env
    env.close()


def _forces(env, ctrl) -> np.ndarray:
    env.data.ctrl[:NU] = ctrl
    mujoco.mj_forward(env.model, env.data)
    return env.data.actuator_force[:NU].copy()


def _limits() -> np.ndarray:
    return np.array([constants.SERVO_GAINS[constants.ACTUATOR_GAIN_CLASS[a]].force_limit for a in constants.ACTUATORS])


def test_full_command_gives_the_five_field_law_clamped_by_force_limits(env):
    servos = Servos(env.model, NU)
    q, dq = env.data.qpos[7:].copy(), env.data.qvel[6:].copy()
    rng = np.random.default_rng(0)
    command = ServoCommand(position=q + rng.uniform(-0.1, 0.1, NU), velocity=rng.uniform(-1, 1, NU),
                           effort=rng.uniform(-5, 5, NU), kp=rng.uniform(10, 100, NU), kd=rng.uniform(0, 5, NU))
    servos.apply(command)
    expected = command.kp * (command.position - q) + command.kd * (command.velocity - dq) + command.effort
    np.testing.assert_allclose(_forces(env, command.position), np.clip(expected, -_limits(), _limits()), atol=1e-9)


def test_default_command_restores_humanoidbench_servos_bit_for_bit(env):
    servos = Servos(env.model, NU)
    gain, bias = env.model.actuator_gainprm.copy(), env.model.actuator_biasprm.copy()
    servos.damp(8.0)
    servos.apply(ServoCommand(position=np.zeros(NU)))
    assert np.array_equal(env.model.actuator_gainprm, gain) and np.array_equal(env.model.actuator_biasprm, bias)


def test_motor_strength_scales_every_stiffness_the_commands_and_the_models(env):
    """A perturbed sim2sim draws motor strength (perturbations.Perturber.kp_factor); the servos apply it to the
    command's kp and to the model's own, or the commanded gains would undo the perturbation."""
    servos = Servos(env.model, NU)
    q, dq = env.data.qpos[7:].copy(), env.data.qvel[6:].copy()
    servos.strength = np.linspace(0.8, 1.2, NU)
    target = q + 0.01
    command = ServoCommand(position=target, kp=np.full(NU, 50.0), kd=np.full(NU, 1.0))
    servos.apply(command)
    expected = 50.0 * servos.strength * (target - q) + 1.0 * (0.0 - dq)
    np.testing.assert_allclose(_forces(env, target), np.clip(expected, -_limits(), _limits()), atol=1e-9)
    servos.apply(ServoCommand(position=target))  # the model's own gains, scaled the same way
    expected = servos.model_kp * servos.strength * (target - q) - servos.model_kd * dq
    np.testing.assert_allclose(_forces(env, target), np.clip(expected, -_limits(), _limits()), atol=1e-9)


def test_damping_is_kd_only(env):
    Servos(env.model, NU).damp(8.0)
    dq = env.data.qvel[6:].copy()
    np.testing.assert_allclose(_forces(env, env.data.qpos[7:]), np.clip(-8.0 * dq, -_limits(), _limits()), atol=1e-9)


def test_commands_map_by_name_and_reject_what_cannot_be_applied():
    names = list(reversed(constants.ACTUATORS))
    positions = list(range(NU))
    command = parse_joint_command(names, positions, [], [], [], [], constants.ACTUATORS)
    assert command.position.tolist() == list(reversed(positions)) and command.uses_model_gains
    for bad, reason in (
        (dict(names=names[:-1], position=positions[:-1]), "18 joint names for a robot of 19"),
        (dict(names=names * 10_000, position=positions * 10_000), "190000 joint names"),  # a flood, refused first
        (dict(names=names[:-1] + ["tail"], position=positions), "unknown joints"),
        (dict(names=names, position=positions[:-1]), "position has 18 entries"),
        (dict(names=names, position=[np.nan] + positions[1:]), "NaN or inf"),
        (dict(names=names, position=positions, kd=[-1.0] * NU), "must be >= 0"),
        (dict(names=names[:-1] + names[:1], position=positions), "duplicate"),
    ):
        args = dict(velocity=[], effort=[], kp=[], kd=[]) | bad
        with pytest.raises(CommandError, match=reason):
            parse_joint_command(args["names"], args["position"], args["velocity"], args["effort"], args["kp"],
                                args["kd"], constants.ACTUATORS)


def test_gains_velocities_and_efforts_beyond_the_limits_are_refused_with_the_joint_named(env):
    limits = Servos(env.model, NU).limits
    knee = constants.ACTUATORS.index("left_knee")
    np.testing.assert_array_equal(limits.max_effort, _limits())  # the H1's force limits
    names, zeros = list(constants.ACTUATORS), [0.0] * NU
    at_limit = limits.max_effort.tolist()
    command = parse_joint_command(names, zeros, [MAX_TARGET_VELOCITY] * NU, at_limit, [MAX_KP] * NU,
                                  [MAX_KD] * NU, constants.ACTUATORS, limits)
    assert command.effort[knee] == 300.0  # the bounds themselves are allowed
    for field, value, reason in (("kp", 1e308, r"kp of left_knee is 1e\+308"), ("kd", 101.0, "kd of left_knee"),
                                 ("velocity", -1e4, "velocity of left_knee"), ("effort", 300.5, "effort of left_knee")):
        args = dict(velocity=[], effort=[], kp=[], kd=[])
        args[field] = [0.0] * NU
        args[field][knee] = value
        with pytest.raises(CommandError, match=reason):
            parse_joint_command(names, zeros, args["velocity"], args["effort"], args["kp"], args["kd"],
                                constants.ACTUATORS, limits)
        parse_joint_command(names, zeros, args["velocity"], args["effort"], args["kp"], args["kd"],
                            constants.ACTUATORS)  # without limits (a caller's own bounds), it parses
