"""rviz's RobotModel and TF displays over real DDS: the visualization node publishes /robot_description (the
H1's URDF, latched, for late joiners) and /tf (odom -> pelvis and every link), consistent with the simulator's
state topics and with the URDF's own joints."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from ezm_ros import conversions, qos, topics
from sim_bridge.h1 import constants
from sim_bridge.urdf import forward_kinematics

pytestmark = pytest.mark.ros


def _rotation(q) -> np.ndarray:
    w, x, y, z = q.w, q.x, q.y, q.z
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def test_robot_description_and_tf_follow_the_robot(launch, probe):
    sim = launch("sim_bridge.sim_node", "ezm_sim", task="walk", wait_for_first_command=False)  # damping: it moves
    viz = launch("sim_bridge.visualization_node", "ezm_visualization", task="walk")
    tf = probe.collect(TFMessage, topics.TF, qos.TF)
    joints = probe.collect(JointState, topics.JOINT_STATES, qos.SENSOR)
    odom = probe.collect(Odometry, topics.ODOM, qos.SENSOR)
    assert probe.spin_until(lambda: len(tf) > 5 and joints and odom, 60.0), viz.output()[-2000:] + sim.output()[-1000:]
    # Latched: a display that subscribes late still gets it at once.
    description = probe.collect(String, topics.ROBOT_DESCRIPTION, qos.ROBOT_DESCRIPTION)
    assert probe.spin_until(lambda: description, 10.0), viz.output()[-2000:]
    urdf = description[-1][1].data
    robot = ET.fromstring(urdf)
    links = [link.get("name") for link in robot.findall("link")]
    assert links[0] == topics.BASE_FRAME and len(links) == 22
    assert {j.get("name") for j in robot.findall("joint") if j.get("type") == "revolute"} == set(constants.JOINTS)

    # One TF message: the whole tree, odom -> pelvis first, every link once, each from its URDF parent. Taken
    # from a step whose odometry and joint state the probe has too (under load they may arrive after the tree;
    # the best-effort state topics may match the probe later than the reliable /tf).
    probe.spin_for(0.5)
    odom_stamps = {conversions.stamp_to_ns(m.header.stamp) for _, m in odom}
    joint_stamps = {conversions.stamp_to_ns(m.header.stamp) for _, m in joints}
    matched = [m for _, m in tf if conversions.stamp_to_ns(m.transforms[0].header.stamp) in odom_stamps & joint_stamps]
    assert matched, (f"the state of some published tree's step reached the probe: trees at "
                     f"{[conversions.stamp_to_ns(m.transforms[0].header.stamp) for _, m in tf][-5:]}, odometry at "
                     f"{sorted(odom_stamps)[-5:]}, joint states at {sorted(joint_stamps)[-5:]}")
    message = matched[-1]
    parents = {j.find("child").get("link"): j.find("parent").get("link") for j in robot.findall("joint")}
    frames = [(t.header.frame_id, t.child_frame_id) for t in message.transforms]
    assert frames[0] == (topics.ODOM_FRAME, topics.BASE_FRAME)
    assert {child: parent for parent, child in frames[1:]} == parents

    # The root transform is the odometry of the same step, and the links are where the URDF puts them at that
    # step's joint angles: a RobotModel display draws the simulated robot.
    stamp = message.transforms[0].header.stamp
    same = [m for _, m in odom if m.header.stamp == stamp]
    state = [m for _, m in joints if m.header.stamp == stamp]
    assert same and state, "the state of the transforms' step was published"
    root = message.transforms[0].transform
    pose = same[-1].pose.pose
    assert (root.translation.x, root.translation.y, root.translation.z) == pytest.approx(
        (pose.position.x, pose.position.y, pose.position.z), abs=1e-9)
    angles = dict(zip(state[-1].name, state[-1].position))
    expected = forward_kinematics(urdf, angles)
    poses = {topics.BASE_FRAME: (np.zeros(3), np.eye(3))}
    for transform in message.transforms[1:]:
        position, frame = poses[transform.header.frame_id]
        t = transform.transform
        offset = np.array([t.translation.x, t.translation.y, t.translation.z])
        poses[transform.child_frame_id] = (position + frame @ offset, frame @ _rotation(t.rotation))
    for link, (position, frame) in poses.items():
        np.testing.assert_allclose(position, expected[link][0], atol=1e-6, err_msg=link)
        np.testing.assert_allclose(frame, expected[link][1], atol=1e-6, err_msg=link)
    assert sim.alive() and viz.alive()
