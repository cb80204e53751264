"""h1-crawl-v0: crawl forward at 1 m/s through a 1.15 m high tunnel.

Scene and reward from HumanoidBench 791405f ("HB"): `assets/tasks/crawl.xml` and
`envs/basic_locomotion_envs.py` (`Crawl`). The reward is a weighted sum, not a product, and all of it
is gated by `in_tunnel` (the IMU's y within ±1 m), so it is 0 once the robot leaves the tunnel
sideways. It never terminates.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom
from sim_bridge.tasks.base import Task

_BOX = mujoco.mjtGeom.mjGEOM_BOX

# --- tunnel (HB crawl.xml): body "tunnel" at x = 2.2 m; walls and ceiling as (name, centre, half-size)
# in its frame, metres. It spans x 2.2..18.2 m; walls at y = ±1.35 m; the ceiling's underside is at
# 1.35 - 0.2 = 1.15 m.
TUNNEL_POS_M = (2.2, 0.0, 0.0)
TUNNEL_RGBA = (0.5, 0.5, 0.5, 0.3)
TUNNEL_PARTS = (
    ("left_wall", (8.0, -1.35, 0.775), (8.0, 0.2, 0.775)),
    ("right_wall", (8.0, 1.35, 0.775), (8.0, 0.2, 0.775)),
    ("ceiling", (8.0, 0.0, 1.35), (8.0, 1.15, 0.2)),
)

# --- reward (HB `Crawl`) ----------------------------------------------------------------------------
#: Target height of the IMU and of the head (m), HB `_CRAWL_HEIGHT`; 1 within ±0.2 m of it.
CRAWL_HEIGHT_M = 0.8
CRAWL_HEIGHT_TOLERANCE_M = 0.2
CRAWL_HEIGHT_MARGIN_M = 1.0  # gaussian: 0.1 at 1 m outside the band
#: Pelvis orientation HB rewards, compared with `xquat` by Euclidean distance (gaussian, margin 1).
#: It is not a unit quaternion (norm 0.99); HB's value is kept as is. Close to pitched forward ~82°.
PELVIS_QUAT_TARGET = np.array([0.75, 0.0, 0.65, 0.0])
PELVIS_QUAT_MARGIN = 1.0
#: `in_tunnel` is 1 while the IMU's y (m) is within these bounds, else 0.
IN_TUNNEL_Y_BOUNDS_M = (-1.0, 1.0)
# Weights of the terms; they sum to 1.
W_SMALL_CONTROL = 0.1
W_CRAWLING = 0.25
W_MOVE = 0.4
W_PELVIS_ORIENTATION = 0.25


class Crawl(Task):
    name = "crawl"
    success_bar = 700.0

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        tunnel = spec.worldbody.add_body(name="tunnel", pos=TUNNEL_POS_M)
        # HB lists the three visual geoms first, then the three (unnamed) collision geoms.
        for name, centre, half_size in TUNNEL_PARTS:
            add_visual_geom(tunnel, name=name, type=_BOX, pos=centre, size=half_size, rgba=TUNNEL_RGBA)
        for _, centre, half_size in TUNNEL_PARTS:
            add_collision_geom(tunnel, type=_BOX, pos=centre, size=half_size)

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        small_control = rewards.small_control(s.actuator_forces)
        move = rewards.move(s.center_of_mass_velocity[0], rewards.WALK_SPEED_MPS)
        band = (CRAWL_HEIGHT_M - CRAWL_HEIGHT_TOLERANCE_M, CRAWL_HEIGHT_M + CRAWL_HEIGHT_TOLERANCE_M)
        imu = s.imu_position
        crawling_head = rewards.tolerance(s.head_height, bounds=band, margin=CRAWL_HEIGHT_MARGIN_M)
        crawling = rewards.tolerance(float(imu[2]), bounds=band, margin=CRAWL_HEIGHT_MARGIN_M)
        quat_error = float(np.linalg.norm(s.pelvis_quaternion - PELVIS_QUAT_TARGET))
        pelvis_orientation = rewards.tolerance(quat_error, margin=PELVIS_QUAT_MARGIN)
        in_tunnel = rewards.tolerance(float(imu[1]), bounds=IN_TUNNEL_Y_BOUNDS_M)
        reward = (
            W_SMALL_CONTROL * small_control
            + W_CRAWLING * min(crawling, crawling_head)
            + W_MOVE * move
            + W_PELVIS_ORIENTATION * pelvis_orientation
        ) * in_tunnel
        return reward, {
            "crawling": crawling,
            "crawling_head": crawling_head,
            "small_control": small_control,
            "move": move,
            "in_tunnel": in_tunnel,
        }

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return False  # HB's crawl never terminates
