"""stand / walk / run rewards on hand-built states with answers worked out from HB's formulas."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

import sim_bridge
from sim_bridge.h1 import constants as c

STAND_HEIGHT, STAND_MARGIN = 1.65, 1.65 / 4


@pytest.fixture(scope="module")
def envs():
    made = {task: sim_bridge.make(f"h1-{task}-v0") for task in ("stand", "walk", "run")}
    for env in made.values():
        env.reset(seed=0)
    yield made
    for env in made.values():
        env.close()


def _set(env, qpos, qvel=None):
    env.unwrapped.set_state(qpos, np.zeros(env.unwrapped.model.nv) if qvel is None else qvel)
    return env.unwrapped


def _small_control_by_hand(forces):
    per_actuator = [1 - (f / 10) ** 2 if abs(f) < 10 else 0.0 for f in forces]
    return (4 + sum(per_actuator) / len(per_actuator)) / 5


def test_standing_at_the_keyframe(envs):
    env = _set(envs["stand"], c.KEYFRAME_QPOS)
    # Head height from a forward pass of the keyframe: above the 1.65 m bound, so standing = 1.
    head_z = env.data.site_xpos[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_SITE, "head")][2]
    assert head_z == pytest.approx(0.98 + 0.7, abs=0.02) and head_z > STAND_HEIGHT
    reward, parts = env.get_reward()
    assert parts["standing"] == 1.0 and parts["upright"] == 1.0 and parts["stand_reward"] == 1.0
    assert parts["dont_move"] == 1.0  # zero velocity
    # ctrl is still 0 (a target of 0 rad): e.g. the hip pitch servo pushes 200 * 0.4 = 80 N·m > 10.
    assert parts["small_control"] == pytest.approx(_small_control_by_hand(env.data.actuator_force), abs=1e-12)
    assert reward == pytest.approx(parts["small_control"] * parts["stand_reward"] * parts["dont_move"], abs=1e-15)
    assert not env.get_terminated()


def test_lying_on_the_floor(envs):
    qpos = c.KEYFRAME_QPOS.copy()
    qpos[2], qpos[3:7] = 0.12, [math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]
    for task in ("stand", "walk"):
        env = _set(envs[task], qpos)
        head_z = env.signals.head_height
        assert head_z < 0.4
        d = (STAND_HEIGHT - head_z) / STAND_MARGIN
        reward, parts = env.get_reward()
        assert parts["standing"] == pytest.approx(0.1 ** (d * d), rel=1e-9)  # gaussian with 0.1 at the margin
        assert parts["standing"] < 1e-3 and reward < 1e-3
        # Pitched 90 degrees: torso z axis horizontal, zz = 0 -> upright = 1 - 0.9 / 1.9.
        assert parts["upright"] == pytest.approx(1 - 0.9 / 1.9, abs=1e-9)
        assert env.get_terminated()


@pytest.mark.parametrize(("task", "vx", "expected_move"), [
    ("walk", 1.0, 1.0),
    ("walk", 0.5, (5 * 0.5 + 1) / 6),
    ("run", 1.0, (5 * (1 - 4 / 5) + 1) / 6),  # 1 m/s of 5: linear ramp 1 - (5 - 1) / 5
    ("walk", -1.0, 1 / 6),
])
def test_moving_forward(envs, task, vx, expected_move):
    env = envs[task].unwrapped
    qvel = np.zeros(env.model.nv)
    qvel[0] = vx  # the whole robot translating: its centre of mass moves at vx
    _set(envs[task], c.KEYFRAME_QPOS, qvel)
    np.testing.assert_allclose(env.signals.center_of_mass_velocity, [vx, 0, 0], atol=1e-12)
    reward, parts = env.get_reward()
    assert parts["move"] == pytest.approx(expected_move, abs=1e-12)
    assert reward == pytest.approx(parts["small_control"] * parts["stand_reward"] * parts["move"], abs=1e-15)
    assert set(parts) == {"stand_reward", "small_control", "move", "standing", "upright"}


def test_stand_penalises_horizontal_motion(envs):
    qvel = np.zeros(envs["stand"].unwrapped.model.nv)
    qvel[0], qvel[1] = 2.0, 0.0
    env = _set(envs["stand"], c.KEYFRAME_QPOS, qvel)
    _, parts = env.get_reward()
    assert parts["dont_move"] == pytest.approx((0.1 + 1.0) / 2, abs=1e-12)


def test_success_bars_and_info_keys(envs):
    assert {t: e.unwrapped.task.success_bar for t, e in envs.items()} == {"stand": 800, "walk": 700, "run": 700}
    _, _, _, _, info = envs["stand"].step(np.zeros(19, dtype=np.float32))
    assert set(info) == {"per_timestep_reward", "small_control", "stand_reward", "dont_move", "standing", "upright"}
