"""h1-pole-v0: walk at 0.5 m/s through a forest of thin poles without touching them.

Scene and reward from HumanoidBench 791405f ("HB"): `assets/locomotion/generated_xml_poles.xml` and
`envs/pole.py`. Unlike walk, the reward is a sum: half standing still well, half moving forward, all
times 0.1 on every step where the robot (or anything but the floor) touches a pole. HB finds poles by
name: any geom whose name contains "pole_r", so the names below are part of the reward.
"""

from __future__ import annotations

import mujoco

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom, any_contact, geom_mask
from sim_bridge.tasks.base import Task
from sim_bridge.world import floor_geom_id

_BOX = mujoco.mjtGeom.mjGEOM_BOX
_CYLINDER = mujoco.mjtGeom.mjGEOM_CYLINDER

# --- walls (HB generated_xml_poles.xml): bodies at the origin, each with a visual geom named like the
# body and an unnamed collision geom. (body name, centre, half-size), metres.
WALL_RGBA = (0.9, 0.9, 0.9, 0.2)
WALLS = (
    ("left_barrier", (20.0, -3.15, 1.0), (20.75, 0.15, 1.0)),
    ("right_barrier", (20.0, 3.15, 1.0), (20.75, 0.15, 1.0)),
    ("behind_barrier", (-0.6, 0.0, 1.0), (0.15, 3.0, 1.0)),
)

# --- poles -------------------------------------------------------------------------------------------
#: Rows r = 1..41 at x = r m (bodies "pole_row_<r>" under "pole_rows"). Odd rows hold four poles,
#: even rows three, staggered; y positions (m) in HB's order. Collision geoms are "pole_r<r>_c<c>".
POLE_ROWS = 41
POLE_ROW_SPACING_M = 1.0
ODD_ROW_Y_M = (2.25, 0.75, -0.75, -2.25)
EVEN_ROW_Y_M = (1.5, 0.0, -1.5)
POLE_RADIUS_M = 0.05
POLE_HALF_HEIGHT_M = 1.0  # 2 m tall, standing on the floor
POLE_RGBA = (0.5, 0.5, 0.5, 1.0)
POLE_NAME_MARK = "pole_r"  # HB's test for "is a pole"

# --- reward and termination (HB `Pole`) ------------------------------------------------------------------
MOVE_SPEED_MPS = 0.5  # forward speed above which `move` is 1
POLE_CONTACT_DISCOUNT = 0.1
TERMINATION_PELVIS_HEIGHT_M = 0.5  # terminated when the root's qpos z drops below this


class Pole(Task):
    name = "pole"
    success_bar = 700.0

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        world = spec.worldbody
        for name, centre, half_size in WALLS:
            body = world.add_body(name=name)
            add_visual_geom(body, name=name, type=_BOX, pos=centre, size=half_size, rgba=WALL_RGBA)
            add_collision_geom(body, type=_BOX, pos=centre, size=half_size)
        rows = world.add_body(name="pole_rows")
        size = (POLE_RADIUS_M, POLE_HALF_HEIGHT_M, 0.0)
        for r in range(1, POLE_ROWS + 1):
            row = rows.add_body(name=f"pole_row_{r}", pos=(r * POLE_ROW_SPACING_M, 0.0, 0.0))
            for c, y in enumerate(ODD_ROW_Y_M if r % 2 else EVEN_ROW_Y_M, start=1):
                centre = (0.0, y, POLE_HALF_HEIGHT_M)
                add_visual_geom(row, type=_CYLINDER, pos=centre, size=size, rgba=POLE_RGBA)
                add_collision_geom(row, name=f"pole_r{r}_c{c}", type=_CYLINDER, pos=centre, size=size)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._floor = geom_mask(model, [floor_geom_id(model)])
        self._poles = geom_mask(model, [g for g in range(model.ngeom) if POLE_NAME_MARK in model.geom(g).name])

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        terms = rewards.stand_terms(s.head_height, s.torso_upright, s.actuator_forces)
        move = rewards.move(s.center_of_mass_velocity[0], MOVE_SPEED_MPS)
        touched = any_contact(data, self._poles, excluding=self._floor)
        collision_discount = POLE_CONTACT_DISCOUNT if touched else 1.0
        reward = (0.5 * (terms.small_control * terms.stand_reward) + 0.5 * move) * collision_discount
        return reward, {**terms.info(), "move": move, "collision_discount": collision_discount}

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return bool(data.qpos[2] < TERMINATION_PELVIS_HEIGHT_M)
