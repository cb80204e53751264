"""Reward shaping: dm_control's `tolerance` and the terms HumanoidBench builds its rewards from.

`tolerance` has the semantics of `dm_control.utils.rewards.tolerance` (the function HumanoidBench
calls): 1 inside `bounds`, falling off with distance outside them through a sigmoid that equals
`value_at_margin` at distance `margin`. Scalars take a pure-Python path (the reward is computed on every
env step and numpy's per-call overhead would dominate); arrays take a vectorised numpy path. Both return
the same numbers.

Constants come from HumanoidBench 791405f (`humanoid_bench/envs/basic_locomotion_envs.py`, "HB").
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple, overload

import numpy as np

#: dm_control's default `value_at_margin`.
DEFAULT_VALUE_AT_MARGIN: Final = 0.1

#: Head height above which `standing` is 1 (m). HB `_STAND_HEIGHT`.
STAND_HEIGHT_M: Final = 1.65
#: Distance below the bound at which `standing` has fallen to 0.1 (m). HB `_STAND_HEIGHT / 4`.
STAND_MARGIN_M: Final = STAND_HEIGHT_M / 4
#: `torso_upright` (z-z entry of the torso's rotation matrix, unitless) above which `upright` is 1. HB.
UPRIGHT_BOUND: Final = 0.9
#: Linear fall-off distance of `upright`: from 0.9 down to -1 (upside down) reaches 0. HB.
UPRIGHT_MARGIN: Final = 1.9
#: Actuator force (N·m) at which a joint's `small_control` term reaches 0 (quadratic). HB.
SMALL_CONTROL_MARGIN_NM: Final = 10.0
#: Horizontal centre-of-mass speed (m/s) at which `dont_move` falls to 0.1 (gaussian). HB.
DONT_MOVE_MARGIN_MPS: Final = 2.0
#: Forward speeds (m/s) above which `move` is 1: HB `_WALK_SPEED`, `_RUN_SPEED`.
WALK_SPEED_MPS: Final = 1.0
RUN_SPEED_MPS: Final = 5.0

SIGMOIDS: Final = (
    "gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic", "tanh_squared",
)
#: Normalised distances are capped here in the array path: every sigmoid is below 1e-100 by then, and
#: squaring stays finite.
_MAX_DISTANCE: Final = 1e100
#: cosh overflows a float64 beyond this argument; 1 / cosh is 0 there.
_COSH_OVERFLOW: Final = 710.0
#: Sigmoids that reach 0 at a finite distance, so `value_at_margin` may be 0 for them.
_SIGMOIDS_WITH_ZERO: Final = frozenset({"cosine", "linear", "quadratic"})


def _check_value_at_margin(value_at_margin: float, sigmoid: str) -> None:
    if sigmoid in _SIGMOIDS_WITH_ZERO:
        if not 0.0 <= value_at_margin < 1.0:
            raise ValueError(f"value_at_margin must be in [0, 1) for sigmoid {sigmoid!r}, "
                             f"got {value_at_margin}")
    elif not 0.0 < value_at_margin < 1.0:
        raise ValueError(f"value_at_margin must be in (0, 1) for sigmoid {sigmoid!r}, got {value_at_margin}")


def _sigmoid_scalar(d: float, value_at_1: float, sigmoid: str) -> float:
    """The sigmoid at normalised distance `d` >= 0 (1 at d = 0, `value_at_1` at d = 1)."""
    if sigmoid == "gaussian":
        t = d * math.sqrt(-2.0 * math.log(value_at_1))
        return math.exp(-0.5 * (t * t))  # t * t, not t ** 2: Python float ** raises on overflow
    if sigmoid == "linear":
        scaled = d * (1.0 - value_at_1)
        return 1.0 - scaled if abs(scaled) < 1.0 else 0.0
    if sigmoid == "quadratic":
        scaled = d * math.sqrt(1.0 - value_at_1)
        return 1.0 - scaled * scaled if abs(scaled) < 1.0 else 0.0
    if sigmoid == "hyperbolic":
        scaled = abs(d * math.acosh(1.0 / value_at_1))
        return 1.0 / math.cosh(scaled) if scaled < _COSH_OVERFLOW else 0.0
    if sigmoid == "long_tail":
        t = d * math.sqrt(1.0 / value_at_1 - 1.0)
        return 1.0 / (t * t + 1.0)
    if sigmoid == "reciprocal":
        scale = 1.0 / value_at_1 - 1.0
        return 1.0 / (abs(d) * scale + 1.0)
    if sigmoid == "cosine":
        scaled = d * math.acos(2.0 * value_at_1 - 1.0) / math.pi
        return (1.0 + math.cos(math.pi * scaled)) / 2.0 if abs(scaled) < 1.0 else 0.0
    if sigmoid == "tanh_squared":
        scale = math.atanh(math.sqrt(1.0 - value_at_1))
        return 1.0 - math.tanh(d * scale) ** 2
    raise ValueError(f"unknown sigmoid {sigmoid!r}; known: {', '.join(SIGMOIDS)}")


def _sigmoid_array(d: np.ndarray, value_at_1: float, sigmoid: str) -> np.ndarray:
    """Vectorised `_sigmoid_scalar` (same formulas), for `d` in [0, _MAX_DISTANCE] or NaN."""
    if sigmoid == "gaussian":
        scaled = d * np.sqrt(-2.0 * np.log(value_at_1))
        return np.exp(-0.5 * (scaled * scaled))
    if sigmoid == "linear":
        scaled = d * (1.0 - value_at_1)
        return np.where(scaled < 1.0, 1.0 - scaled, 0.0)  # d >= 0: no abs needed; NaN gives 0
    if sigmoid == "quadratic":
        scaled = d * np.sqrt(1.0 - value_at_1)
        return np.where(scaled < 1.0, 1.0 - scaled * scaled, 0.0)
    if sigmoid == "hyperbolic":
        scaled = np.abs(d * np.arccosh(1.0 / value_at_1))
        return np.where(scaled < _COSH_OVERFLOW, 1.0 / np.cosh(np.minimum(scaled, _COSH_OVERFLOW)), 0.0)
    if sigmoid == "long_tail":
        scaled = d * np.sqrt(1.0 / value_at_1 - 1.0)
        return 1.0 / (scaled * scaled + 1.0)
    if sigmoid == "reciprocal":
        scale = 1.0 / value_at_1 - 1.0
        return 1.0 / (np.abs(d) * scale + 1.0)
    if sigmoid == "cosine":
        scaled = d * np.arccos(2.0 * value_at_1 - 1.0) / np.pi
        return np.where(np.abs(scaled) < 1.0, (1.0 + np.cos(np.pi * scaled)) / 2.0, 0.0)
    if sigmoid == "tanh_squared":
        scale = np.arctanh(np.sqrt(1.0 - value_at_1))
        return 1.0 - np.tanh(d * scale) ** 2
    raise ValueError(f"unknown sigmoid {sigmoid!r}; known: {', '.join(SIGMOIDS)}")


@overload
def tolerance(x: float, bounds: tuple[float, float] = ..., margin: float = ..., sigmoid: str = ...,
              value_at_margin: float = ...) -> float: ...
@overload
def tolerance(x: np.ndarray, bounds: tuple[float, float] = ..., margin: float = ..., sigmoid: str = ...,
              value_at_margin: float = ...) -> np.ndarray: ...
def tolerance(x, bounds=(0.0, 0.0), margin=0.0, sigmoid="gaussian", value_at_margin=DEFAULT_VALUE_AT_MARGIN):
    """1 where `bounds[0] <= x <= bounds[1]`, else a sigmoid of the distance to the nearer bound.

    Args:
      x: a scalar (returns a float) or an array (returns a float64 array of the same shape).
      bounds: (lower, upper), lower <= upper; either may be infinite.
      margin: distance at which the sigmoid equals `value_at_margin`; 0 makes the result an indicator
        of the bounds (then `value_at_margin` is not used, as in dm_control).
      sigmoid: one of `SIGMOIDS`. Checked on every call (dm_control checks it only when margin > 0).
      value_at_margin: in (0, 1), or [0, 1) for the sigmoids that reach 0 (linear, quadratic, cosine).

    NaN in `x` gives NaN or 0 as in dm_control (no bound contains NaN).
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"lower bound must be <= upper bound, got bounds={bounds}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"unknown sigmoid {sigmoid!r}; known: {', '.join(SIGMOIDS)}")
    if margin > 0:
        _check_value_at_margin(value_at_margin, sigmoid)

    # Scalars (np.float64 is a float subclass, so MuJoCo's scalars are caught by the first test).
    if isinstance(x, float) or isinstance(x, (int, np.integer, np.floating)):
        x = float(x)
        if lower <= x <= upper:
            return 1.0
        if margin == 0:
            return 0.0
        d = (lower - x if x < lower else x - upper) / margin
        return _sigmoid_scalar(d, value_at_margin, sigmoid)

    arr = np.asarray(x, dtype=np.float64)
    if margin == 0:
        return ((lower <= arr) & (arr <= upper)).astype(np.float64)
    if math.isfinite(lower) and math.isfinite(upper):
        # Distance to the bounds: <= 0 inside, > 0 outside (dm_control's value there), NaN for NaN.
        d = np.maximum(lower - arr, arr - upper)
    else:
        # An infinite bound: compute the distance only where it is defined (no inf - inf), NaN kept.
        d = np.zeros(arr.shape)
        np.subtract(lower, arr, out=d, where=arr < lower)
        np.subtract(arr, upper, out=d, where=arr > upper)
        np.copyto(d, arr, where=np.isnan(arr))
    d /= margin
    # Inside the bounds d becomes 0, where every sigmoid is exactly 1 (dm_control's in-bounds value); the
    # cap keeps every sigmoid from overflowing without np.errstate, which costs more than this arithmetic.
    np.minimum(np.maximum(d, 0.0, out=d), _MAX_DISTANCE, out=d)  # np.clip does this 2x slower
    return _sigmoid_array(d, value_at_margin, sigmoid)


