"""HumanoidEnv: stepping as HumanoidBench, input checks, divergence handling, state API, action map."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import sim_bridge
from sim_bridge.h1 import constants as c
from sim_bridge.h1.actuators import ActionMap


@pytest.fixture
def env():
    env = sim_bridge.make("h1-walk-v0")
    env.reset(seed=0)
    yield env
    env.close()


def _snapshot(env):
    data = env.unwrapped.data
    return data.qpos.copy(), data.qvel.copy(), data.time, data.ctrl.copy()


@pytest.mark.parametrize("action", [
    np.zeros(18, dtype=np.float32),
    np.zeros((1, 19), dtype=np.float32),
    np.full(19, np.nan, dtype=np.float32),
    np.array([np.inf] + [0.0] * 18),
    "abc",
    ["a"] * 19,
    None,
    np.zeros(19, dtype=np.complex64),
])
def test_bad_action_raises_and_leaves_state_unchanged(env, action):
    env.step(np.zeros(19, dtype=np.float32))
    before = _snapshot(env)
    with pytest.raises(ValueError):
        env.step(action)
    for was, now in zip(before, _snapshot(env)):
        np.testing.assert_array_equal(was, now)


def test_numeric_actions_of_any_real_dtype_are_accepted(env):
    for action in (np.zeros(19, dtype=np.float64), [0.0] * 19, np.zeros(19, dtype=np.int64)):
        obs, reward, *_ = env.step(action)
        assert np.isfinite(obs).all() and np.isfinite(reward)


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match="h1-walk-v0") as err:
        sim_bridge.make("h1-fly-v0")
    assert all(env_id in str(err.value) for env_id in sim_bridge.TASK_IDS)
    with pytest.raises(ValueError, match="known: sim_bridge, humanoid_bench"):
        sim_bridge.make("h1-walk-v0", backend="brax")


def test_blow_up_terminates_with_physics_error_and_finite_observation(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to MUJOCO_LOG.TXT in the working directory
    unwrapped = env.unwrapped
    qvel = np.zeros(unwrapped.model.nv)
    qvel[:] = 1e10
    unwrapped.set_state(unwrapped.data.qpos.copy(), qvel)
    last_obs = np.concatenate([unwrapped.data.qpos, unwrapped.data.qvel])
    obs, reward, terminated, truncated, info = env.step(np.zeros(19, dtype=np.float32))
    assert terminated and not truncated and reward == 0.0
    assert isinstance(info["physics_error"], str) and "mjWARN_BADQACC" in info["physics_error"]
    assert np.isfinite(obs).all()
    np.testing.assert_array_equal(obs, last_obs)  # the last finite observation, documented
    obs, _ = env.reset(seed=0)  # and the env recovers
    assert np.isfinite(obs).all() and np.isfinite(env.step(np.zeros(19, np.float32))[1])


def test_set_state_validates_and_normalises_quaternions(env):
    unwrapped = env.unwrapped
    qpos = c.KEYFRAME_QPOS.copy()
    qpos[3:7] = [1.1, 0.0, 0.0, 0.0]
    unwrapped.set_state(qpos, np.zeros(25))
    np.testing.assert_array_equal(unwrapped.data.qpos[3:7], [1.0, 0.0, 0.0, 0.0])  # as MuJoCo 3.1.6's forward
    np.testing.assert_array_equal(unwrapped.data.qacc_warmstart, unwrapped.data.qacc)
    with pytest.raises(ValueError):
        unwrapped.set_state(qpos[:-1], np.zeros(25))
    with pytest.raises(ValueError):
        unwrapped.set_state(qpos, np.full(25, np.nan))


def test_step_is_humanoidbench_frame_skip_without_a_final_forward(env):
    unwrapped = env.unwrapped
    model, data = unwrapped.model, unwrapped.data
    action = np.random.default_rng(0).uniform(-1, 1, 19).astype(np.float32)
    # The same step by hand, on a copy of the data.
    reference = mujoco.MjData(model)
    mujoco.mj_copyData(reference, model, data)
    low = model.actuator_ctrlrange[:, 0].astype(np.float32)
    high = model.actuator_ctrlrange[:, 1].astype(np.float32)
    reference.ctrl[:] = (action + 1) / 2 * (high - low) + low
    mujoco.mj_step(model, reference, nstep=10)
    mujoco.mj_rnePostConstraint(model, reference)
    time_before = data.time
    obs, *_ = env.step(action)
    assert data.time == pytest.approx(time_before + 10 * 0.002)
    np.testing.assert_array_equal(obs, np.concatenate([reference.qpos, reference.qvel]))
    np.testing.assert_array_equal(data.site_xpos, reference.site_xpos)
    np.testing.assert_array_equal(data.sensordata, reference.sensordata)
    # Kinematics are stale: from the start of the last substep, not from the final qpos.
    fresh = mujoco.MjData(model)
    mujoco.mj_copyData(fresh, model, data)
    mujoco.mj_forward(model, fresh)
    assert not np.allclose(fresh.site_xpos, data.site_xpos, atol=1e-9, rtol=0)


def test_time_limit_is_1000_steps():
    env = sim_bridge.make("h1-stand-v0", collision="primitive")
    assert env.spec.max_episode_steps == 1000
    env.close()


def test_action_map_matches_humanoidbench_and_inverts(env):
    model = env.unwrapped.model
    action_map = env.unwrapped.action_map
    assert isinstance(action_map, ActionMap) and action_map.low.dtype == np.float32
    np.testing.assert_array_equal(action_map.low, model.actuator_ctrlrange[:, 0].astype(np.float32))
    action = np.linspace(-1, 1, 19, dtype=np.float32)
    ctrl = action_map.to_ctrl(action)
    assert ctrl.dtype == np.float32
    np.testing.assert_allclose(ctrl[[0, -1]], [action_map.low[0], action_map.high[-1]], rtol=1e-6)
    np.testing.assert_allclose(action_map.to_action(ctrl), action, atol=1e-6)
    np.testing.assert_allclose(action_map.to_ctrl(np.zeros(19)), (action_map.low + action_map.high) / 2, atol=1e-6)


def test_gymnasium_registration_and_state_api():
    import gymnasium

    env = gymnasium.make("h1-walk-v0", collision="primitive")
    for name in ("model", "data", "set_state", "get_reward", "get_terminated", "task_state", "task", "signals"):
        assert hasattr(env.unwrapped, name)
    assert env.unwrapped.collision == "primitive"
    env.close()


def test_humanoid_bench_backend_is_a_clear_import_error_when_missing():
    try:
        import humanoid_bench  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="HumanoidBench"):
            sim_bridge.make("h1-walk-v0", backend="humanoid_bench")
    else:
        pytest.skip("humanoid_bench is installed here; test_backend_parity.py compares the two")


def test_signals_read_mjdata_as_it_stands(env):
    env.step(np.random.default_rng(1).uniform(-1, 1, 19).astype(np.float32))
    unwrapped = env.unwrapped
    model, data, signals = unwrapped.model, unwrapped.data, unwrapped.signals
    assert (signals.robot_nq, signals.robot_nv, signals.robot_nu) == (26, 25, 19)

    def site(name):
        return data.site_xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)]

    def body(name):
        return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)

    assert signals.head_height == site("head")[2]
    np.testing.assert_array_equal(signals.head_position, site("head"))
    np.testing.assert_array_equal(signals.imu_position, site("imu"))
    np.testing.assert_array_equal(signals.left_hand_position, site("left_hand"))
    np.testing.assert_array_equal(signals.right_foot_position, site("right_foot"))
    assert signals.left_foot_height == site("left_foot")[2]
    assert signals.torso_upright == data.xmat[body("torso_link"), 8]
    assert signals.pelvis_upright == data.xmat[body("pelvis"), 8]
    np.testing.assert_array_equal(signals.pelvis_position, data.xpos[body("pelvis")])
    np.testing.assert_array_equal(signals.pelvis_quaternion, data.xquat[body("pelvis")])
    np.testing.assert_array_equal(signals.center_of_mass_velocity, data.sensordata[2:5])
    np.testing.assert_array_equal(signals.actuator_forces, data.actuator_force)
    np.testing.assert_array_equal(signals.root_qpos, data.qpos[:7])
    np.testing.assert_array_equal(signals.root_qvel, data.qvel[:6])
    copy = signals.head_position
    copy[:] = 0.0  # a copy: MjData is untouched
    assert signals.head_height != 0.0


def test_sim_bridge_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, sim_bridge, sim_bridge.env, sim_bridge.multitask, sim_bridge.cli, sim_bridge.rewards, "
            "sim_bridge.humanoid_bench_backend\n"
            "for t in sim_bridge.available_task_ids(): sim_bridge.registry.make_task(t)\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_divergence_check_without_autoreset_reports_non_finite_state():
    from sim_bridge import divergence

    env = sim_bridge.make("h1-stand-v0", collision="primitive")
    env.reset(seed=0)
    data = env.unwrapped.data
    before = divergence.warning_counts(data)
    assert divergence.physics_error(data, before) is None
    data.qvel[3] = np.nan  # as a step with MuJoCo's auto-reset disabled could leave it
    assert "non-finite qvel" in divergence.physics_error(data, before, check_finite=True)
    assert divergence.physics_error(data, before, check_finite=False) is None  # auto-reset would catch it
    env.close()
