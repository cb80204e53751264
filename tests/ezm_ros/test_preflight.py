"""The robot description the pre-flight check reads: strict, so a typo or a missing key is an error, never a
default; and the check names every difference."""

from __future__ import annotations

import pytest

from ezm_ros.bundle import read_manifest
from ezm_ros.preflight import DescriptionError, parse_description, preflight

GOOD = {"robot": "h1", "control_rate_hz": 50.0, "joints": [{"name": "a", "lower": -1.0, "upper": 1.0},
                                                           {"name": "b", "lower": -0.5, "upper": 0.5}]}


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("control_rate_hz"), r"missing \['control_rate_hz'\]"),
    (lambda d: d.update(control_rate=50.0), r"unknown \['control_rate'\]"),
    (lambda d: d["joints"][0].pop("upper"), r"joints\[0\] must have exactly"),
    (lambda d: d["joints"][0].update(kp=200.0), r"joints\[0\] must have exactly"),
    (lambda d: d["joints"][1].update(name="a"), "joint names repeat"),
    (lambda d: d["joints"][0].update(lower=2.0), "is not below upper"),
    (lambda d: d["joints"][0].update(lower=float("nan")), "finite number"),
    (lambda d: d["joints"][0].update(lower=True), "finite number"),
    (lambda d: d.update(control_rate_hz=0), "must be > 0"),
    (lambda d: d.update(joints=[]), "non-empty list"),
])
def test_a_description_that_is_not_exactly_the_format_is_refused(edit, message):
    data = {**GOOD, "joints": [dict(j) for j in GOOD["joints"]]}
    edit(data)
    with pytest.raises(DescriptionError, match=message):
        parse_description(data)


def test_preflight_names_every_difference(tiny_bundle):
    robot = read_manifest(tiny_bundle).robot
    joints = [{"name": n, "lower": lo, "upper": hi} for n, lo, hi in zip(robot.joint_names, robot.ctrl_low,
                                                                         robot.ctrl_high)]
    same = parse_description({"robot": robot.name, "control_rate_hz": 1 / robot.control_dt_s, "joints": joints})
    assert preflight(robot, same)[0] == []
    swapped = [joints[1], joints[0], *joints[2:]]
    other = parse_description({"robot": "g1", "control_rate_hz": 100.0, "joints": swapped})
    problems = "\n".join(preflight(robot, other)[0])
    assert "robot: bundle 'h1', robot 'g1'" in problems and "joint 0:" in problems and "control rate" in problems