# --- HumanoidBench's shared terms -------------------------------------------------------------------


def standing(head_height: float, bound: float = STAND_HEIGHT_M, margin: float = STAND_MARGIN_M) -> float:
    """1 when the head is at least `bound` metres high (gaussian fall-off below). HB `standing`."""
    return tolerance(head_height, bounds=(bound, math.inf), margin=margin)


def upright(torso_upright: float, bound: float = UPRIGHT_BOUND, margin: float = UPRIGHT_MARGIN) -> float:
    """1 when the torso's z axis is within acos(bound) of vertical, linear to 0 over `margin`. HB."""
    return tolerance(torso_upright, bounds=(bound, math.inf), margin=margin, sigmoid="linear",
                     value_at_margin=0.0)


def small_control(actuator_forces: np.ndarray) -> float:
    """(4 + mean over actuators of a quadratic penalty reaching 0 at 10 N·m) / 5, in [0.8, 1]. HB."""
    per_actuator = tolerance(np.asarray(actuator_forces), margin=SMALL_CONTROL_MARGIN_NM,
                             sigmoid="quadratic", value_at_margin=0.0)
    # add.reduce / size is exactly what ndarray.mean computes (HB), without its Python-level overhead.
    return (4.0 + float(np.add.reduce(per_actuator)) / per_actuator.size) / 5.0


