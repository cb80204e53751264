"""The eleven HumanoidBench scene tasks on real MuJoCo: layouts, resets, rewards and terminations.

Expected numbers come from HumanoidBench 791405f as summarised in /work/shared/reference/humanoidbench.md
(sizes, layouts, formulas) and are computed here by hand, not through `sim_bridge.rewards`: a gaussian
`tolerance` with margin m and value_at_margin 0.1 is 0.1 ** ((distance / m) ** 2) outside its bounds.
Hand-built states go through `set_state` (a fresh forward pass), so positions, contacts and sensors are
consistent with qpos there; stepped states read MuJoCo's stale kinematics, as HumanoidBench does.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from sim_bridge.env import HumanoidEnv

SCENE_TASKS = ("hurdle", "crawl", "stair", "slide", "sit_simple", "sit_hard",
               "balance_simple", "balance_hard", "pole", "maze", "reach")
ROBOT_NQ, ROBOT_NV, NU = 26, 25, 19

#: (nq, nv, observation size) per task, from the reference's observation table.
LAYOUT = {
    "hurdle": (26, 25, 51), "crawl": (26, 25, 51), "stair": (26, 25, 51), "slide": (26, 25, 51),
    "sit_simple": (26, 25, 51), "sit_hard": (33, 31, 64), "balance_simple": (33, 31, 64),
    "balance_hard": (40, 37, 77), "pole": (26, 25, 51), "maze": (26, 25, 51), "reach": (26, 25, 57),
}
#: Free joints of task objects and their qpos/qvel addresses: robot first, then HumanoidBench's order.
OBJECT_FREE_JOINTS = {
    "sit_hard": {"free_chair": (26, 25)},
    "balance_simple": {"free_stand_board": (26, 25)},
    "balance_hard": {"free_stand_board": (26, 25), "free_rolling_pivot": (33, 31)},
}
#: Geoms HumanoidBench's rewards and terminations find by name.
NAMED_GEOMS = {
    "hurdle": ("left_barrier_collision", "right_barrier_collision", "behind_barrier_collision"),
    "balance_simple": ("stand_board_collision", "pivot_sphere_collision"),
    "balance_hard": ("stand_board_collision", "pivot_sphere_collision"),
    "pole": ("pole_r1_c1", "pole_r2_c2", "pole_r41_c4"),
    "maze": ("block_collision_00", "block_collision_66", "intersection_a"),
}
INFO_KEYS = {
    "hurdle": {"stand_reward", "small_control", "move", "standing", "upright", "wall_collision_discount"},
    "crawl": {"crawling", "crawling_head", "small_control", "move", "in_tunnel"},
    "stair": {"stand_reward", "small_control", "move", "standing", "upright"},
    "sit_simple": {"small_control", "sit_reward", "dont_move", "sitting", "upright", "sitting_posture"},
    "balance_simple": {"small_control", "stand_reward", "dont_move", "standing", "upright"},
    "pole": {"stand_reward", "small_control", "move", "standing", "upright", "collision_discount"},
    "maze": {"stand_reward", "small_control", "move", "wall_collision_discount", "stage_convert_reward",
             "checkpoint_proximity_reward", "success_subtasks"},
    "reach": {"hand_dist", "healthy_reward", "motion_penalty", "reward_close", "reward_success"},
}
INFO_KEYS["slide"] = INFO_KEYS["stair"]
INFO_KEYS["sit_hard"] = INFO_KEYS["sit_simple"]
INFO_KEYS["balance_hard"] = INFO_KEYS["balance_simple"]


@functools.cache
def _env(task: str) -> HumanoidEnv:
    """One env per task for the whole module (hurdle compiles ~500 geoms); tests reset before use."""
    return HumanoidEnv(task=task)


def _gaussian(distance: float, margin: float) -> float:
    """dm_control's gaussian tolerance outside its bounds, value 0.1 at the margin."""
    return 0.1 ** ((distance / margin) ** 2)


