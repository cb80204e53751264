"""`web_view_node`: the rviz scene in a browser, for installs without rviz (viser, served on localhost).

It subscribes to the MarkerArray that `visualization_node` publishes for rviz (`ezm/markers`) and
mirrors every marker into a viser scene, so rviz and the browser show exactly the same thing: the H1's
link meshes (loaded from the markers' `file://` STL URIs), the task's objects and the command arrow.
Open http://127.0.0.1:8080 (parameters `host`, `port`). Serving only on localhost is the default: the
page has no authentication.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final
from urllib.parse import unquote, urlparse

import numpy as np
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from ezm_ros import qos, topics
from ezm_ros.node_runtime import StartupError, declare, run_node

NODE_NAME: Final = "ezm_web_view"
#: The browser's ground grid (m): HumanoidBench scenes reach 70 m along +x (hurdles).
GRID_SIZE_M: Final = 80.0
#: Where a new browser tab's camera starts (m, odom): behind and beside the robot's start, looking at it.
CAMERA_POSITION_M: Final = (-1.0, -2.6, 1.5)
CAMERA_LOOK_AT_M: Final = (0.5, 0.0, 0.8)
#: Shaft radius of the command arrow relative to its head radius.
ARROW_SHAFT_FRACTION: Final = 0.45


@dataclasses.dataclass(frozen=True)
class WebViewParams:
    host: str
    port: int


def _rgb(marker: Marker) -> tuple[int, int, int]:
    return tuple(int(round(255 * min(max(c, 0.0), 1.0))) for c in (marker.color.r, marker.color.g, marker.color.b))


def _pose(marker: Marker) -> tuple[np.ndarray, np.ndarray]:
    p, q = marker.pose.position, marker.pose.orientation
    return np.array([q.w, q.x, q.y, q.z]), np.array([p.x, p.y, p.z])


@functools.lru_cache(maxsize=64)
def _load_mesh(uri: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of a `file://` mesh (STL, OBJ, ... whatever trimesh reads)."""
    import trimesh  # viser's own dependency

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"only file:// mesh URIs are supported here, got {uri!r}")
    mesh = trimesh.load(unquote(parsed.path), force="mesh")
    return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.uint32)


@functools.lru_cache(maxsize=1)
def _arrow_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A unit arrow along +x (length 1, head diameter 1): rviz's ARROW, scaled by the marker's scale."""
    import trimesh

    shaft = trimesh.creation.cylinder(radius=0.5 * ARROW_SHAFT_FRACTION, height=0.75)
    shaft.apply_translation([0.0, 0.0, 0.375])
    head = trimesh.creation.cone(radius=0.5, height=0.25)
    head.apply_translation([0.0, 0.0, 0.75])
    arrow = trimesh.util.concatenate([shaft, head])
    arrow.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0.0, 1.0, 0.0]))  # z -> x
    return np.asarray(arrow.vertices, dtype=np.float32), np.asarray(arrow.faces, dtype=np.uint32)


class WebViewNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = WebViewParams(
            host=declare(self, "host", "127.0.0.1", "Address the page is served on (localhost only by default).",
                         read_only=True),
            port=declare(self, "port", 8080, "TCP port of the page.", read_only=True, bounds=(1, 65535)),
        )
        try:
            import viser
        except ImportError as err:
            raise StartupError(f"the browser view needs viser (pip install viser; the `robot` extra has it): "
                               f"{err}") from err
        self._server = viser.ViserServer(host=self.p.host, port=self.p.port, label="EZ-M H1", verbose=False)
        self._server.scene.set_up_direction("+z")  # REP-103: z up
        self._server.initial_camera.position = CAMERA_POSITION_M
        self._server.initial_camera.look_at = CAMERA_LOOK_AT_M
        self._server.scene.add_grid("/ground", width=GRID_SIZE_M, height=GRID_SIZE_M, cell_size=1.0,
                                    section_size=5.0)
        self._handles: dict[str, tuple[object, tuple]] = {}  # name -> (viser handle, what it was built from)
        self.create_subscription(MarkerArray, topics.MARKERS, self._on_markers, qos.VISUALIZATION)
        self.get_logger().info(f"browser view at http://{self.p.host}:{self.p.port}")

    def _on_markers(self, msg: MarkerArray) -> None:
        for marker in msg.markers:
            name = f"/{marker.ns or 'default'}/{marker.id}"
            if marker.action == Marker.DELETEALL:
                for handle, _ in self._handles.values():
                    handle.remove()
                self._handles.clear()
            elif marker.action == Marker.DELETE:
                entry = self._handles.pop(name, None)
                if entry is not None:
                    entry[0].remove()
            else:
                self._show(name, marker)

    def _show(self, name: str, marker: Marker) -> None:
        wxyz, position = _pose(marker)
        scale = (marker.scale.x, marker.scale.y, marker.scale.z)
        key = (marker.type, marker.mesh_resource, scale, _rgb(marker), len(marker.points))
        entry = self._handles.get(name)
        if entry is None or entry[1] != key:
            if entry is not None:
                entry[0].remove()
            handle = self._create(name, marker, scale)
            if handle is None:
                return
            self._handles[name] = (handle, key)
        else:
            handle = entry[0]
        handle.wxyz = wxyz
        handle.position = position

    def _create(self, name: str, marker: Marker, scale: tuple[float, float, float]):
        scene, color = self._server.scene, _rgb(marker)
        opacity = float(marker.color.a) if marker.color.a < 1.0 else None
        if marker.type == Marker.MESH_RESOURCE:
            try:
                vertices, faces = _load_mesh(marker.mesh_resource)
            except (OSError, ValueError) as err:
                self.get_logger().warning(f"cannot load {marker.mesh_resource}: {err}", once=True)
                return None
            return scene.add_mesh_simple(name, vertices, faces, color=color, opacity=opacity, scale=scale)
        if marker.type == Marker.CUBE:
            return scene.add_box(name, color=color, dimensions=scale, opacity=opacity)
        if marker.type == Marker.SPHERE:
            return scene.add_icosphere(name, radius=0.5, color=color, scale=scale, opacity=opacity)
        if marker.type == Marker.CYLINDER:
            return scene.add_cylinder(name, radius=0.5, height=1.0, color=color, scale=scale, opacity=opacity)
        if marker.type == Marker.ARROW:
            vertices, faces = _arrow_mesh()
            return scene.add_mesh_simple(name, vertices, faces, color=color, opacity=opacity,
                                         scale=(scale[0], scale[2], scale[2]))
        if marker.type == Marker.TRIANGLE_LIST and marker.points:
            vertices = np.array([[p.x, p.y, p.z] for p in marker.points], dtype=np.float32)
            faces = np.arange(len(vertices), dtype=np.uint32).reshape(-1, 3)
            return scene.add_mesh_simple(name, vertices, faces, color=color, opacity=opacity, side="double")
        self.get_logger().warning(f"marker type {marker.type} is not drawn in the browser view", once=True)
        return None

    def close(self) -> None:
        self._server.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(WebViewNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
