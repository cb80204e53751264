"""The robot description the pre-flight check reads: strict, so a typo or a missing key is an error, never a
default; and the check names every difference."""

from __future__ import annotations

import pytest

from ezm_ros.bundle import read_manifest
from ezm_ros.preflight import DescriptionError, parse_description, preflight

GOOD = {"robot": "h1", "control_rate_hz": 50.0,
        "joints": [{"name": "a", "lower": -1.0, "upper": 1.0, "kp": 200.0, "kd": 5.0},
                   {"name": "b", "lower": -0.5, "upper": 0.5, "kp": 40.0, "kd": 2.0}]}


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("control_rate_hz"), r"missing \['control_rate_hz'\]"),
    (lambda d: d.update(control_rate=50.0), r"unknown \['control_rate'\]"),
    (lambda d: d["joints"][0].pop("upper"), r"joints\[0\] must have exactly"),
    (lambda d: d["joints"][0].update(ki=1.0), r"joints\[0\] must have exactly"),
    (lambda d: d["joints"][1].pop("kd"), r"joints\[1\] must have exactly"),
    (lambda d: d["joints"][0].update(kp=-1.0), "kp and kd must be >= 0"),
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
    joints = [{"name": n, "lower": lo, "upper": hi, "kp": kp, "kd": kd} for n, lo, hi, kp, kd in
              zip(robot.joint_names, robot.ctrl_low, robot.ctrl_high, robot.kp, robot.kd)]
    same = parse_description({"robot": robot.name, "control_rate_hz": 1 / robot.control_dt_s, "joints": joints})
    assert preflight(robot, same) == []
    swapped = [joints[1], joints[0], *joints[2:]]
    other = parse_description({"robot": "g1", "control_rate_hz": 100.0, "joints": swapped})
    problems = "\n".join(preflight(robot, other))
    assert "robot: bundle 'h1', robot 'g1'" in problems and "joint 0:" in problems and "control rate" in problems
    # Unitree's H1 deploy gains (knee kp 200, kd 4; ankle kp 40, kd 2) are not HumanoidBench's, which the model
    # was trained with (knee kp 300, kd 6): a real robot at its own gains is a difference, by joint.
    stiffer = [dict(j, kp=j["kp"] * 1.5) if j["name"] == "left_knee" else j for j in joints]
    problems = preflight(robot, parse_description({**same_dict(robot, joints), "joints": stiffer}))
    assert len(problems) == 1 and problems[0].startswith("  gains of left_knee: trained at kp 300"), problems


def test_a_bundle_that_records_no_gains_is_a_difference_never_a_silent_pass(tiny_bundle):
    import dataclasses

    robot = read_manifest(tiny_bundle).robot
    old = dataclasses.replace(robot, kp=(), kd=())  # a bundle exported before gains were recorded
    joints = [{"name": n, "lower": lo, "upper": hi, "kp": kp, "kd": kd} for n, lo, hi, kp, kd in
              zip(robot.joint_names, robot.ctrl_low, robot.ctrl_high, robot.kp, robot.kd)]
    problems = preflight(old, parse_description(same_dict(robot, joints)))
    assert problems == ["gains: the bundle does not record the servo gains it was trained with (exported before "
                        "they were); export it again to compare them"]


def same_dict(robot, joints) -> dict:
    return {"robot": robot.name, "control_rate_hz": 1 / robot.control_dt_s, "joints": joints}