def _place(env: HumanoidEnv, root=None, quat=None, qpos_at: dict[int, float] | None = None) -> None:
    """Set the noiseless start pose with the robot root and any qpos entries (index: value) changed."""
    qpos = env.task.keyframe_qpos(env.model, env.robot.keyframe_qpos).copy()
    if root is not None:
        qpos[0:3] = root
    if quat is not None:
        qpos[3:7] = quat
    for index, value in (qpos_at or {}).items():
        qpos[index] = value
    env.set_state(qpos, np.zeros(env.model.nv))


def _site(env: HumanoidEnv, name: str) -> np.ndarray:
    return env.data.site_xpos[env.model.site(name).id].copy()


def _touching(env: HumanoidEnv, geom_name: str) -> bool:
    geom = env.model.geom(geom_name).id
    return bool((env.data.contact.geom[: env.data.ncon] == geom).any())


# --- build and layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", SCENE_TASKS)
def test_scene_builds_with_humanoidbench_layout(task):
    env = _env(task)
    nq, nv, obs_size = LAYOUT[task]
    assert (env.model.nq, env.model.nv, env.model.nu) == (nq, nv, NU)
    assert env.observation_space.shape == (obs_size,)
    assert env.model.joint("free_base").qposadr[0] == 0  # the robot comes first
    for joint, (qposadr, dofadr) in OBJECT_FREE_JOINTS.get(task, {}).items():
        assert (env.model.joint(joint).qposadr[0], env.model.joint(joint).dofadr[0]) == (qposadr, dofadr)
    assert env.model.geom("floor").id == 0  # HumanoidBench hard-codes the floor as geom 0
    for name in NAMED_GEOMS.get(task, ()):
        env.model.geom(name)  # raises KeyError if missing
    obs, _ = env.reset(seed=0)
    assert obs.shape == (obs_size,) and obs.dtype == np.float64
    if task != "reach":
        np.testing.assert_array_equal(obs, np.concatenate([env.data.qpos, env.data.qvel]))


def test_object_masses_come_from_visual_geoms():
    """HB's collision geoms are massless, so the objects weigh what their visual geoms do at 1000 kg/m³."""
    chair = _env("sit_hard").model.body("chair").mass[0]
    board = _env("balance_hard").model.body("stand_board").mass[0]
    sphere = _env("balance_hard").model.body("rolling_pivot").mass[0]
    legs, seat = 4 * 0.04 * 0.04 * 0.45, 0.42 * 0.42 * 0.05
    back = 2 * 0.04 * 0.04 * 0.425 + 0.04 * 0.42 * 0.16
    assert chair == pytest.approx(1000 * (legs + seat + back))  # 15.75 kg
    assert board == pytest.approx(1000 * 0.3 * 1.1 * 0.06)  # 19.8 kg
    assert sphere == pytest.approx(1000 * 4 / 3 * math.pi * 0.17 ** 3)  # 20.6 kg


# --- reset ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", SCENE_TASKS)
def test_reset_is_deterministic_per_seed(task):
    env = _env(task)
    first, _ = env.reset(seed=7)
    state = {k: np.copy(v) for k, v in env.task_state.items()}
    again, _ = env.reset(seed=7)
    np.testing.assert_array_equal(first, again)
    for key, value in env.task_state.items():
        np.testing.assert_array_equal(value, state[key])
    other, _ = env.reset(seed=8)
    assert not np.array_equal(first, other)


def test_balance_starts_on_the_board():
    env = _env("balance_hard")
    env.reset(seed=3)
    qpos = env.data.qpos
    np.testing.assert_allclose(qpos[0:3], [-0.1, 0.0, 1.38], atol=0.01)
    np.testing.assert_allclose(qpos[26:29], [0.0, 0.0, 0.37], atol=0.01)
    np.testing.assert_allclose(qpos[33:36], [0.0, 0.0, 0.17], atol=0.01)
    assert not env.get_terminated()


