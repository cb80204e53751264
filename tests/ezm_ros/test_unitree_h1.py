"""The robot boundary (ezm_ros/unitree_h1.py) against the simulator on fixed states: a LowState made from MuJoCo
as the H1's torso IMU and motors would report it becomes exactly the JointState and pelvis Imu the simulator
node publishes; a JointCommand becomes a LowCmd with each target in its joint's motor slot."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import sim_bridge
from ezm_msgs.msg import JointCommand
from ezm_ros import conversions
from ezm_ros.unitree_h1 import (
    MODE_SERVO,
    MODE_WEAK,
    MOTOR_OF_JOINT,
    NUM_MOTORS,
    POS_STOP,
    UNUSED_MOTOR,
    VEL_STOP,
    BoundaryError,
    LowState,
    from_low_state,
    to_low_cmd,
)
from sim_bridge.h1 import constants
from sim_bridge.sim_node import state_messages

JOINTS = list(constants.JOINTS)
STAMP = conversions.stamp_from_ns(123_000_000)


def _fixed_states(count: int = 5):
    """(env, obs) at fixed, varied states: joints inside their ranges, any pelvis orientation and rates, the
    torso turned and turning (the case the IMU rotation exists for)."""
    env = sim_bridge.make("h1-stand-v0").unwrapped
    obs, _ = env.reset(seed=0)
    model, data = env.model, env.data
    rng = np.random.default_rng(7)
    nq, nv = env.signals.robot_nq, env.signals.robot_nv
    for _ in range(count):
        qpos = data.qpos.copy()
        low, high = model.jnt_range[1:, 0], model.jnt_range[1:, 1]
        qpos[7:nq] = rng.uniform(low, high)[: nq - 7]
        axis = rng.normal(size=3)
        angle = rng.uniform(-np.pi, np.pi)
        qpos[3:7] = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis / np.linalg.norm(axis)])
        qvel = rng.normal(scale=1.5, size=nv)
        env.set_state(qpos, qvel)
        yield env, env.task.observation(data)


def _low_state_of(env) -> LowState:
    """What the H1 would report in this state: motors by slot, the IMU on the torso link, in its frame (XBODY:
    MuJoCo's local frame of a BODY is its inertial frame)."""
    model, data = env.model, env.data
    q, dq, tau = np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS)
    for i, name in enumerate(JOINTS):
        joint = model.joint(name)
        slot = MOTOR_OF_JOINT[name]
        q[slot], dq[slot] = data.qpos[joint.qposadr[0]], data.qvel[joint.dofadr[0]]
        tau[slot] = data.actuator_force[i]
    torso = model.body("torso_link").id
    velocity = np.zeros(6)
    mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, torso, velocity, 1)  # torso frame
    acceleration = np.zeros(6)
    mujoco.mj_objectAcceleration(model, data, mujoco.mjtObj.mjOBJ_XBODY, torso, acceleration, 1)
    return LowState(q, dq, tau, data.xquat[torso].copy(), velocity[:3], acceleration[3:])


def test_a_low_state_from_the_simulator_becomes_the_simulators_own_joint_state_and_pelvis_imu():
    for env, obs in _fixed_states():
        joints, imu = from_low_state(_low_state_of(env), JOINTS, STAMP)
        expected_joints, expected_imu, _, _ = state_messages(env, obs, "stand", STAMP)
        assert list(joints.name) == list(expected_joints.name)
        np.testing.assert_allclose(joints.position, expected_joints.position, atol=1e-12)
        np.testing.assert_allclose(joints.velocity, expected_joints.velocity, atol=1e-12)
        np.testing.assert_allclose(joints.effort, expected_joints.effort, atol=1e-12)
        got_quat = np.array([imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z])
        want_quat = np.array([expected_imu.orientation.w, expected_imu.orientation.x, expected_imu.orientation.y,
                              expected_imu.orientation.z])
        assert min(np.abs(got_quat - want_quat).max(), np.abs(got_quat + want_quat).max()) < 1e-9
        for axis in "xyz":  # the torso turns at its joint's rate: the gyro must lose exactly that
            assert getattr(imu.angular_velocity, axis) == pytest.approx(
                getattr(expected_imu.angular_velocity, axis), abs=1e-9)


