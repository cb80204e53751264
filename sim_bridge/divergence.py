"""Detect a diverged simulation after a step.

MuJoCo handles a blow-up (NaN, inf or huge values in qpos, qvel or qacc) by printing a warning, counting
it in `mjData.warning` and resetting the data to `qpos0` (unless auto-reset is disabled). From outside,
the state then looks finite and plausible. So a step compares the warning counters before and after, and
also checks that the state is finite (in case auto-reset is off).
"""

from __future__ import annotations

import mujoco
import numpy as np


def autoreset_enabled(model: mujoco.MjModel) -> bool:
    return not model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_AUTORESET


def warning_counts(data: mujoco.MjData) -> np.ndarray:
    """Snapshot of MuJoCo's warning counters (mjNWARNING,)."""
    return data.warning.number.copy()


def physics_error(data: mujoco.MjData, counts_before: np.ndarray, check_finite: bool = True) -> str | None:
    """A description of what went wrong since `counts_before`, or None if the step was healthy.

    `check_finite=False` skips the finiteness test, which is redundant while MuJoCo's auto-reset is on:
    then a non-finite or huge qpos, qvel or qacc always raises a warning and resets the data.
    """
    counts = data.warning.number
    if (counts != counts_before).any():
        raised = np.flatnonzero(counts > counts_before)
        names = ", ".join(mujoco.mjtWarning(int(i)).name for i in raised)
        return f"MuJoCo raised {names} at t={data.time:.3f} s (and reset the data, unless auto-reset is off)"
    if not check_finite:
        return None
    # One finiteness test for all three arrays: a sum of squares is finite only if every entry is.
    squares = np.dot(data.qpos, data.qpos) + np.dot(data.qvel, data.qvel) + np.dot(data.qacc, data.qacc)
    if np.isfinite(squares):
        return None
    for field in ("qpos", "qvel", "qacc"):
        if not np.isfinite(getattr(data, field)).all():
            return f"non-finite {field} at t={data.time:.3f} s"
    return f"state too large to square (|x| > 1e154) at t={data.time:.3f} s"