@pytest.mark.parametrize("seed", range(4))
def test_sit_hard_places_and_turns_the_robot_in_front_of_the_chair(seed):
    env = _env("sit_hard")
    env.reset(seed=seed)
    x, y, z = env.data.qpos[0:3]
    w, qx, qy, qz = env.data.qpos[3:7]
    assert 0.2 <= x <= 0.4 and -0.15 <= y <= 0.15 and abs(z - 0.98) <= 0.01
    assert qx == qy == 0.0 and abs(2 * math.atan2(qz, w)) <= 1.8  # a pure yaw within ±1.8 rad
    np.testing.assert_allclose(env.data.qpos[26:29], [-0.25, 0.0, 0.0], atol=0.01)  # the chair stays


def test_reach_goal_is_drawn_from_the_seed_and_observed():
    env = _env("reach")
    obs, _ = env.reset(seed=11)
    goal = env.task_state["goal"]
    assert np.all(goal >= [-2, -2, 0.2]) and np.all(goal <= [2, 2, 2])
    np.testing.assert_array_equal(obs[-3:], goal)
    np.testing.assert_array_equal(obs[51:54], _site(env, "left_hand"))
    np.testing.assert_array_equal(obs[:26], env.data.qpos[:26])
    env.reset(seed=12)
    assert not np.array_equal(env.task_state["goal"], goal)


# --- rewards combine their components ------------------------------------------------------------------


def _pelvis_orientation_term(env: HumanoidEnv) -> float:
    xquat = env.data.xquat[env.model.body("pelvis").id]
    return _gaussian(np.linalg.norm(xquat - [0.75, 0.0, 0.65, 0.0]), 1.0)


def _combined(task: str, i: dict, env: HumanoidEnv) -> float:
    """The reward rebuilt from its info components with the reference's formula for `task`."""
    if task == "hurdle":
        return i["small_control"] * i["stand_reward"] * i["move"] * i["wall_collision_discount"]
    if task == "crawl":
        return (0.1 * i["small_control"] + 0.25 * min(i["crawling"], i["crawling_head"]) + 0.4 * i["move"]
                + 0.25 * _pelvis_orientation_term(env)) * i["in_tunnel"]
    if task in ("stair", "slide"):
        return i["stand_reward"] * i["small_control"] * i["move"]
    if task.startswith("sit"):
        return i["small_control"] * i["sit_reward"] * i["dont_move"]
    if task.startswith("balance"):
        return i["small_control"] * i["stand_reward"] * i["dont_move"]
    if task == "pole":
        return (0.5 * i["small_control"] * i["stand_reward"] + 0.5 * i["move"]) * i["collision_discount"]
    if task == "maze":
        return ((0.2 * i["stand_reward"] * i["small_control"] + 0.4 * i["move"]
                 + 0.4 * i["checkpoint_proximity_reward"]) * i["wall_collision_discount"]
                + i["stage_convert_reward"])
    if task == "reach":
        return i["healthy_reward"] - 1e-4 * i["motion_penalty"] + i["reward_close"] + i["reward_success"]
    raise AssertionError(task)


@pytest.mark.parametrize("task", SCENE_TASKS)
def test_reward_is_finite_and_combines_its_components(task):
    env = _env(task)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(5):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, NU))
        assert np.isfinite(reward)
        assert set(info) == INFO_KEYS[task] | {"per_timestep_reward"}
        assert info["per_timestep_reward"] == reward
        assert reward == pytest.approx(_combined(task, info, env), rel=1e-12, abs=1e-12)
        if "standing" in info:
            assert info["stand_reward"] == pytest.approx(info["standing"] * info["upright"])


@pytest.mark.parametrize("task", SCENE_TASKS)
def test_get_reward_is_pure(task):
    env = _env(task)
    env.reset(seed=2)
    env.step(np.zeros(NU))
    state = {k: np.copy(v) for k, v in env.task_state.items()}
    assert env.get_reward() == env.get_reward()
    for key, value in env.task_state.items():
        np.testing.assert_array_equal(value, state[key])


