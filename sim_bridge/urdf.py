"""The robot of a compiled MuJoCo model as URDF, for `/robot_description` (rviz's RobotModel display, a ROS
install's robot_state_publisher).

One URDF link per body of the robot's subtree, named as the body (the TF frames the visualization node
publishes); one joint per body: `revolute` for a hinge (named as the MuJoCo joint, which is the JointState name,
with its axis and range; effort from the joint's actuator force range), `fixed` for a welded body. A joint's
origin is the body's pose in its parent at zero joint angles (MuJoCo's body_pos/body_quat), which is URDF's
convention as long as each hinge's axis passes through its body's origin (checked). Visuals are the visible
geoms: meshes by `file://` URI of the file MuJoCo loaded (placed as sim_bridge.markers places them: MuJoCo
re-centres a mesh on its inertia when compiling), boxes, spheres, and cylinders (a capsule is drawn as a
cylinder over its full length). Inertials are the bodies' masses and principal inertias.

The model has no joint velocity limits; URDF requires the attribute, so it is 0 ("not given") here.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from sim_bridge.markers import VISIBLE_GROUPS, mesh_file

#: A hinge whose axis is further than this from its body's origin (m) cannot be a URDF joint at that origin.
AXIS_OFFSET_TOLERANCE_M = 1e-9


def _rotation(quat_wxyz: np.ndarray) -> np.ndarray:
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat_wxyz, dtype=np.float64))
    return matrix.reshape(3, 3)


def rpy(rotation: np.ndarray) -> tuple[float, float, float]:
    """URDF's fixed-axis roll, pitch, yaw of a rotation matrix (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    pitch = math.asin(max(-1.0, min(1.0, -float(rotation[2, 0]))))
    if abs(math.cos(pitch)) > 1e-9:
        roll = math.atan2(float(rotation[2, 1]), float(rotation[2, 2]))
        yaw = math.atan2(float(rotation[1, 0]), float(rotation[0, 0]))
    else:  # gimbal lock: the yaw carries the whole turn about z
        roll, yaw = 0.0, math.atan2(-float(rotation[0, 1]), float(rotation[1, 1]))
    return roll, pitch, yaw


def _origin(parent: ET.Element, position: np.ndarray, rotation: np.ndarray) -> None:
    ET.SubElement(parent, "origin", xyz=" ".join(f"{v:.9g}" for v in position),
                  rpy=" ".join(f"{v:.9g}" for v in rpy(rotation)))


