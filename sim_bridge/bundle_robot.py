"""Whether a model bundle drives the simulated H1: its joints in order and its ctrl ranges.

The planner takes the robot from the bundle (it runs where MuJoCo is not), so the simulator's side of the
contract is checked on the simulator's side: by `ezm-sim` before it starts any node, and by the simulator
node at start (`model_path`), which is what `ros2 launch` runs.
"""

from __future__ import annotations

from pathlib import Path

from ezm_ros.bundle import BundleError, read_manifest
from ezm_ros.manifest import robot_mismatches
from sim_bridge.h1 import constants
from sim_bridge.h1.actuators import ActionMap
from sim_bridge.h1.model import build_h1_model
from sim_bridge.joint_servos import Servos


class OtherRobotError(RuntimeError):
    """The bundle was made for another robot than the simulated H1; the message lists the differences."""


def check_bundle_robot(bundle: Path, action_map: ActionMap | None = None) -> None:
    """Return if `bundle` drives the simulated H1; OtherRobotError listing the differences if not.
    BundleError / FileNotFoundError where the manifest cannot be read.

    action_map: the H1's (built from the model when not given)."""
    manifest = read_manifest(bundle)
    if action_map is None:
        action_map = ActionMap.from_model(build_h1_model())
    mismatch = robot_mismatches(manifest.robot, constants.ACTUATORS, action_map.low.tolist(),
                                action_map.high.tolist())
    if mismatch:
        raise OtherRobotError(f"{bundle} was made for another robot than the simulated H1:\n" + "\n".join(mismatch))


def describe_simulated_h1() -> dict:
    """The simulated H1 in ezm_ros.preflight's robot-description format (joints in actuator order, each
    servo's target range as its limits and its gains, the control rate)."""
    model = build_h1_model()
    action_map = ActionMap.from_model(model)
    servos = Servos(model, action_map.size)
    return {"robot": constants.ROBOT_NAME, "control_rate_hz": 1.0 / constants.CONTROL_DT_S,
            "joints": [{"name": name, "lower": float(low), "upper": float(high), "kp": float(kp), "kd": float(kd)}
                       for name, low, high, kp, kd in zip(constants.ACTUATORS, action_map.low, action_map.high,
                                                          servos.model_kp, servos.model_kd)]}


def main(argv: list[str] | None = None) -> int:
    """`python -m sim_bridge.bundle_robot OUT.yaml`: write the simulated H1's description (for ezm-preflight and
    the safety node's robot_description)."""
    import sys

    import yaml

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sim_bridge.bundle_robot OUT.yaml", file=sys.stderr)
        return 2
    Path(args[0]).write_text(yaml.safe_dump(describe_simulated_h1(), sort_keys=False))
    print(f"wrote {args[0]}")
    return 0


__all__ = ["BundleError", "OtherRobotError", "check_bundle_robot", "describe_simulated_h1"]


if __name__ == "__main__":
    raise SystemExit(main())