# --- termination --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "fall_height"), [
    ("hurdle", 0.2), ("maze", 0.2), ("pole", 0.5), ("sit_simple", 0.5), ("sit_hard", 0.5),
    ("balance_simple", 0.8), ("balance_hard", 0.8),
])
def test_terminates_when_the_pelvis_drops(task, fall_height):
    env = _env(task)
    env.reset(seed=0)
    assert not env.get_terminated()
    root = env.data.qpos[0:3].copy()
    _place(env, root=(root[0], root[1], fall_height - 0.05))
    assert env.get_terminated()


@pytest.mark.parametrize("task", ["crawl", "reach"])
def test_never_terminates(task):
    env = _env(task)
    env.reset(seed=0)
    _place(env, root=(0.0, 0.0, 0.1))
    assert not env.get_terminated()


@pytest.mark.parametrize("task", ["stair", "slide"])
def test_terminates_when_the_torso_tips_over(task):
    env = _env(task)
    _place(env)
    assert not env.get_terminated()
    pitch = math.radians(85)  # torso z-z = cos(85°) = 0.087 < 0.1
    _place(env, quat=(math.cos(pitch / 2), 0.0, math.sin(pitch / 2), 0.0))
    assert env.signals.torso_upright == pytest.approx(math.cos(pitch), abs=1e-9)
    assert env.get_terminated()


@pytest.mark.parametrize("task", ["balance_simple", "balance_hard"])
def test_balance_terminates_when_the_board_touches_the_floor(task):
    env = _env(task)
    _place(env, qpos_at={26: 1.0, 28: 0.02})  # board 1 m forward and 1 cm into the floor; robot in the air
    assert env.data.qpos[2] > 0.8 and _touching(env, "stand_board_collision")
    assert env.get_terminated()


@pytest.mark.parametrize("task", ["balance_simple", "balance_hard"])
def test_balance_terminates_when_a_foot_touches_the_floor(task):
    env = _env(task)
    _place(env, root=(-1.0, 0.0, 0.97))  # standing on the floor beside the board
    assert env.get_terminated()


def test_balance_terminates_when_the_sphere_touches_the_robot():
    env = _env("balance_hard")
    _place(env, root=(-1.0, 0.0, 1.2), qpos_at={33: -1.0, 35: 0.8})  # robot in the air, sphere in its torso
    assert _touching(env, "pivot_sphere_collision")
    assert env.get_terminated()


# --- hand-built states with known rewards ----------------------------------------------------------------


@pytest.mark.parametrize("task", ["sit_simple", "sit_hard"])
def test_sitting_on_the_chair_scores_full_sit_reward(task):
    env = _env(task)
    chair_xy = (-0.25, 0.0) if task == "sit_simple" else (1.0, 0.5)
    chair = {26: chair_xy[0], 27: chair_xy[1]} if task == "sit_hard" else {}  # free chair's x, y
    # Pelvis at the chair's position at sitting height, torso upright: sitting 1, on_chair 1, upright 1,
    # and the head sits 0.7 - 0.2776 = 0.422 m above the IMU (within 0.35..0.45): posture 1.
    _place(env, root=(chair_xy[0], chair_xy[1], 0.70), qpos_at=chair)
    _, info = env.get_reward()
    assert (info["sitting"], info["upright"], info["sitting_posture"]) == (1.0, 1.0, 1.0)
    assert info["sit_reward"] == pytest.approx(1.0)
    # 0.39 m forward of the chair is 0.2 m (one margin) outside ±0.19 m: on_chair = 0.1.
    _place(env, root=(chair_xy[0] + 0.39, chair_xy[1], 0.70), qpos_at=chair)
    assert env.get_reward()[1]["sit_reward"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.1)
    # 0.9 m high is 0.18 m above the band: sitting = 0.1 ** 0.81; on the chair again.
    _place(env, root=(chair_xy[0], chair_xy[1], 0.90), qpos_at=chair)
    _, info = env.get_reward()
    assert info["sitting"] == pytest.approx(_gaussian(0.18, 0.2))
    assert info["sit_reward"] == pytest.approx(0.5 * _gaussian(0.18, 0.2) + 0.5)


