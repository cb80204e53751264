"""`ezm-preflight BUNDLE --robot ROBOT.yaml`: does this bundle fit this robot? A diff, before any motion.

The robot's description is a YAML file its integrator writes (`python -m sim_bridge.bundle_robot OUT.yaml`
writes the simulated H1's), read strictly: every key below is required, an unknown key is an error, and nothing falls back
to a default (holosoma#125 traced a fall to a missing action-scale key that silently took a default).

    robot: h1                        # a name, compared with the bundle's
    control_rate_hz: 50.0            # the rate the robot's low-level side expects commands at
    joints:                          # in the order of the robot's joint_states / motor indices
      - {name: left_hip_yaw, lower: -0.43, upper: 0.43}
      ...

Compared: robot name, joint count and order, each joint's position limits against the targets the bundle
can send (its ctrl range must lie within the robot's limits), and the control rate. The bundle does not
record the servo gains it was trained with (HumanoidBench's, in the simulator's model), so gains are not
compared; the report says so. The safety node runs the same check at start when given `robot_description`
and then refuses PLAN on any difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from ezm_ros.manifest import RobotSpec

_TOP_KEYS = {"robot", "control_rate_hz", "joints"}
_JOINT_KEYS = {"name", "lower", "upper"}
#: Targets within this of a limit still count as inside it (rad; float32 rounding of the bundle's ranges).
LIMIT_TOLERANCE_RAD = 1e-5
RATE_TOLERANCE = 1e-6


class DescriptionError(ValueError):
    """A robot description that is not exactly what the format asks for; the message names the key."""


@dataclasses.dataclass(frozen=True)
class RobotDescription:
    name: str
    control_rate_hz: float
    joints: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DescriptionError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_description(data: Any, source: str = "robot description") -> RobotDescription:
    if not isinstance(data, dict):
        raise DescriptionError(f"{source}: a mapping with {sorted(_TOP_KEYS)} expected")
    missing, unknown = _TOP_KEYS - set(data), set(data) - _TOP_KEYS
    if missing or unknown:
        raise DescriptionError(f"{source}: " + "; ".join(
            part for part in (f"missing {sorted(missing)}" if missing else "",
                              f"unknown {sorted(unknown)}" if unknown else "") if part))
    if not isinstance(data["robot"], str) or not data["robot"]:
        raise DescriptionError(f"{source}: robot must be a name")
    rate = _number(data["control_rate_hz"], f"{source}: control_rate_hz")
    if rate <= 0:
        raise DescriptionError(f"{source}: control_rate_hz must be > 0")
    if not isinstance(data["joints"], list) or not data["joints"]:
        raise DescriptionError(f"{source}: joints must be a non-empty list")
    names, lower, upper = [], [], []
    for i, joint in enumerate(data["joints"]):
        where = f"{source}: joints[{i}]"
        if not isinstance(joint, dict) or set(joint) != _JOINT_KEYS:
            keys = sorted(joint) if isinstance(joint, dict) else type(joint).__name__
            raise DescriptionError(f"{where} must have exactly {sorted(_JOINT_KEYS)}, got {keys}")
        if not isinstance(joint["name"], str) or not joint["name"]:
            raise DescriptionError(f"{where}.name must be a joint name")
        low, high = _number(joint["lower"], f"{where}.lower"), _number(joint["upper"], f"{where}.upper")
        if low >= high:
            raise DescriptionError(f"{where}: lower {low} is not below upper {high}")
        names.append(joint["name"])
        lower.append(low)
        upper.append(high)
    if len(set(names)) != len(names):
        raise DescriptionError(f"{source}: joint names repeat")
    return RobotDescription(data["robot"], rate, tuple(names), tuple(lower), tuple(upper))


def load_description(path: str | Path) -> RobotDescription:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DescriptionError(f"{path}: {err}") from None
    return parse_description(data, str(path))


def preflight(robot: RobotSpec, description: RobotDescription) -> tuple[list[str], list[str]]:
    """(differences that must stop PLAN, notes). Empty differences: the bundle fits the robot."""
    problems, notes = [], []
    if robot.name != description.name:
        problems.append(f"robot: bundle {robot.name!r}, robot {description.name!r}")
    if tuple(robot.joint_names) != description.joints:
        problems.append(f"joints: bundle has {len(robot.joint_names)}, robot {len(description.joints)}")
        for i in range(max(len(robot.joint_names), len(description.joints))):
            a = robot.joint_names[i] if i < len(robot.joint_names) else "-"
            b = description.joints[i] if i < len(description.joints) else "-"
            if a != b:
                problems.append(f"  joint {i}: bundle {a!r}, robot {b!r}")
    else:
        for name, bundle_low, bundle_high, low, high in zip(robot.joint_names, robot.ctrl_low, robot.ctrl_high,
                                                           description.lower, description.upper):
            if bundle_low < low - LIMIT_TOLERANCE_RAD or bundle_high > high + LIMIT_TOLERANCE_RAD:
                problems.append(f"  limits of {name}: the bundle sends [{bundle_low:.4g}, {bundle_high:.4g}] rad, "
                                f"the robot allows [{low:.4g}, {high:.4g}]")
    bundle_rate = 1.0 / robot.control_dt_s
    if abs(bundle_rate - description.control_rate_hz) > RATE_TOLERANCE * bundle_rate:
        problems.append(f"control rate: bundle {bundle_rate:g} Hz, robot {description.control_rate_hz:g} Hz")
    notes.append("gains: not compared (the bundle does not record the servo gains it was trained with)")
    return problems, notes


def main(argv: list[str] | None = None) -> int:
    from ezm_ros import model_path
    from ezm_ros.bundle import BundleError, read_manifest

    parser = argparse.ArgumentParser(prog="ezm-preflight", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", nargs="?", default="", help="bundle directory (default: the shipped model)")
    parser.add_argument("--robot", type=Path, required=True, help="the robot's description (YAML, format above)")
    args = parser.parse_args(argv)
    try:
        robot = read_manifest(model_path.resolve(args.bundle)).robot
        description = load_description(args.robot)
    except (BundleError, FileNotFoundError, DescriptionError) as err:
        print(f"ezm-preflight: {err}", file=sys.stderr)
        return 2
    problems, notes = preflight(robot, description)
    for note in notes:
        print(f"note: {note}")
    if problems:
        print("MISMATCH: the planner must not drive this robot with this bundle:")
        print("\n".join(problems))
        return 1
    print(f"OK: the bundle fits {description.name} ({len(description.joints)} joints, "
          f"{description.control_rate_hz:g} Hz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
