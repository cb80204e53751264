"""Headless offscreen rendering with `mujoco.Renderer`.

MuJoCo picks its OpenGL platform once, when `mujoco` is first imported, from the `MUJOCO_GL` environment
variable (unset means GLFW, which needs a display). On a machine without a display we default it to EGL,
which works with Mesa's software drivers (Debian: libegl1 + libegl-mesa0, usually present) and with GPU
drivers. `sim_bridge/__init__.py` calls `default_headless_gl()` before anything imports mujoco; set
`MUJOCO_GL` yourself (`egl`, `osmesa`, `glfw`) to override it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # importing mujoco here would fix its GL platform before we choose one
    import mujoco
    import numpy as np

#: Backend used when MUJOCO_GL is unset and no display is available.
HEADLESS_GL_BACKEND: Final = "egl"


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_headless_gl() -> None:
    """Set MUJOCO_GL=egl on Linux without a display, unless the user chose a backend already."""
    if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not _has_display():
        os.environ["MUJOCO_GL"] = HEADLESS_GL_BACKEND


class TrackingRenderer:
    """Renders RGB frames of MjData from one named camera (the robot's tracking cameras by default)."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, camera: str) -> None:
        import mujoco

        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"the model has no camera named {camera!r}")
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as err:  # GL platform errors come as several types (FatalError, ImportError, ...)
            raise RuntimeError(
                f"cannot create an OpenGL context for rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): "
                f"{err}. Headless Linux needs MUJOCO_GL=egl (libegl1, libegl-mesa0) or MUJOCO_GL=osmesa "
                "(libosmesa6), set before mujoco is first imported."
            ) from err
        self._camera = camera

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """(height, width, 3) uint8 image of `data` as it stands (no forward pass)."""
        self._renderer.update_scene(data, camera=self._camera)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
