"""`ezm-preflight BUNDLE --robot ROBOT.yaml`: does this bundle fit this robot? A diff, before any motion.

The robot's description is a YAML file its integrator writes (`python -m sim_bridge.bundle_robot OUT.yaml`
writes the simulated H1's), read strictly: every key below is required, an unknown key is an error, and nothing falls back
to a default (holosoma#125 traced a fall to a missing action-scale key that silently took a default).

    robot: h1                        # a name, compared with the bundle's
    control_rate_hz: 50.0            # the rate the robot's low-level side expects commands at
    joints:                          # in the order of the robot's joint_states / motor indices
      - {name: left_hip_yaw, lower: -0.43, upper: 0.43, kp: 200.0, kd: 5.0}   # rad; N·m/rad, N·m·s/rad
      ...

Compared: robot name, joint count and order, each joint's position limits against the targets the bundle
can send (its ctrl range must lie within the robot's limits), each joint's servo gains against those the
model was trained with (the bundle's robot.kp and robot.kd: a policy trained at one stiffness acts otherwise
at another), and the control rate. A bundle exported before it recorded its gains cannot be compared: that
is a difference too, never a silent pass. The safety node runs the same check at start when given
`robot_description` and then refuses PLAN on any difference.
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
_JOINT_KEYS = {"name", "lower", "upper", "kp", "kd"}
#: Targets within this of a limit still count as inside it (rad; float32 rounding of the bundle's ranges).
LIMIT_TOLERANCE_RAD = 1e-5
RATE_TOLERANCE = 1e-6
#: Gains equal to within this fraction count as the same (a YAML writer's rounding).
GAIN_TOLERANCE = 1e-6


class DescriptionError(ValueError):
    """A robot description that is not exactly what the format asks for; the message names the key."""


@dataclasses.dataclass(frozen=True)
class RobotDescription:
    name: str
    control_rate_hz: float
    joints: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]


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
    names, lower, upper, kp, kd = [], [], [], [], []
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
        gains = _number(joint["kp"], f"{where}.kp"), _number(joint["kd"], f"{where}.kd")
        if min(gains) < 0:
            raise DescriptionError(f"{where}: kp and kd must be >= 0")
        names.append(joint["name"])
        lower.append(low)
        upper.append(high)
        kp.append(gains[0])
        kd.append(gains[1])
    if len(set(names)) != len(names):
        raise DescriptionError(f"{source}: joint names repeat")
    return RobotDescription(data["robot"], rate, tuple(names), tuple(lower), tuple(upper), tuple(kp), tuple(kd))


def load_description(path: str | Path) -> RobotDescription:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DescriptionError(f"{path}: {err}") from None
    return parse_description(data, str(path))


def preflight(robot: RobotSpec, description: RobotDescription) -> list[str]:
    """The differences that must stop PLAN; none: the bundle fits the robot."""
    problems = []
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
        if not robot.kp:
            problems.append("gains: the bundle does not record the servo gains it was trained with (exported before "
                            "they were); export it again to compare them")
        else:
            for name, *pair in zip(robot.joint_names, robot.kp, robot.kd, description.kp, description.kd):
                bundle_kp, bundle_kd, kp, kd = pair
                if not (_same(bundle_kp, kp) and _same(bundle_kd, kd)):
                    problems.append(f"  gains of {name}: trained at kp {bundle_kp:g}, kd {bundle_kd:g}; the robot "
                                    f"runs kp {kp:g}, kd {kd:g}")
    bundle_rate = 1.0 / robot.control_dt_s
    if abs(bundle_rate - description.control_rate_hz) > RATE_TOLERANCE * bundle_rate:
        problems.append(f"control rate: bundle {bundle_rate:g} Hz, robot {description.control_rate_hz:g} Hz")
    return problems


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= GAIN_TOLERANCE * max(abs(a), abs(b), 1.0)


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
    problems = preflight(robot, description)
    if problems:
        print("MISMATCH: the planner must not drive this robot with this bundle:")
        print("\n".join(problems))
        return 1
    print(f"OK: the bundle fits {description.name} ({len(description.joints)} joints, "
          f"{description.control_rate_hz:g} Hz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
