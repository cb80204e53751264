"""The one map between normalised actions in [-1, 1] and actuator controls (joint-position targets).

HumanoidBench (791405f, `humanoid_bench/tasks.py` `Task.unnormalize_action`) maps an action `a` to
`ctrl = (a + 1) / 2 * (high - low) + low`, where low/high are float32 copies of the actuator ctrlrange
(gymnasium's MujocoEnv builds its action space from them in float32). The action is not clipped: MuJoCo
clamps ctrl to ctrlrange inside the step. a = 0 is the middle of each joint's range, not a standing pose.

The arithmetic follows numpy's type promotion with the float32 bounds, exactly as HB: a float32 action
gives a float32 ctrl, a float64 action a float64 one. Both then land in MjData's float64 ctrl.
"""

from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np


@dataclasses.dataclass(frozen=True)
class ActionMap:
    """Affine map action <-> ctrl per actuator, from float32 copies of the ctrlrange."""

    low: np.ndarray  # (nu,) float32, ctrlrange lower bounds (rad)
    high: np.ndarray  # (nu,) float32, ctrlrange upper bounds (rad)

    @classmethod
    def from_model(cls, model: mujoco.MjModel, nu: int | None = None) -> ActionMap:
        """Bounds of the first `nu` actuators (all by default)."""
        ctrlrange = model.actuator_ctrlrange[: model.nu if nu is None else nu]
        if not model.actuator_ctrllimited[: len(ctrlrange)].all():
            raise ValueError("every actuator needs a ctrlrange for the normalised action map")
        low = ctrlrange[:, 0].astype(np.float32)
        high = ctrlrange[:, 1].astype(np.float32)
        low.setflags(write=False)
        high.setflags(write=False)
        return cls(low=low, high=high)

    @property
    def size(self) -> int:
        return int(self.low.shape[0])

    @functools.cached_property
    def _span(self) -> np.ndarray:
        return self.high - self.low  # float32, as HB computes it on every call

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        """Normalised action(s) (..., nu) in [-1, 1] -> ctrl (..., nu), joint targets in rad."""
        return (action + 1) / 2 * self._span + self.low

    def to_action(self, ctrl: np.ndarray) -> np.ndarray:
        """Inverse of `to_ctrl`: joint targets (..., nu) -> normalised action (..., nu) (HB `normalize_action`)."""
        return 2 * (ctrl - self.low) / (self.high - self.low) - 1
