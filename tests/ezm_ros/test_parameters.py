"""Node parameters: one set of defaults, bounds rclpy enforces, and no writable parameter that is ignored.

Each node is built in this process (real rclpy, its real constructor: the simulator loads MuJoCo, the
planner the shipped bundle), with no parameter file, so what it reports are its declared defaults.
"""

from __future__ import annotations

import contextlib
import importlib

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from rclpy.parameter import Parameter  # noqa: E402

from ezm_ros import nodes  # noqa: E402
from ezm_ros.node_runtime import StartupError  # noqa: E402

# module, class, {live parameter: (a value inside its bounds, one outside)}
NODES = {
    "ezm_sim": ("sim_bridge.sim_node", "SimNode",
                {"command_timeout_s": (0.5, -1.0), "damping_kd": (4.0, -5.0), "reset_after_fall_s": (5.0, -1.0),
                 "perturbation": ("high", "extreme")}),
    "ezm_planner": ("ezm_ros.planner_node", "PlannerNode", {"stale_state_s": (0.2, -1.0)}),
    "ezm_visualization": ("sim_bridge.visualization_node", "VisualizationNode", {"scene_period_s": (5.0, 0.0)}),
}


@contextlib.contextmanager
def _node(name: str, args: list[str] | None = None):
    module, cls, _ = NODES[name]
    rclpy.init(args=["--ros-args", *(args or [])])
    node = None
    try:
        node = getattr(importlib.import_module(module), cls)()
        yield node
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown()


@pytest.mark.parametrize("name", sorted(NODES))
def test_the_params_file_states_the_declared_defaults_and_only_live_parameters_are_writable(name):
    section = yaml.safe_load(nodes.config_file(nodes.PARAMS_FILE).read_text())[f"/**/{name}"]["ros__parameters"]
    live = NODES[name][2]
    launched = next(spec for spec in nodes.stack_nodes(nodes.StackOptions()) if spec.name == name).parameters
    with _node(name) as node:
        for key, value in launched.items():  # what the launch arguments' defaults pass equals the default
            assert node.get_parameter(key).value == value, f"{name}.{key}: launch default {value!r} differs"
        for key, value in section.items():
            if key != "use_sim_time":  # rclpy's own; the file sets it for the markers' stamps
                assert node.get_parameter(key).value == value, f"{name}.{key}: file {value!r}, node's default differs"
        for key in node._parameters:
            if key == "use_sim_time" or key.startswith("qos_overrides."):
                continue
            writable = key in live or (name, key) == ("ezm_planner", "model_path")  # a swap (test_planner)
            assert node.describe_parameter(key).read_only != writable, f"{name}.{key}: writable iff applied"
        for key, (good, bad) in live.items():
            refused = node.set_parameters([Parameter(key, value=bad)])[0]
            assert not refused.successful and ("range" in refused.reason.lower() or "one of" in refused.reason), (
                key, refused.reason)
            assert getattr(node.p, key) != bad and node.get_parameter(key).value != bad
            assert node.set_parameters([Parameter(key, value=good)])[0].successful
            assert getattr(node.p, key) == good  # applied to what the node's code reads, not only stored
        read_only = next(key for key in section if node.describe_parameter(key).read_only)
        assert not node.set_parameters([Parameter(read_only, value=section[read_only])])[0].successful


def test_the_params_file_states_the_safety_nodes_defaults_and_its_joystick_mapping():
    """The safety node (safety:=true) has its section too: every key it declares, at its declared default, and
    the joystick mapping the node leaves to configuration (kept in the YAML). The launch sets its simulation values
    (autostart and shorter timeouts) beside the file, as for the other nodes."""
    from ezm_ros.safety_node import INTENTS, SafetyNode

    section = yaml.safe_load(nodes.config_file(nodes.PARAMS_FILE).read_text())["/**/ezm_safety"]["ros__parameters"]
    rclpy.init(args=["--ros-args"])
    node = None
    try:
        node = SafetyNode()
        rclpy_own = {"use_sim_time", "start_type_description_service"}  # every rclpy node declares these
        declared = {key for key in node._parameters if key not in rclpy_own and not key.startswith("qos_overrides.")}
        assert set(section) == declared, f"file lacks {declared - set(section)}, has unknown {set(section) - declared}"
        for key, value in section.items():
            if key != "joy_buttons":  # the node maps no button by default: a mapping assumes one pad's layout
                assert node.get_parameter(key).value == value, f"ezm_safety.{key}: file {value!r}, default differs"
        assert list(node.get_parameter("joy_buttons").value) == [-1] * len(INTENTS)
        mapping = dict(zip(INTENTS, section["joy_buttons"]))  # the file's: joy_linux's Xbox layout
        assert mapping["passive"] == -1 and mapping["estop"] >= 0, mapping
        assert len(set(section["joy_buttons"]) - {-1}) == len(INTENTS) - 1, "one button per intent, none shared"
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown()


@pytest.mark.parametrize("name, args, reason", [
    ("ezm_sim", ["-p", "command_timeout_s:=30.0"], "command_timeout_s"),
    ("ezm_sim", ["-p", "seed:=-3"], "seed"),
    ("ezm_planner", ["-p", "num_simulations:=1000000000"], "num_simulations"),
    ("ezm_planner", ["-p", "deadline_ms:=25.0"], "deadline_ms 25 leaves nothing"),
    ("ezm_planner", ["-p", "stale_state_s:=\"soon\""], "stale_state_s"),
])
def test_an_absurd_parameter_at_start_stops_the_node_with_its_name(name, args, reason):
    with pytest.raises(StartupError, match=reason):
        with _node(name, args):
            pass