def test_sit_terminates_when_pelvis_is_low():
    env = _env("sit_simple")
    _place(env, root=(-0.25, 0.0, 0.45))
    assert env.get_terminated()


def test_crawl_rewards_only_inside_the_tunnel():
    env = _env("crawl")
    # Upright with the root at 0.5 m: the torso frame sits on the pelvis, so the IMU is 0.2776 m and the
    # head 0.7 m above the root. IMU z 0.778 is inside 0.6..1.0 (crawling 1); head z 1.2 is 0.2 m above
    # it (crawling_head 0.1 ** 0.04).
    _place(env, root=(5.0, 0.0, 0.5))
    imu, head = _site(env, "imu"), _site(env, "head")
    assert imu[2] == pytest.approx(0.5 + 0.27756) and head[2] == pytest.approx(1.2)
    reward, info = env.get_reward()
    assert info["in_tunnel"] == 1.0
    assert info["crawling"] == 1.0
    assert info["crawling_head"] == pytest.approx(_gaussian(0.2, 1.0))
    expected = (0.1 * info["small_control"] + 0.25 * _gaussian(0.2, 1.0)
                + 0.4 * (1 / 6)  # standing still: move's ramp is 0
                + 0.25 * _pelvis_orientation_term(env))
    assert reward == pytest.approx(expected)
    # The IMU sits 1.9 cm to the right of the root: root y = 1.05 puts it at 1.031, outside ±1 m.
    _place(env, root=(5.0, 1.05, 0.5))
    reward, info = env.get_reward()
    assert _site(env, "imu")[1] > 1.0 and info["in_tunnel"] == 0.0 and reward == 0.0


def test_reach_pays_success_with_the_hand_on_the_goal():
    env = _env("reach")
    env.reset(seed=0)
    _place(env)
    env.task_state = {"goal": _site(env, "left_hand")}
    reward, info = env.get_reward()
    assert info["hand_dist"] == 0.0 and info["reward_success"] == 10.0 and info["reward_close"] == 5.0
    assert info["healthy_reward"] == pytest.approx(5.0)  # pelvis upright, zz = 1
    assert info["motion_penalty"] == 0.0 and reward == pytest.approx(20.0)
    env.task_state = {"goal": _site(env, "left_hand") + [0.0, 0.0, 0.5]}
    reward, info = env.get_reward()
    assert info["reward_success"] == 0.0 and info["reward_close"] == 5.0 and reward == pytest.approx(10.0)


def test_hurdle_discounts_touching_a_wall_but_not_a_hurdle():
    env = _env("hurdle")
    _place(env, root=(2.0, 4.35, 0.98))  # shoulder inside the right wall (inner face at y = 4.45)
    assert _touching(env, "right_barrier_collision")
    reward, info = env.get_reward()
    assert info["wall_collision_discount"] == 0.1
    assert reward == pytest.approx(0.1 * info["small_control"] * info["stand_reward"] * info["move"])
    _place(env, root=(7.0, 0.0, 0.98))  # legs through the first hurdle
    assert env.data.ncon > 0 and not _touching(env, "right_barrier_collision")
    assert env.get_reward()[1]["wall_collision_discount"] == 1.0


def test_pole_discounts_touching_a_pole():
    env = _env("pole")
    _place(env, root=(2.0, 0.0, 0.98))  # pole_r2_c2 stands at (2, 0)
    assert _touching(env, "pole_r2_c2")
    reward, info = env.get_reward()
    assert info["collision_discount"] == 0.1
    assert reward == pytest.approx(0.1 * (0.5 * info["small_control"] * info["stand_reward"] + 0.5 * info["move"]))


