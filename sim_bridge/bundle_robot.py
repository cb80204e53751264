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


__all__ = ["BundleError", "OtherRobotError", "check_bundle_robot"]
