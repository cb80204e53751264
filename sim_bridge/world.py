"""HumanoidBench's common world: floor, light, skybox and visual settings, added to an `MjSpec`.

Mirrors HB 791405f `humanoid_bench/assets/common/{floor,visual}.xml`, which every h1 task includes before
the robot. Only the floor takes part in physics: an infinite plane (MuJoCo planes collide over their whole
extent; the size only sets how it is drawn) with the default contact parameters. It must be the first
geom of the world body, because HB hard-codes geom id 0 as the floor (the balance termination, the scene
tasks' contact filters).
"""

from __future__ import annotations

from typing import Final

import mujoco

FLOOR_GEOM: Final = "floor"
#: Drawn size of the floor plane: half-extents x, y (m) and grid spacing (m). HB floor.xml.
FLOOR_SIZE: Final = (20.0, 20.0, 1.0)
FLOOR_MATERIAL: Final = "MatPlane"
FLOOR_TEXTURE: Final = "texplane"
#: Directional light straight down from 10 m. HB floor.xml.
LIGHT_POS_M: Final = (0.0, 0.0, 10.0)
LIGHT_DIR: Final = (0.0, 0.0, -1.0)
LIGHT_AMBIENT: Final = (0.1, 0.1, 0.1)
LIGHT_DIFFUSE: Final = (0.5, 0.5, 0.5)
LIGHT_SPECULAR: Final = (0.3, 0.3, 0.3)
#: HB visual.xml: pale grey gradient sky and checker floor, headlight, map and fog settings.
SKY_RGB: Final = (0.9, 0.9, 0.9)
CHECKER_RGB: Final = (0.9, 0.9, 0.9)
CHECKER_MARK_RGB: Final = (0.7, 0.7, 0.7)
TEXTURE_SIZE_PX: Final = 100
FLOOR_TEXREPEAT: Final = (20.0, 20.0)
HEADLIGHT_DIFFUSE: Final = (0.6, 0.6, 0.6)
HEADLIGHT_AMBIENT: Final = (0.3, 0.3, 0.3)
HEADLIGHT_SPECULAR: Final = (0.0, 0.0, 0.0)
MAP_FORCE: Final = 0.1
MAP_FOGEND: Final = 10.0
MAP_SHADOWCLIP: Final = 5.0


def add_world(spec: mujoco.MjSpec, *, shadow_size_px: int, offscreen_size_px: tuple[int, int],
              offscreen_samples: int) -> None:
    """Add HB's floor, light, sky and visual settings to `spec`.

    Call before anything else adds geoms to the world body, so that the floor is geom 0.
    """
    if any(True for _ in spec.worldbody.geoms):
        raise ValueError("the floor must be the first world geom; add the world before other world geoms")

    spec.visual.map.force = MAP_FORCE
    spec.visual.map.fogend = MAP_FOGEND
    spec.visual.map.shadowclip = MAP_SHADOWCLIP
    spec.visual.headlight.diffuse = HEADLIGHT_DIFFUSE
    spec.visual.headlight.ambient = HEADLIGHT_AMBIENT
    spec.visual.headlight.specular = HEADLIGHT_SPECULAR
    spec.visual.quality.shadowsize = shadow_size_px
    spec.visual.global_.offwidth, spec.visual.global_.offheight = offscreen_size_px
    spec.visual.quality.offsamples = offscreen_samples

    spec.add_texture(name="skybox", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, rgb1=SKY_RGB, rgb2=SKY_RGB,
                     width=TEXTURE_SIZE_PX, height=TEXTURE_SIZE_PX)
    spec.add_texture(name=FLOOR_TEXTURE, type=mujoco.mjtTexture.mjTEXTURE_2D,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, rgb1=CHECKER_RGB, rgb2=CHECKER_RGB,
                     mark=mujoco.mjtMark.mjMARK_EDGE, markrgb=CHECKER_MARK_RGB,
                     width=TEXTURE_SIZE_PX, height=TEXTURE_SIZE_PX)
    material = spec.add_material(name=FLOOR_MATERIAL, reflectance=0.0, shininess=1.0, specular=0.5,
                                 texrepeat=FLOOR_TEXREPEAT)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = FLOOR_TEXTURE

    spec.worldbody.add_light(pos=LIGHT_POS_M, dir=LIGHT_DIR, type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                             ambient=LIGHT_AMBIENT, diffuse=LIGHT_DIFFUSE, specular=LIGHT_SPECULAR)
    spec.worldbody.add_geom(name=FLOOR_GEOM, type=mujoco.mjtGeom.mjGEOM_PLANE, size=FLOOR_SIZE,
                            conaffinity=1, material=FLOOR_MATERIAL)


def floor_geom_id(model: mujoco.MjModel) -> int:
    """Id of the floor geom; 0 by construction (checked)."""
    idx = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM)
    if idx != 0:
        raise AssertionError(f"the floor is geom {idx}, HumanoidBench's tasks expect geom 0")
    return idx


__all__ = ["FLOOR_GEOM", "add_world", "floor_geom_id"]
