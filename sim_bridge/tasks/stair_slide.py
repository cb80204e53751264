"""h1-stair-v0 and h1-slide-v0: walk at 1 m/s over stair pyramids or triangular ramps.

Scenes and reward from HumanoidBench 791405f ("HB"): `assets/locomotion/generated_xml_stairs.xml`,
`assets/tasks/slide.xml` and `envs/basic_locomotion_envs.py` (`ClimbingUpwards`, of which `Stair`
and `Slide` are empty subclasses). The reward is walk's product, except that `standing` measures the
head above each foot (so it keeps its meaning on a slope) and `upright` tolerates a 60° lean. The
episode ends when the torso tips past ~84°.
"""

from __future__ import annotations

import math

import mujoco

from sim_bridge import rewards
from sim_bridge.contacts import add_collision_geom, add_visual_geom
from sim_bridge.tasks.base import Task

_BOX = mujoco.mjtGeom.mjGEOM_BOX
_MESH = mujoco.mjtGeom.mjGEOM_MESH

# --- reward and termination (HB `ClimbingUpwards`) ------------------------------------------------------
#: Head height above each foot site (m) from which that foot's standing factor is 1; gaussian margin.
HEAD_ABOVE_FOOT_M = 1.2
HEAD_ABOVE_FOOT_MARGIN_M = 0.45
UPRIGHT_BOUND = 0.5  # torso z-z above which `upright` is 1 (walk: 0.9)
TERMINATION_TORSO_UPRIGHT = 0.1  # terminated when torso z-z drops below this (~84° tilt)

# --- stair scene (HB generated_xml_stairs.xml) ---------------------------------------------------------
#: Parent body "stairs" at x = 0.2 m; four pyramids named by HB "stairs_50".."stairs_20" at these x (m)
#: in its frame, so their centres are at x = 3.2, 9.2, 15.2, 21.2 m.
STAIRS_POS_M = (0.2, 0.0, 0.0)
PYRAMIDS = (("50", 3.0), ("40", 9.0), ("30", 15.0), ("20", 21.0))
#: Each pyramid is five stacked boxes: 0.18 m risers, treads 0.6 m deep on each side, 10 m wide.
STEP_COUNT = 5
STEP_RISE_M = 0.18
STEP_TREAD_M = 0.6
BOTTOM_STEP_HALF_LENGTH_M = 2.7  # the bottom box spans 5.4 m in x; each box above is 1.2 m shorter
STEP_HALF_WIDTH_M = 5.0
STAIR_RGBA = (0.8, 0.8, 0.83, 1.0)
#: HB gives the drawn steps an explicit mass (kg). The stairs are static, so it changes nothing
#: physical; kept so that model masses compare equal with HB's.
STEP_VISUAL_MASS_KG = 0.02
#: Collision-only walls of the stair scene, world geoms: (centre, half-size), metres.
STAIR_WALLS = (
    ((13.5, -5.05, 2.0), (15.5, 0.1, 2.0)),
    ((13.5, 5.05, 2.0), (15.5, 0.1, 2.0)),
    ((-2.1, 0.0, 2.0), (0.1, 7.25, 2.0)),
)

# --- slide scene (HB slide.xml) ----------------------------------------------------------------------
#: A ramp: up 1.75 m over 5 m, down over the next 5 m, 10 m wide. MuJoCo collides its convex hull (a
#: triangular prism). Vertices (m) in HB's order.
RAMP_MESH = "slide"
RAMP_VERTICES_M = (
    (0.3, 5.0, 0.0), (0.3, -5.0, 0.0),
    (5.3, 5.0, 1.75), (5.3, -5.0, 1.75),
    (10.3, 5.0, 0.0), (10.3, -5.0, 0.0),
)
RAMP_COUNT = 9
RAMP_SPACING_M = 10.0  # ramp k starts at x = 0.3 + 10k m
RAMP_RGBA = (0.6, 0.6, 0.6, 1.0)
#: Collision-only walls of the slide scene, world geoms: (centre, half-size), metres.
SLIDE_WALLS = (
    ((48.85, -5.15, 4.0), (53.0, 0.15, 4.0)),
    ((48.85, 5.15, 4.0), (53.0, 0.15, 4.0)),
    ((-4.0, 0.0, 4.0), (0.15, 5.15, 4.0)),
)


class _ClimbingUpwards(Task):
    """HB's `ClimbingUpwards` reward and termination; subclasses add the terrain."""

    success_bar = 700.0

    def get_reward(self, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        s = self.signals
        head = s.head_height
        standing = (
            rewards.tolerance(head - s.left_foot_height, bounds=(HEAD_ABOVE_FOOT_M, math.inf),
                              margin=HEAD_ABOVE_FOOT_MARGIN_M)
            * rewards.tolerance(head - s.right_foot_height, bounds=(HEAD_ABOVE_FOOT_M, math.inf),
                                margin=HEAD_ABOVE_FOOT_MARGIN_M)
        )
        upright = rewards.upright(s.torso_upright, bound=UPRIGHT_BOUND)
        stand_reward = standing * upright
        small_control = rewards.small_control(s.actuator_forces)
        move = rewards.move(s.center_of_mass_velocity[0], rewards.WALK_SPEED_MPS)
        return stand_reward * small_control * move, {
            "stand_reward": stand_reward,
            "small_control": small_control,
            "move": move,
            "standing": standing,
            "upright": upright,
        }

    def get_terminated(self, data: mujoco.MjData) -> bool:
        return self.signals.torso_upright < TERMINATION_TORSO_UPRIGHT


def _add_walls(spec: mujoco.MjSpec, walls) -> None:
    for centre, half_size in walls:
        add_collision_geom(spec.worldbody, type=_BOX, pos=centre, size=half_size)


class Stair(_ClimbingUpwards):
    name = "stair"

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        stairs = spec.worldbody.add_body(name="stairs", pos=STAIRS_POS_M)
        for label, x in PYRAMIDS:
            pyramid = stairs.add_body(name=f"stairs_{label}", pos=(x, 0.0, 0.0))
            for layer in range(STEP_COUNT):
                centre = (0.0, 0.0, (layer + 0.5) * STEP_RISE_M)
                half_size = (BOTTOM_STEP_HALF_LENGTH_M - layer * STEP_TREAD_M, STEP_HALF_WIDTH_M,
                             STEP_RISE_M / 2)
                add_visual_geom(pyramid, name=f"stair_{label}_layer_{layer}", type=_BOX, pos=centre,
                                size=half_size, rgba=STAIR_RGBA, mass=STEP_VISUAL_MASS_KG)
                add_collision_geom(pyramid, type=_BOX, pos=centre, size=half_size)
        _add_walls(spec, STAIR_WALLS)


class Slide(_ClimbingUpwards):
    name = "slide"

    def build_scene(self, spec: mujoco.MjSpec) -> None:
        spec.add_mesh(name=RAMP_MESH, uservert=[v for vertex in RAMP_VERTICES_M for v in vertex])
        slides = spec.worldbody.add_body(name="slides")
        offsets = [(k * RAMP_SPACING_M, 0.0, 0.0) for k in range(RAMP_COUNT)]
        # HB lists the nine visual ramps first, then the nine collision ramps.
        for pos in offsets:
            add_visual_geom(slides, type=_MESH, meshname=RAMP_MESH, pos=pos, rgba=RAMP_RGBA)
        for pos in offsets:
            add_collision_geom(slides, type=_MESH, meshname=RAMP_MESH, pos=pos)
        _add_walls(spec, SLIDE_WALLS)
