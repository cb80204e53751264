"""Contacts in HumanoidBench scenes: which geoms can collide, and which ones touched.

Building side. HumanoidBench (HB) builds every scene object from geoms of two classes defined in its
robot file (HB 791405f `assets/robots/h1_pos.xml`): a *visual* geom that never collides but carries
the object's mass (density 1000 kg/m³, MuJoCo's default), and a *collision* geom that collides but
weighs nothing (`mass="0"`). The chair, balance board and pivot sphere get their masses that way, so
the split matters for physics, not only for looks. `add_visual_geom` and `add_collision_geom` set
those attributes explicitly rather than borrowing the robot's default classes, whose values differ
between HB and the Menagerie robot we build from.

Reading side. HB's contact-based reward and termination terms scan `data.contact.geom` as MuJoCo left
it after `mj_step` (the contacts of the last substep's start, see docs/scene_tasks.md), looking for a
pair that involves one set of geoms and none of another. `any_contact` is that scan. HB names the
floor by its id, 0; `sim_bridge.world.floor_geom_id` returns it and checks it is 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np

# HB h1_pos.xml default class "visual": contype 0, conaffinity 0, group 2, material "black".
_VISUAL_GROUP = 2
#: Colour of HB's "black" material, used by visual geoms that set no rgba of their own.
VISUAL_BLACK_RGBA = (0.1, 0.1, 0.1, 1.0)
# HB h1_pos.xml default class "collision": group 3 (hidden by default), mass 0; contype and
# conaffinity stay at MuJoCo's default 1, so it collides with everything, robot included.
_COLLISION_GROUP = 3
_COLLISION_MASS_KG = 0.0


def add_visual_geom(body: mujoco.MjsBody, *, rgba=VISUAL_BLACK_RGBA, **attrs) -> mujoco.MjsGeom:
    """Add a geom of HB's visual class: drawn, never in contact, massive (density 1000 kg/m³)."""
    return body.add_geom(contype=0, conaffinity=0, group=_VISUAL_GROUP, rgba=rgba, **attrs)


def add_collision_geom(body: mujoco.MjsBody, **attrs) -> mujoco.MjsGeom:
    """Add a geom of HB's collision class: in contact with everything, massless, hidden."""
    return body.add_geom(group=_COLLISION_GROUP, mass=_COLLISION_MASS_KG, **attrs)


def geom_mask(model: mujoco.MjModel, geoms: Iterable[int | str]) -> np.ndarray:
    """(ngeom,) bool, True for the given geoms (ids or names; a missing name raises KeyError).

    Contact queries index this table with the contact list, which costs a few microseconds per step
    where a set-membership test (`np.isin`) costs tens.
    """
    mask = np.zeros(model.ngeom, dtype=bool)
    for geom in geoms:
        mask[model.geom(geom).id if isinstance(geom, str) else int(geom)] = True
    return mask


def contact_pairs(data: mujoco.MjData) -> np.ndarray:
    """(ncon, 2) geom ids of the active contacts, as MjData holds them now (no recomputation)."""
    return data.contact.geom


def any_contact(data: mujoco.MjData, geoms: np.ndarray, excluding: np.ndarray | None = None) -> bool:
    """True if some contact pair involves a geom of `geoms` and neither of its geoms is in `excluding`.

    `geoms` and `excluding` are `geom_mask` tables. HB's terms, as calls:
    hurdle walls `any_contact(d, walls)`; pole `any_contact(d, poles, excluding=floor)`;
    balance `any_contact(d, sphere, excluding=floor | board)` and `any_contact(d, floor, excluding=sphere)`.
    """
    pairs = contact_pairs(data)
    if pairs.shape[0] == 0:
        return False
    involved = geoms[pairs].any(axis=1)
    if excluding is not None:
        involved &= ~excluding[pairs].any(axis=1)
    return bool(involved.any())
