"""The MjSpec-built H1 carries HumanoidBench's values (humanoidbench.md, HB h1_pos.xml)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim_bridge import world
from sim_bridge.h1 import constants as c
from sim_bridge.h1.model import build_h1_model

# Per-actuator (kp, kv, force limit), written out from the reference table (not from constants.py).
EXPECTED_SERVOS = {
    "left_hip_yaw": (200, 5, 200), "left_hip_roll": (200, 5, 200), "left_hip_pitch": (200, 5, 200),
    "left_knee": (300, 6, 300), "left_ankle": (40, 2, 40),
    "right_hip_yaw": (200, 5, 200), "right_hip_roll": (200, 5, 200), "right_hip_pitch": (200, 5, 200),
    "right_knee": (300, 6, 300), "right_ankle": (40, 2, 40),
    "torso": (300, 6, 200),
    "left_shoulder_pitch": (100, 2, 40), "left_shoulder_roll": (100, 2, 40),
    "left_shoulder_yaw": (100, 2, 18), "left_elbow": (100, 2, 18),
    "right_shoulder_pitch": (100, 2, 40), "right_shoulder_roll": (100, 2, 40),
    "right_shoulder_yaw": (100, 2, 18), "right_elbow": (100, 2, 18),
}


@pytest.fixture(scope="module", params=c.COLLISION_VARIANTS)
def model(request) -> mujoco.MjModel:
    return build_h1_model(request.param)


def _id(model, obj, name):
    idx = mujoco.mj_name2id(model, obj, name)
    assert idx >= 0, f"missing {obj} {name}"
    return idx


def test_sizes_and_joint_order(model):
    assert (model.nq, model.nv, model.nu) == (26, 25, 19)
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and model.joint(0).name == "free_base"
    assert [model.joint(i).name for i in range(1, model.njnt)] == list(EXPECTED_SERVOS)
    assert [model.actuator(i).name for i in range(model.nu)] == list(EXPECTED_SERVOS)


def test_position_servos(model):
    for i, (name, (kp, kv, force)) in enumerate(EXPECTED_SERVOS.items()):
        assert model.actuator_trnid[i, 0] == _id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        assert model.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED
        assert model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_AFFINE
        np.testing.assert_array_equal(model.actuator_gainprm[i, :3], [kp, 0, 0])
        np.testing.assert_array_equal(model.actuator_biasprm[i, :3], [0, -kp, -kv])
        assert model.actuator_forcelimited[i] and model.actuator_ctrllimited[i]
        np.testing.assert_array_equal(model.actuator_forcerange[i], [-force, force])
        joint = model.actuator_trnid[i, 0]
        np.testing.assert_array_equal(model.actuator_ctrlrange[i], model.jnt_range[joint])
        assert model.actuator_gear[i, 0] == 1.0


def test_joint_properties_and_hip_pitch_range(model):
    hinge_dofs = slice(6, 25)
    np.testing.assert_array_equal(model.dof_damping[hinge_dofs], 1.0)
    np.testing.assert_array_equal(model.dof_armature[hinge_dofs], 0.1)
    np.testing.assert_array_equal(model.dof_frictionloss[hinge_dofs], 0.0)
    for name in ("left_hip_pitch", "right_hip_pitch"):
        np.testing.assert_array_equal(model.jnt_range[_id(model, mujoco.mjtObj.mjOBJ_JOINT, name)], [-3.14, 2.53])
    np.testing.assert_array_equal(model.jnt_range[_id(model, mujoco.mjtObj.mjOBJ_JOINT, "left_knee")], [-0.26, 2.05])


def test_ankle_inertia_and_total_mass(model):
    for name in ("left_ankle_link", "right_ankle_link"):
        body = _id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        assert model.body_mass[body] == pytest.approx(0.552448)
        np.testing.assert_allclose(model.body_ipos[body], [0.048568, 0, -0.045609])
        np.testing.assert_allclose(np.sort(model.body_inertia[body]), np.sort([0.00362, 0.00355701, 0.000149987]))
    assert model.body_mass.sum() == pytest.approx(51.65, abs=0.05)


def test_sites_bodies_and_sensors(model):
    site = mujoco.mjtObj.mjOBJ_SITE
    expected_sites = {
        "com": ("pelvis", (0, 0, 0)), "left_foot": ("left_ankle_link", (0, 0, -0.05)),
        "right_foot": ("right_ankle_link", (0, 0, -0.05)), "head": ("torso_link", (0, 0, 0.7)),
        "imu": ("torso_link", (-0.04452, -0.01891, 0.27756)),
        "left_hand": ("left_elbow_link", (0.31, 0, -0.01)), "right_hand": ("right_elbow_link", (0.31, 0, -0.01)),
    }
    for name, (body, pos) in expected_sites.items():
        idx = _id(model, site, name)
        assert model.body(model.site_bodyid[idx]).name == body
        np.testing.assert_allclose(model.site_pos[idx], pos)
    for hand, elbow in (("left_hand", "left_elbow_link"), ("right_hand", "right_elbow_link")):
        body = _id(model, mujoco.mjtObj.mjOBJ_BODY, hand)
        assert model.body(model.body_parentid[body]).name == elbow and model.body_mass[body] == 0
    sensors = [(model.sensor(i).name, model.sensor_type[i], model.sensor_dim[i]) for i in range(model.nsensor)]
    assert sensors == [
        ("left_foot_sensor", mujoco.mjtSensor.mjSENS_TOUCH, 1),
        ("right_foot_sensor", mujoco.mjtSensor.mjSENS_TOUCH, 1),
        ("pelvis_subtreelinvel", mujoco.mjtSensor.mjSENS_SUBTREELINVEL, 3),
        ("left_hand_subtreelinvel", mujoco.mjtSensor.mjSENS_SUBTREELINVEL, 3),
        ("right_hand_subtreelinvel", mujoco.mjtSensor.mjSENS_SUBTREELINVEL, 3),
        ("body_velocimeter", mujoco.mjtSensor.mjSENS_VELOCIMETER, 3),
    ]


def test_options_match_humanoidbench(model):
    opt = model.opt
    assert opt.timestep == 0.002
    assert opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
    assert (opt.iterations, opt.ls_iterations) == (100, 50)
    assert opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert not opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP  # eulerdamp enabled
    assert opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
    assert opt.tolerance == 1e-8 and opt.ls_tolerance == 0.01  # MuJoCo defaults, as in HB


def test_floor_is_an_infinite_plane_with_geom_id_0(model):
    assert world.floor_geom_id(model) == 0
    assert model.geom_type[0] == mujoco.mjtGeom.mjGEOM_PLANE
    assert model.geom_bodyid[0] == 0 and model.geom_contype[0] == 1 and model.geom_conaffinity[0] == 1
    np.testing.assert_array_equal(model.geom_friction[0], [1, 0.005, 0.0001])
    assert model.nlight == 1 and model.ntex == 2  # HB's directional light; skybox and checker textures


def test_home_keyframe_and_cameras(model):
    key = _id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    np.testing.assert_array_equal(model.key_qpos[key], c.KEYFRAME_QPOS)
    for camera in ("cam_default", "cam_maze", "cam_hurdle"):
        idx = _id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        assert model.cam_mode[idx] == mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM


def test_collision_variants():
    mesh = build_h1_model("humanoidbench")
    primitive = build_h1_model("primitive")

    def colliding(model):
        return [i for i in range(model.ngeom) if model.geom_contype[i] or model.geom_conaffinity[i]]

    mesh_types = {int(mesh.geom_type[i]) for i in colliding(mesh)}
    assert mesh_types == {mujoco.mjtGeom.mjGEOM_PLANE, mujoco.mjtGeom.mjGEOM_MESH, mujoco.mjtGeom.mjGEOM_CYLINDER}
    # 18 link meshes + 2 hip-yaw cylinders + the floor; HB has no contact excludes.
    assert len(colliding(mesh)) == 21 and mesh.nexclude == 0
    assert mujoco.mjtGeom.mjGEOM_MESH not in {int(primitive.geom_type[i]) for i in colliding(primitive)}
    assert primitive.nexclude == 2  # Menagerie's torso/shoulder_roll excludes
    with pytest.raises(ValueError, match="known: humanoidbench, primitive"):
        build_h1_model("convex")
