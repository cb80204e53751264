"""Markers put every mesh and scene geom exactly where MuJoCo has it (checked against MuJoCo's own vertices)."""

from __future__ import annotations

from urllib.parse import urlparse

import mujoco
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from geometry_msgs.msg import Point  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

import sim_bridge  # noqa: E402
from ezm_ros import conversions  # noqa: E402
from sim_bridge import markers  # noqa: E402
from sim_bridge.h1 import constants  # noqa: E402

STAMP = conversions.stamp_from_ns(0)


def _posed(env_id: str, seed: int = 0):
    """An env's model and data at a random robot pose (and objects moved), after mj_kinematics."""
    env = sim_bridge.make(env_id).unwrapped
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(env.model)
    data.qpos[:] = env.model.qpos0
    quat = rng.normal(size=4)
    data.qpos[:3] = [0.3, -0.2, 1.1]
    data.qpos[3:7] = quat / np.linalg.norm(quat)  # any orientation: the file frames must follow
    data.qpos[7:26] = rng.uniform(-0.5, 0.5, size=19)
    mujoco.mj_kinematics(env.model, data)
    return env, data


def _pose_matrix(marker: Marker) -> tuple[np.ndarray, np.ndarray]:
    q = marker.pose.orientation
    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, np.array([q.w, q.x, q.y, q.z]))
    p = marker.pose.position
    return rotation.reshape(3, 3), np.array([p.x, p.y, p.z])


def test_robot_mesh_markers_place_the_stl_files_where_mujoco_has_the_links():
    import trimesh

    env, data = _posed("h1-walk-v0")
    model = env.model
    robot = [m for m in markers.SceneMarkers(model, constants.ROOT_BODY).markers(data, STAMP, (markers.NS_ROBOT,))]
    assert len(robot) >= 20 and all(m.type == Marker.MESH_RESOURCE for m in robot)
    for marker in robot:
        assert marker.mesh_resource.startswith("file://") and marker.header.frame_id == "odom"
        stl = trimesh.load(urlparse(marker.mesh_resource).path, force="mesh").vertices
        rotation, position = _pose_matrix(marker)
        from_file = stl @ rotation.T + position
        geom = marker.id
        mesh = model.geom_dataid[geom]
        local = model.mesh_vert[model.mesh_vertadr[mesh]: model.mesh_vertadr[mesh] + model.mesh_vertnum[mesh]]
        from_mujoco = local @ data.geom_xmat[geom].reshape(3, 3).T + data.geom_xpos[geom]
        np.testing.assert_allclose(from_file.min(0), from_mujoco.min(0), atol=2e-6, err_msg=marker.mesh_resource)
        np.testing.assert_allclose(from_file.max(0), from_mujoco.max(0), atol=2e-6, err_msg=marker.mesh_resource)
    env.close()


def test_scene_and_moving_objects_are_drawn():
    env, data = _posed("h1-hurdle-v0")
    scene = markers.SceneMarkers(env.model, constants.ROOT_BODY).markers(data, STAMP, (markers.NS_SCENE,))
    assert sum(m.type == Marker.CUBE for m in scene) >= 10  # hurdles and walls
    env.close()

    env, data = _posed("h1-sit_hard-v0")
    factory = markers.SceneMarkers(env.model, constants.ROOT_BODY)
    before = factory.markers(data, STAMP, (markers.NS_OBJECTS,))
    assert before, "the free chair is a moving object"
    data.qpos[26:29] += [1.0, 0.5, 0.0]  # move the chair
    mujoco.mj_kinematics(env.model, data)
    after = factory.markers(data, STAMP, (markers.NS_OBJECTS,))
    moved = np.array([a.pose.position.x - b.pose.position.x for a, b in zip(after, before)])
    np.testing.assert_allclose(moved, 1.0, atol=1e-9)
    env.close()


def test_task_points_and_command_arrow():
    points = markers.task_points(STAMP, [Point(x=1.0, y=2.0, z=0.5)])
    assert points[0].ns == markers.NS_POINTS and points[0].pose.position.y == 2.0
    arrow = markers.command_arrow(STAMP, np.array([0.0, 0.0, 1.0]), np.pi / 2, 1.5)
    assert arrow.action == Marker.ADD and arrow.scale.x == 1.5
    assert conversions.yaw_of([arrow.pose.orientation.w, 0, 0, arrow.pose.orientation.z]) == pytest.approx(np.pi / 2)
    assert markers.command_arrow(STAMP, np.zeros(3), 0.0, None).action == Marker.DELETE  # stand: no arrow