# --- maze stages --------------------------------------------------------------------------------------


def test_maze_first_step_pays_for_the_start_checkpoint():
    env = _env("maze")
    env.reset(seed=0)
    assert env.task_state == {"stage": 0}
    _, reward, _, _, info = env.step(np.zeros(NU))
    assert info["stage_convert_reward"] == 100.0 and info["success_subtasks"] == 1
    assert reward > 100.0 and env.task_state == {"stage": 1}


def test_maze_stage_advances_at_a_checkpoint():
    env = _env("maze")
    env.reset(seed=0)
    env.task_state = {"stage": 1}
    _place(env, root=(3.0, 0.0, 0.98))  # on checkpoint 1, (3, 0)
    reward, info = env.get_reward()
    # Reached: stage 2 pays 100 * 2, and the rest of the reward already uses stage 2's target (3, 6),
    # 6 m away from the IMU, and direction (+y) with speed 2 m/s (the robot is still: move ramp 0).
    imu = _site(env, "imu")
    proximity = _gaussian(np.hypot(3.0 - imu[0], 6.0 - imu[1]), 1.0)
    assert info["stage_convert_reward"] == 200.0 and info["success_subtasks"] == 2
    assert info["checkpoint_proximity_reward"] == pytest.approx(proximity, abs=1e-15)
    assert info["move"] == pytest.approx(1 / 6) and info["wall_collision_discount"] == 1.0
    assert reward == pytest.approx(0.2 * info["stand_reward"] * info["small_control"] + 0.4 / 6
                                   + 0.4 * proximity + 200.0)
    assert env.task_state == {"stage": 1}  # get_reward changed nothing
    env.task.after_step(env.data)
    assert env.task_state == {"stage": 2}
    _, info = env.get_reward()  # still there: no second payment
    assert info["stage_convert_reward"] == 0.0 and info["success_subtasks"] == 2


def test_maze_move_follows_the_stage_direction():
    env = _env("maze")
    env.reset(seed=0)
    env.task_state = {"stage": 2}  # heading from (3, 0) to (3, 6): +y at 2 m/s
    qvel = np.zeros(env.model.nv)
    qvel[1] = 2.0
    env.set_state(env.data.qpos.copy(), qvel)
    assert env.get_reward()[1]["move"] == pytest.approx(1.0)
    qvel[1], qvel[0] = 0.0, 2.0  # +x instead: both velocity errors are 2 m/s, past the 1 m/s margin
    env.set_state(env.data.qpos.copy(), qvel)
    assert env.get_reward()[1]["move"] == pytest.approx(1 / 6)
    env.task_state = {"stage": 4}  # all reached: move is 1 whatever the velocity
    assert env.get_reward()[1]["move"] == 1.0


def test_maze_discounts_touching_a_block():
    env = _env("maze")
    env.reset(seed=0)
    _place(env, root=(-1.3, 0.0, 0.98))  # the block west of the start spans x -2.25..-0.75
    assert env.get_reward()[1]["wall_collision_discount"] == 0.1


def test_maze_task_state_round_trip():
    env = _env("maze")
    env.reset(seed=0)
    env.task_state = {"stage": 3}
    saved = env.task_state
    env.task_state = {"stage": 0}
    env.task_state = saved
    assert env.task_state == {"stage": 3}
    with pytest.raises(ValueError):
        env.task_state = {"stage": 5}
    with pytest.raises(ValueError):
        env.task_state = {"stage": 1, "direction": 0}


def test_reach_task_state_round_trip():
    env = _env("reach")
    env.reset(seed=0)
    saved = env.task_state
    env.task_state = {"goal": np.array([1.0, 1.0, 1.0])}
    env.task_state = saved
    np.testing.assert_array_equal(env.task_state["goal"], saved["goal"])
    with pytest.raises(ValueError):
        env.task_state = {"goal": np.zeros(2)}
