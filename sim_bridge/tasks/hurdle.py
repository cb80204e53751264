"""h1-hurdle-v0: run at 5 m/s down a walled track over 0.375 m hurdles.

Scene and reward from HumanoidBench 791405f ("HB"): `assets/locomotion/generated_xml_hurdles.xml` and
`envs/basic_locomotion_envs.py` (`Hurdle`). The reward is run's (standing · upright · small_control ·
move(5 m/s)) with a looser upright bound, times 0.1 on every step where anything touches the side or
back walls. Knocking into a hurdle is not discounted: only the walls are listed.
"""

from __future__ import annotations

import mujoco

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom, any_contact, geom_mask
from sim_bridge.tasks.base import Task
from sim_bridge.tasks.locomotion import FALL_HEIGHT_M

_BOX = mujoco.mjtGeom.mjGEOM_BOX

# --- walls (HB generated_xml_hurdles.xml); each is a body at the origin holding a visual geom named
# like the body and a collision geom named `<body>_collision`. Positions and half-sizes in metres.
WALL_RGBA = (0.1, 0.1, 0.1, 0.1)
#: (body name, centre, half-size). The side walls run x -0.5..70.5; "left" is HB's name for y < 0.
WALLS = (
    ("left_barrier", (35.0, -4.725, 1.0), (35.5, 0.275, 1.0)),
    ("right_barrier", (35.0, 4.725, 1.0), (35.5, 0.275, 1.0)),
    ("behind_barrier", (-0.525, 0.0, 1.0), (0.05, 5.0, 1.0)),
)
WALL_COLLISION_GEOMS = tuple(f"{name}_collision" for name, _, _ in WALLS)

# --- hurdles --------------------------------------------------------------------------------------
HURDLE_ROWS = 10
HURDLE_SPACING_M = 7.0  # row k (1-based) stands at x = 7k m
#: A row's single collision box: half-thickness 0.03 m, spans y ±5 m, 0.375 m tall.
HURDLE_COLLISION_HALF_SIZE_M = (0.03, 5.0, 0.1875)
#: HB draws each row as nine 0.94 m wide hurdles side by side, at these y offsets (m), in HB's order.
HURDLE_VISUAL_Y_M = (0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 4.0, -4.0)
#: One drawn hurdle, in its body frame: (centre, half-size) of two feet, two posts and the bar (m).
HURDLE_VISUAL_BOXES = (
    ((-0.1, -0.47, 0.01), (0.15, 0.01, 0.01)),
    ((-0.1, 0.47, 0.01), (0.15, 0.01, 0.01)),
    ((0.0, -0.47, 0.2), (0.01, 0.01, 0.2)),
    ((0.0, 0.47, 0.2), (0.01, 0.01, 0.2)),
    ((0.0, 0.0, 0.34), (0.01, 0.45, 0.03)),
)

# --- reward (HB `Hurdle`); termination is walk's (HB `Hurdle` inherits it): root z < FALL_HEIGHT_M ----
UPRIGHT_BOUND = 0.8  # torso z-z above which `upright` is 1 (walk/run use 0.9)
WALL_CONTACT_DISCOUNT = 0.1  # reward factor while a wall is touched


class Hurdle(Task):
    name = "hurdle"
    success_bar = 700.0
    camera_name = "cam_hurdle"

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        world = spec.worldbody
        for name, centre, half_size in WALLS:
            body = world.add_body(name=name)
            add_visual_geom(body, name=name, type=_BOX, pos=centre, size=half_size, rgba=WALL_RGBA)
            add_collision_geom(body, name=f"{name}_collision", type=_BOX, pos=centre, size=half_size)
        array = world.add_body(name="hurdle_array")
        rows = range(1, HURDLE_ROWS + 1)
        for row in rows:
            for y in HURDLE_VISUAL_Y_M:
                hurdle = array.add_body(name=f"starting_hurdle_{row}_{int(y)}",
                                        pos=(row * HURDLE_SPACING_M, y, 0.0))
                for centre, half_size in HURDLE_VISUAL_BOXES:
                    add_visual_geom(hurdle, type=_BOX, pos=centre, size=half_size)
        half_height = HURDLE_COLLISION_HALF_SIZE_M[2]
        for row in rows:
            add_collision_geom(world, type=_BOX, pos=(row * HURDLE_SPACING_M, 0.0, half_height),
                               size=HURDLE_COLLISION_HALF_SIZE_M)

    def bind(self, model, signals) -> None:
        super().bind(model, signals)
        self._walls = geom_mask(model, WALL_COLLISION_GEOMS)

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        terms = rewards.stand_terms(s.head_height, s.torso_upright, s.actuator_forces, upright_bound=UPRIGHT_BOUND)
        move = rewards.move(s.center_of_mass_velocity[0], rewards.RUN_SPEED_MPS)
        wall_collision_discount = WALL_CONTACT_DISCOUNT if any_contact(data, self._walls) else 1.0
        reward = terms.small_control * terms.stand_reward * move * wall_collision_discount
        return reward, {**terms.info(), "move": move, "wall_collision_discount": wall_collision_discount}

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return bool(data.qpos[2] < FALL_HEIGHT_M)