def move(com_vx: float, speed: float) -> float:
    """(5 * linear ramp of forward speed from 0 to `speed` m/s + 1) / 6, in [1/6, 1]. HB `move`.

    `speed` must be > 0 (it is also the margin); stand uses `dont_move` instead.
    """
    ramp = tolerance(com_vx, bounds=(speed, math.inf), margin=speed, sigmoid="linear", value_at_margin=0.0)
    return (5.0 * ramp + 1.0) / 6.0


def dont_move(com_vel_xy: np.ndarray) -> float:
    """Mean over x and y of a gaussian of the horizontal centre-of-mass velocity (0.1 at 2 m/s). HB."""
    vx, vy = com_vel_xy  # two scalar calls: same numbers as HB's array mean, a tenth of the time
    return (tolerance(float(vx), margin=DONT_MOVE_MARGIN_MPS) + tolerance(float(vy), margin=DONT_MOVE_MARGIN_MPS)) / 2


class StandTerms(NamedTuple):
    """The terms most HumanoidBench tasks start from, under HumanoidBench's info keys."""

    standing: float
    upright: float
    small_control: float

    @property
    def stand_reward(self) -> float:
        return self.standing * self.upright

    def info(self) -> dict[str, float]:
        return {"stand_reward": self.stand_reward, "small_control": self.small_control,
                "standing": self.standing, "upright": self.upright}


def stand_terms(head_height: float, torso_upright: float, actuator_forces: np.ndarray, *,
                head_bound: float = STAND_HEIGHT_M, upright_bound: float = UPRIGHT_BOUND) -> StandTerms:
    """standing, upright and small_control as HB's stand, walk, run, hurdle, pole and balance tasks compute them.

    The head margin stays 1.65 / 4 m when a task raises the bound (balance), as in HB.
    """
    return StandTerms(standing(head_height, bound=head_bound), upright(torso_upright, bound=upright_bound),
                      small_control(actuator_forces))
