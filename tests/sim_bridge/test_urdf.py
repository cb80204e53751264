"""The H1's URDF (sim_bridge/urdf.py) against MuJoCo: the same links and joints, and forward kinematics through
the URDF's joint origins and axes (read back from the XML) puts every link where MuJoCo does, at any angles."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

import sim_bridge
from sim_bridge.h1 import constants
from sim_bridge.urdf import forward_kinematics, matrix_from_rpy, robot_urdf, rpy


@pytest.fixture(scope="module")
def h1():
    env = sim_bridge.make("h1-stand-v0").unwrapped
    yield env.model, robot_urdf(env.model, constants.ROOT_BODY, constants.ROBOT_NAME)
    env.close()


def test_the_urdf_has_every_link_and_joint_with_its_limits(h1):
    model, urdf = h1
    robot = ET.fromstring(urdf)
    root = model.body(constants.ROOT_BODY).id
    bodies = [model.body(b).name for b in range(model.nbody) if int(model.body_rootid[b]) == root]
    assert [link.get("name") for link in robot.findall("link")] == bodies
    revolute = {j.get("name"): j for j in robot.findall("joint") if j.get("type") == "revolute"}
    assert set(revolute) == set(constants.JOINTS)  # the JointState names: robot_state_publisher maps them
    for name, joint in revolute.items():
        limit = joint.find("limit")
        low, high = model.joint(name).range
        assert (float(limit.get("lower")), float(limit.get("upper"))) == pytest.approx((low, high), abs=1e-9)
        assert float(limit.get("effort")) > 0
    meshes = [m.get("filename") for m in robot.iter("mesh")]
    assert meshes and all(m.startswith("file:///") and m.endswith(".stl") for m in meshes)


def test_forward_kinematics_through_the_urdf_is_mujocos(h1):
    model, urdf = h1
    data = mujoco.MjData(model)
    rng = np.random.default_rng(2)
    root = model.body(constants.ROOT_BODY).id
    for _ in range(5):
        data.qpos[:] = model.qpos0
        data.qpos[3:7] = [1.0, 0.0, 0.0, 0.0]
        angles = {}
        for name in constants.JOINTS:
            joint = model.joint(name)
            angles[name] = float(rng.uniform(*joint.range))
            data.qpos[joint.qposadr[0]] = angles[name]
        mujoco.mj_kinematics(model, data)
        poses = forward_kinematics(urdf, angles)
        for body in range(model.nbody):
            if int(model.body_rootid[body]) != root:
                continue
            position, rotation = poses[model.body(body).name]
            np.testing.assert_allclose(position, data.xpos[body] - data.xpos[root], atol=1e-7)
            np.testing.assert_allclose(rotation, data.xmat[body].reshape(3, 3), atol=1e-7)


def test_rpy_round_trips_including_gimbal_lock():
    rng = np.random.default_rng(0)
    for angles in [tuple(rng.uniform(-3, 3, 3)) for _ in range(20)] + [(0.3, math.pi / 2, 0.1), (0, -math.pi / 2, 1)]:
        matrix = matrix_from_rpy(*angles)
        np.testing.assert_allclose(matrix_from_rpy(*rpy(matrix)), matrix, atol=1e-9)
