"""`sim_bridge.rewards`: tolerance against values worked out by hand from its formulas, and HB's terms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_bridge import rewards
from sim_bridge.rewards import tolerance

ALL_SIGMOIDS = rewards.SIGMOIDS


@pytest.mark.parametrize("sigmoid", ALL_SIGMOIDS)
@pytest.mark.parametrize("value_at_margin", [0.1, 0.5, 0.9])
def test_tolerance_equals_value_at_margin(sigmoid, value_at_margin):
    bounds, margin = (-1.0, 2.0), 0.7
    for x in (2.0 + margin, -1.0 - margin):  # one margin above, one below
        assert tolerance(x, bounds, margin, sigmoid, value_at_margin) == pytest.approx(value_at_margin, abs=1e-12)
    # Array input gives the same value, elementwise.
    xs = np.array([2.0 + margin, -1.0 - margin])
    np.testing.assert_allclose(tolerance(xs, bounds, margin, sigmoid, value_at_margin), value_at_margin, atol=1e-12)


@pytest.mark.parametrize("sigmoid", ALL_SIGMOIDS)
def test_tolerance_is_one_inside_bounds_and_decreasing_outside(sigmoid):
    inside = np.linspace(-1.0, 2.0, 7)
    np.testing.assert_array_equal(tolerance(inside, (-1.0, 2.0), 1.0, sigmoid), 1.0)
    outside = 2.0 + np.linspace(0.01, 3.0, 30)
    values = tolerance(outside, (-1.0, 2.0), 1.0, sigmoid)
    assert np.all(np.diff(values) <= 1e-15) and np.all(values < 1.0) and np.all(values >= 0.0)


def test_tolerance_margin_zero_is_an_indicator():
    xs = np.array([-1.5, -1.0, 0.0, 2.0, 2.0001])
    np.testing.assert_array_equal(tolerance(xs, (-1.0, 2.0)), [0.0, 1.0, 1.0, 1.0, 0.0])
    assert tolerance(0.0) == 1.0 and tolerance(1e-9) == 0.0  # default bounds (0, 0)


def test_tolerance_hand_computed_values():
    # gaussian: exp(-0.5 (d * sqrt(-2 ln v))^2) = v ** (d^2); at d = 0.5, v = 0.1 -> 0.1 ** 0.25
    assert tolerance(1.5, (0.0, 1.0), margin=1.0) == pytest.approx(0.1 ** 0.25, abs=1e-15)
    # linear: 1 - d (1 - v); half a margin with v = 0 -> 0.5; beyond the margin -> 0
    assert tolerance(0.5, (1.0, math.inf), 1.0, "linear", 0.0) == pytest.approx(0.5, abs=1e-15)
    assert tolerance(-3.0, (1.0, math.inf), 1.0, "linear", 0.0) == 0.0
    # quadratic: 1 - (d sqrt(1 - v))^2; d = 0.5, v = 0 -> 0.75
    assert tolerance(5.0, margin=10.0, sigmoid="quadratic", value_at_margin=0.0) == pytest.approx(0.75, abs=1e-15)
    # long_tail: 1 / ((d sqrt(1/v - 1))^2 + 1); d = 2, v = 0.5 -> 1/5
    assert tolerance(3.0, (0.0, 1.0), 1.0, "long_tail", 0.5) == pytest.approx(0.2, abs=1e-15)
    # reciprocal: 1 / (d (1/v - 1) + 1); d = 2, v = 0.5 -> 1/3
    assert tolerance(-2.0, (0.0, 1.0), 1.0, "reciprocal", 0.5) == pytest.approx(1 / 3, abs=1e-15)
    # cosine: (1 + cos(pi d acos(2v - 1) / pi)) / 2; v = 0 -> (1 + cos(pi d)) / 2; d = 0.5 -> 0.5
    assert tolerance(1.5, (0.0, 1.0), 1.0, "cosine", 0.0) == pytest.approx(0.5, abs=1e-15)
    # hyperbolic: 1 / cosh(d acosh(1/v)); tanh_squared: 1 - tanh(d atanh(sqrt(1 - v)))^2
    assert tolerance(2.0, (0.0, 1.0), 2.0, "hyperbolic", 0.5) == pytest.approx(1 / math.cosh(0.5 * math.acosh(2)))
    assert tolerance(2.0, (0.0, 1.0), 2.0, "tanh_squared", 0.5) == pytest.approx(
        1 - math.tanh(0.5 * math.atanh(math.sqrt(0.5))) ** 2)


def test_tolerance_scalar_and_array_paths_agree():
    rng = np.random.default_rng(0)
    xs = rng.normal(0.0, 3.0, 200)
    for sigmoid in ALL_SIGMOIDS:
        vam = 0.0 if sigmoid in ("linear", "quadratic", "cosine") else 0.3
        vector = tolerance(xs, (-0.5, 0.5), 1.3, sigmoid, vam)
        scalar = [tolerance(float(x), (-0.5, 0.5), 1.3, sigmoid, vam) for x in xs]
        np.testing.assert_allclose(vector, scalar, rtol=0, atol=1e-15)
    assert isinstance(tolerance(np.float64(0.3), (0.0, 1.0)), float)
    assert tolerance(xs, margin=1.0).shape == xs.shape


def test_tolerance_survives_huge_and_infinite_inputs():
    for sigmoid in ALL_SIGMOIDS:
        vam = 0.0 if sigmoid in ("linear", "quadratic", "cosine") else 0.1
        assert tolerance(1e200, (0.0, 1.0), 1.0, sigmoid, vam) == pytest.approx(0.0, abs=1e-12)
        assert tolerance(math.inf, (0.0, math.inf), 1.0, sigmoid, vam) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bounds": (1.0, 0.0)},  # lower > upper
        {"margin": -1.0},
        {"sigmoid": "sigmoid"},  # unknown
        {"margin": 1.0, "value_at_margin": 0.0},  # gaussian never reaches 0
        {"margin": 1.0, "value_at_margin": 1.0},
        {"margin": 1.0, "sigmoid": "linear", "value_at_margin": -0.1},
        {"margin": 1.0, "sigmoid": "linear", "value_at_margin": 1.0},
    ],
)
def test_tolerance_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        tolerance(0.5, **kwargs)


def test_standing_upright_and_move_terms():
    assert rewards.standing(1.7) == 1.0
    assert rewards.standing(rewards.STAND_HEIGHT_M - rewards.STAND_MARGIN_M) == pytest.approx(0.1)
    assert rewards.STAND_MARGIN_M == pytest.approx(0.4125)
    assert rewards.upright(1.0) == 1.0
    assert rewards.upright(-1.0) == 0.0  # 0.9 - 1.9: exactly the margin, linear with value 0
    assert rewards.upright(0.9 - 0.95) == pytest.approx(0.5)
    assert rewards.move(1.0, 1.0) == 1.0
    assert rewards.move(0.0, 1.0) == pytest.approx(1 / 6)
    assert rewards.move(0.5, 1.0) == pytest.approx((5 * 0.5 + 1) / 6)
    assert rewards.move(1.0, 5.0) == pytest.approx((5 * 0.2 + 1) / 6)


def test_small_control_and_dont_move_terms():
    forces = np.array([0.0, 5.0, -5.0, 10.0, 100.0])
    per_actuator = [1.0, 0.75, 0.75, 0.0, 0.0]
    assert rewards.small_control(forces) == pytest.approx((4 + np.mean(per_actuator)) / 5)
    assert rewards.small_control(np.zeros(19)) == 1.0
    assert rewards.dont_move(np.zeros(2)) == 1.0
    assert rewards.dont_move(np.array([2.0, 0.0])) == pytest.approx((0.1 + 1.0) / 2)