def robot_urdf(model: mujoco.MjModel, root_body: str, robot_name: str) -> str:
    """The URDF of the subtree of `root_body` (ValueError for what URDF cannot express)."""
    root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, root_body)
    if root < 0:
        raise ValueError(f"no body {root_body!r}")
    bodies = [b for b in range(model.nbody) if int(model.body_rootid[b]) == int(model.body_rootid[root])
              and _descends(model, b, root)]
    robot = ET.Element("robot", name=robot_name)
    for body in bodies:
        _link(model, robot, body)
        if body != root:
            _joint(model, robot, body)
    ET.indent(robot, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def _descends(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body != ancestor and body != 0:
        body = int(model.body_parentid[body])
    return body == ancestor


def _link(model: mujoco.MjModel, robot: ET.Element, body: int) -> None:
    link = ET.SubElement(robot, "link", name=model.body(body).name)
    inertial = ET.SubElement(link, "inertial")
    _origin(inertial, model.body_ipos[body], _rotation(model.body_iquat[body]))
    ET.SubElement(inertial, "mass", value=f"{float(model.body_mass[body]):.9g}")
    ixx, iyy, izz = (f"{float(v):.9g}" for v in model.body_inertia[body])
    ET.SubElement(inertial, "inertia", ixx=ixx, iyy=iyy, izz=izz, ixy="0", ixz="0", iyz="0")
    for geom in np.flatnonzero(model.geom_bodyid == body):
        _visual(model, link, int(geom))


def _visual(model: mujoco.MjModel, link: ET.Element, geom: int) -> None:
    if int(model.geom_group[geom]) not in VISIBLE_GROUPS:
        return
    matid = int(model.geom_matid[geom])
    rgba = model.mat_rgba[matid] if matid >= 0 else model.geom_rgba[geom]
    if rgba[3] <= 0.0:
        return
    kind, size = int(model.geom_type[geom]), model.geom_size[geom]
    position, rotation = model.geom_pos[geom].copy(), _rotation(model.geom_quat[geom])
    g = mujoco.mjtGeom
    if kind == g.mjGEOM_MESH:
        mesh = int(model.geom_dataid[geom])
        path = mesh_file(model, mesh)
        if path is None:
            return  # a mesh built in code has no file to point at
        rotation = rotation @ _rotation(model.mesh_quat[mesh]).T  # the file's frame (sim_bridge.markers)
        position = position - rotation @ model.mesh_pos[mesh]
        shape = ("mesh", {"filename": f"file://{path}"})
    elif kind == g.mjGEOM_BOX:
        shape = ("box", {"size": " ".join(f"{2 * float(s):.9g}" for s in size)})
    elif kind == g.mjGEOM_SPHERE:
        shape = ("sphere", {"radius": f"{float(size[0]):.9g}"})
    elif kind in (g.mjGEOM_CYLINDER, g.mjGEOM_CAPSULE):
        length = 2 * float(size[1]) + (2 * float(size[0]) if kind == g.mjGEOM_CAPSULE else 0.0)
        shape = ("cylinder", {"radius": f"{float(size[0]):.9g}", "length": f"{length:.9g}"})
    else:
        return  # planes, ellipsoids, height fields: nothing URDF draws alike
    visual = ET.SubElement(link, "visual", name=model.geom(geom).name or f"geom_{geom}")
    _origin(visual, position, rotation)
    geometry = ET.SubElement(visual, "geometry")
    ET.SubElement(geometry, shape[0], **shape[1])
    material = ET.SubElement(visual, "material", name=f"rgba_{geom}")
    ET.SubElement(material, "color", rgba=" ".join(f"{float(v):.4g}" for v in rgba))


def _joint(model: mujoco.MjModel, robot: ET.Element, body: int) -> None:
    parent = model.body(int(model.body_parentid[body])).name
    child = model.body(body).name
    joints = list(range(int(model.body_jntadr[body]), int(model.body_jntadr[body]) + int(model.body_jntnum[body])))
    if len(joints) > 1 or any(int(model.jnt_type[j]) != mujoco.mjtJoint.mjJNT_HINGE for j in joints):
        raise ValueError(f"body {child!r}: URDF takes one hinge per link, it has joint types "
                         f"{[int(model.jnt_type[j]) for j in joints]}")
    if not joints:
        element = ET.SubElement(robot, "joint", name=f"{child}_fixed", type="fixed")
    else:
        j = joints[0]
        if np.linalg.norm(model.jnt_pos[j]) > AXIS_OFFSET_TOLERANCE_M:
            raise ValueError(f"joint {model.joint(j).name!r}: its axis does not pass through its body's origin")
        element = ET.SubElement(robot, "joint", name=model.joint(j).name, type="revolute")
    ET.SubElement(element, "parent", link=parent)
    ET.SubElement(element, "child", link=child)
    _origin(element, model.body_pos[body], _rotation(model.body_quat[body]))
    if joints:
        j = joints[0]
        ET.SubElement(element, "axis", xyz=" ".join(f"{float(v):.9g}" for v in model.jnt_axis[j]))
        low, high = (float(v) for v in model.jnt_range[j])
        ET.SubElement(element, "limit", lower=f"{low:.9g}", upper=f"{high:.9g}",
                      effort=f"{_effort(model, j):.9g}", velocity="0")


def _effort(model: mujoco.MjModel, joint: int) -> float:
    """The largest force of the actuator driving `joint` (0 without one, or with an unlimited one)."""
    for actuator in range(model.nu):
        if (int(model.actuator_trntype[actuator]) == mujoco.mjtTrn.mjTRN_JOINT
                and int(model.actuator_trnid[actuator, 0]) == joint and model.actuator_forcelimited[actuator]):
            return float(np.max(np.abs(model.actuator_forcerange[actuator])))
    return 0.0


def matrix_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """The rotation matrix of URDF's fixed-axis roll, pitch, yaw (`rpy`'s inverse)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return (np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
            @ np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
            @ np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]]))


def forward_kinematics(urdf: str, angles: dict[str, float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each link's (position, rotation matrix) in the root link's frame at joint `angles` (by joint name), read
    from the URDF text alone: what robot_state_publisher computes, to check a URDF against MuJoCo and TF."""
    robot = ET.fromstring(urdf)
    poses = {robot.find("link").get("name"): (np.zeros(3), np.eye(3))}
    pending = robot.findall("joint")
    while pending:
        ready = [j for j in pending if j.find("parent").get("link") in poses]
        if not ready:
            raise ValueError(f"joints {[j.get('name') for j in pending]} do not hang from the root link")
        for joint in ready:
            origin = joint.find("origin")
            offset = np.array([float(v) for v in origin.get("xyz").split()])
            rotation = matrix_from_rpy(*(float(v) for v in origin.get("rpy").split()))
            if joint.get("type") == "revolute":
                axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
                rotation = rotation @ _axis_rotation(axis / np.linalg.norm(axis), angles[joint.get("name")])
            position, frame = poses[joint.find("parent").get("link")]
            poses[joint.find("child").get("link")] = (position + frame @ offset, frame @ rotation)
        pending = [j for j in pending if j not in ready]
    return poses


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: the rotation by `angle` about the unit `axis`."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * k @ k
