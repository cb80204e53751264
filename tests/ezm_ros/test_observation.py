"""The planner's observation, rebuilt from the state messages, equals the simulator's own, for every task.

The messages go through rclpy's CDR serialization, the bytes Fast DDS carries, so this is the whole
path minus the transport (tests/ezm_ros/test_stack.py checks the transport with the running nodes).
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

import sim_bridge  # noqa: E402
from ezm_ros import conversions  # noqa: E402
from ezm_ros.observation import build_observation  # noqa: E402
from sim_bridge.h1 import constants  # noqa: E402
from sim_bridge.sim_node import state_messages  # noqa: E402

pytestmark = pytest.mark.ros
STEPS = 6  # a few random steps: moving objects, non-zero velocities, reach's stale hand site


def _through_cdr(msg):
    return deserialize_message(serialize_message(msg), type(msg))


@pytest.mark.parametrize("env_id", sim_bridge.TASK_IDS)
def test_observation_from_topics_equals_the_simulators(env_id):
    env = sim_bridge.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    task = env_id.split("-")[1]
    try:
        for step in range(STEPS + 1):
            joints, _, odom, task_state = (_through_cdr(m) for m in state_messages(
                env, obs, task, conversions.stamp_from_ns(step * 20_000_000)))
            robot = conversions.robot_coordinates(joints, odom, constants.JOINTS)
            rebuilt = build_observation(robot, task_state)
            assert rebuilt.shape == obs.shape
            # Only the body-frame twist is rotated there and back: equal to rounding (~1e-16 relative).
            np.testing.assert_allclose(rebuilt, obs, rtol=0, atol=1e-12, err_msg=f"{env_id} step {step}")
            linear = slice(env.model.nq, env.model.nq + 3)
            others = np.ones(obs.shape, dtype=bool)
            others[linear] = False
            assert np.array_equal(rebuilt[others], obs[others]), "all but the rotated twist must be exact"
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
    finally:
        env.close()


def test_reach_publishes_the_stale_hand_site_not_a_fresh_one():
    env = sim_bridge.make("h1-reach-v0").unwrapped
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.full(env.action_space.shape, 0.5))
    _, _, _, task_state = state_messages(env, obs, "reach", conversions.stamp_from_ns(0))
    assert list(task_state.point_names) == ["left_hand", "goal"]
    hand = np.array([task_state.points[0].x, task_state.points[0].y, task_state.points[0].z])
    np.testing.assert_array_equal(hand, env.signals.left_hand_position)  # as the env observes it
    import mujoco

    mujoco.mj_forward(env.model, env.data)  # a fresh forward pass moves the site: the stale value matters
    assert not np.allclose(hand, env.signals.left_hand_position, atol=1e-9)
    env.close()


def test_odom_twist_is_in_the_body_frame():
    env = sim_bridge.make("h1-walk-v0").unwrapped
    env.reset(seed=0)
    qpos = env.data.qpos.copy()
    yaw = np.pi / 2  # pelvis turned to face +y of odom, moving along +y of odom: forward in its own frame
    qpos[3:7] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
    qvel = np.zeros(env.model.nv)
    qvel[1] = 1.0
    env.set_state(qpos, qvel)
    _, _, odom, _ = state_messages(env, env.task.observation(env.data), "walk", conversions.stamp_from_ns(0))
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "pelvis")
    np.testing.assert_allclose([odom.twist.twist.linear.x, odom.twist.twist.linear.y], [1.0, 0.0], atol=1e-12)
    assert conversions.yaw_of(qpos[3:7]) == pytest.approx(yaw)
    env.close()


@pytest.mark.parametrize("corrupt, reason", [
    (lambda js, odom: js.position.pop(), "names but"),
    (lambda js, odom: js.position.__setitem__(3, float("nan")), "NaN"),
    (lambda js, odom: setattr(odom.twist.twist.linear, "x", float("inf")), "NaN or inf"),
    (lambda js, odom: setattr(js, "name", js.name[:-1]), "names but"),
])
def test_bad_state_messages_raise_state_error(corrupt, reason):
    env = sim_bridge.make("h1-stand-v0").unwrapped
    obs, _ = env.reset(seed=0)
    joints, _, odom, _ = state_messages(env, obs, "stand", conversions.stamp_from_ns(0))
    joints.position = list(joints.position)
    corrupt(joints, odom)
    with pytest.raises(conversions.StateError, match=reason):
        conversions.robot_coordinates(joints, odom, constants.JOINTS)
    env.close()


def test_quaternion_rotation_matches_mujoco():
    # conversions rotates with numpy (the planner runs without MuJoCo); MuJoCo's own function agrees.
    import mujoco

    rng = np.random.default_rng(0)
    for _ in range(200):
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        vec = rng.normal(size=3)
        expected = np.empty(3)
        mujoco.mju_rotVecQuat(expected, vec, quat)
        np.testing.assert_allclose(conversions.rotate(quat, vec), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(conversions.rotate_inverse(quat, expected), vec, rtol=0, atol=1e-12)