def test_at_rest_the_accelerometer_rotated_from_the_torso_reads_the_pelvis_gravity():
    """The specific force is rotated, not moved (module docstring): exact when nothing accelerates."""
    for env, _ in _fixed_states(3):
        model, data = env.model, env.data
        data.qvel[:] = 0.0
        mujoco.mj_forward(model, data)  # velocities (and their Coriolis terms) at rest
        data.qacc[:] = 0.0
        mujoco.mj_rnePostConstraint(model, data)  # body accelerations from qacc = 0: gravity alone
        state = _low_state_of(env)
        _, imu = from_low_state(state, JOINTS, STAMP)
        pelvis = np.zeros(6)
        mujoco.mj_objectAcceleration(model, data, mujoco.mjtObj.mjOBJ_XBODY, model.body("pelvis").id, pelvis, 1)
        got = [imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z]
        np.testing.assert_allclose(got, pelvis[3:], atol=1e-9)
        assert np.linalg.norm(got) == pytest.approx(9.81, abs=1e-6)
        # The simulator's own Imu: gravity's reaction in the pelvis frame (it used MuJoCo's inertial frame).
        _, sim_imu, _, _ = state_messages(env, env.task.observation(data), "stand", STAMP)
        up_in_pelvis = data.xmat[model.body("pelvis").id].reshape(3, 3).T @ np.array([0.0, 0.0, 9.81])
        sim = [sim_imu.linear_acceleration.x, sim_imu.linear_acceleration.y, sim_imu.linear_acceleration.z]
        np.testing.assert_allclose(sim, up_in_pelvis, atol=1e-6)


def test_a_joint_command_lands_in_each_joints_motor_slot():
    rng = np.random.default_rng(3)
    order = list(rng.permutation(JOINTS))  # a command's joint order is free; names map it
    values = {field: rng.normal(size=len(order)) for field in ("position", "velocity", "effort", "kp", "kd")}
    command = JointCommand(name=order, **{field: list(v) for field, v in values.items()})
    low = to_low_cmd(command)
    for i, name in enumerate(order):
        slot = MOTOR_OF_JOINT[name]
        for field, array in (("position", low.q), ("velocity", low.dq), ("effort", low.tau), ("kp", low.kp),
                             ("kd", low.kd)):
            assert array[slot] == pytest.approx(values[field][i], rel=1e-6), (name, field)
        assert low.mode[slot] == (MODE_WEAK if slot >= 10 else MODE_SERVO)
    # The unused slot holds Unitree's stop values and no gains; the table covers the other 19 slots once.
    assert (low.q[UNUSED_MOTOR], low.dq[UNUSED_MOTOR]) == (np.float32(POS_STOP), np.float32(VEL_STOP))
    assert low.kp[UNUSED_MOTOR] == low.kd[UNUSED_MOTOR] == low.mode[UNUSED_MOTOR] == 0
    assert sorted(MOTOR_OF_JOINT.values()) == [m for m in range(NUM_MOTORS) if m != UNUSED_MOTOR]
    # The reference's leg slots (left 7, 3, 4, 5, 10; right 8, 0, 1, 2, 11: yaw, roll, pitch, knee, ankle).
    legs = [f"{side}_{joint}" for side in ("left", "right") for joint in ("hip_yaw", "hip_roll", "hip_pitch",
                                                                           "knee", "ankle")]
    assert [MOTOR_OF_JOINT[name] for name in legs] == [7, 3, 4, 5, 10, 8, 0, 1, 2, 11]


def test_what_cannot_cross_the_boundary_is_refused_by_name():
    hold = list(map(float, constants.KEYFRAME_QPOS[7:]))
    with pytest.raises(BoundaryError, match="no kp .*never falls back"):
        to_low_cmd(JointCommand(name=JOINTS, position=hold))  # no gains, no defaults
    gains = {name: 100.0 for name in JOINTS}
    low = to_low_cmd(JointCommand(name=JOINTS, position=hold), default_kp=gains, default_kd=gains)
    assert low.kp[MOTOR_OF_JOINT["torso"]] == 100.0
    with pytest.raises(BoundaryError, match=r"lacks joints \['torso'\]"):
        to_low_cmd(JointCommand(name=JOINTS[:10] + JOINTS[11:], position=hold[:10] + hold[11:]))
    with pytest.raises(BoundaryError, match="position is not finite"):
        to_low_cmd(JointCommand(name=JOINTS, position=[np.nan] + hold[1:]), default_kp=gains, default_kd=gains)
    with pytest.raises(BoundaryError, match="kd has 3 entries for 19 joints"):
        to_low_cmd(JointCommand(name=JOINTS, position=hold, kp=[1.0] * 19, kd=[1.0] * 3))
    with pytest.raises(BoundaryError, match=r"joints \['head'\] have no H1 motor"):
        to_low_cmd(JointCommand(name=JOINTS + ["head"], position=hold + [0.0]))
    env, _ = next(_fixed_states(1))
    state = _low_state_of(env)
    with pytest.raises(BoundaryError, match="imu_quaternion has norm 0"):
        from_low_state(LowState(state.q, state.dq, state.tau_est, np.zeros(4), state.imu_gyroscope,
                                state.imu_accelerometer), JOINTS, STAMP)
    with pytest.raises(BoundaryError, match=r"q has shape \(19,\)"):
        from_low_state(LowState(state.q[:19], state.dq, state.tau_est, state.imu_quaternion, state.imu_gyroscope,
                                state.imu_accelerometer), JOINTS, STAMP)
    with pytest.raises(BoundaryError, match="dq is not finite"):
        from_low_state(LowState(state.q, np.full(20, np.inf), state.tau_est, state.imu_quaternion,
                                state.imu_gyroscope, state.imu_accelerometer), JOINTS, STAMP)
