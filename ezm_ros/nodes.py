"""The stack's one node list: `launch/sim.launch.py` and `ezm-sim` both start exactly these.

Each entry names the ROS executable (`lib/<package>/<executable>`, for `ros2 launch`), the Python module
with its `main` (for `ezm-sim`, which starts each node as `python -m <module>` where no ROS 2 install
is present), the node name (the key of its section in `launch/config/sim.params.yaml`) and the
parameters the launch arguments override. Launch arguments are declared here too, so the launch file
and `ezm-sim` offer the same ones with the same defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Final

from ezm_ros import topics

PACKAGE: Final = "ezm_ros"
#: The task at start, wherever it is not given: launch argument, `ezm-sim`, and each node's parameter.
DEFAULT_TASK: Final = "walk"
PARAMS_FILE: Final = "sim.params.yaml"
RVIZ_FILE: Final = "ezm_sim.rviz"
#: Where the launch files and their config live in the repository (colcon installs them under share/).
_REPO_LAUNCH_DIR: Final = Path(__file__).resolve().parent.parent / "launch"


def _truthy(value: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


@dataclasses.dataclass(frozen=True)
class StackOptions:
    """What the launch arguments select. These defaults are the launch arguments' defaults (one place:
    `LAUNCH_ARGUMENTS` is built from them); each field's `help` is its launch argument's description."""

    model: str = dataclasses.field(default="", metadata={
        "help": "Model bundle directory; empty: the model the repository ships (models/)."})
    task: str = dataclasses.field(default=DEFAULT_TASK, metadata={
        "help": "Task at start (short name or env id); switch later on ezm/task."})
    lockstep: bool = dataclasses.field(default=False, metadata={
        "help": "One simulation step per planner command (deterministic evaluation)."})
    seed: int = dataclasses.field(default=0, metadata={
        "help": "Seed of the simulator's resets and of the planner's search."})
    rviz: bool = dataclasses.field(default=True, metadata={
        "help": "Start rviz2 with launch/config/ezm_sim.rviz (skipped with a warning where rviz2 is not "
                "installed)."})
    web_view: bool = dataclasses.field(default=False, metadata={
        "help": "Serve the 3D scene in a browser at http://127.0.0.1:8080 (viser)."})
    namespace: str = dataclasses.field(default="", metadata={
        "help": "Namespace of every node and topic (a second robot runs beside the first)."})
    safety: bool = dataclasses.field(default=False, metadata={
        "help": "Put the safety layer and mode machine (ezm_ros safety_node) between the planner and the "
                "simulator; in simulation it walks to PLAN by itself (autostart), and ezm/mode/<intent> "
                "services switch modes."})
    record: bool = dataclasses.field(default=False, metadata={
        "help": "Record every topic to records/ezm-<UTC time>.mcap in the working directory (ezm_ros "
                "recorder_node; ezm-record-summary reads it)."})
    perturbation: str = dataclasses.field(default="none", metadata={
        "help": "Perturbed sim2sim in the simulator: none, low, medium or high (masses, friction, motor "
                "strength, latency, encoder noise and bias, period jitter, pushes; sim_bridge/perturbations.py). "
                "Live: ros2 param set /ezm_sim perturbation high."})
    publish_clock: bool = dataclasses.field(default=True, metadata={
        "help": "The simulator publishes /clock (one per ROS domain: false for a second stack, whose "
                "sim-time nodes then follow the first's clock)."})

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> StackOptions:
        """From launch-argument strings (missing ones take their defaults)."""
        parsed: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in values:
                continue
            text = values[field.name]
            kind = type(field.default)
            parsed[field.name] = _truthy(text) if kind is bool else int(text) if kind is int else text
        if "namespace" in parsed:
            parsed["namespace"] = parsed["namespace"].strip("/")
        return cls(**parsed)


@dataclasses.dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str  # launch arguments are strings; `StackOptions.from_strings` converts them
    description: str


def _launch_string(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


LAUNCH_ARGUMENTS: Final = tuple(
    LaunchArgument(field.name, _launch_string(field.default), field.metadata["help"])
    for field in dataclasses.fields(StackOptions))


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    package: str  # ROS package whose lib/ holds the executable
    executable: str
    name: str  # node name; its section in the params file
    module: str | None  # `python -m` entry for ezm-sim; None: not ours (rviz2), ezm-sim cannot start it
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)  # beside the params file
    arguments: tuple[str, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()  # (topic, to)
    essential: bool = False  # its exit ends the whole stack (the simulator, the planner), not a viewer's


def stack_nodes(options: StackOptions) -> list[NodeSpec]:
    """The nodes of `ros2 launch ezm_ros sim.launch.py` / `ezm-sim`, in start order. ValueError for options
    that cannot go together (the safety layer's watchdogs run on wall time, which lockstep does not keep)."""
    if options.safety and options.lockstep:
        raise ValueError("safety and lockstep cannot go together: the safety layer's watchdogs and rate limit "
                         "run on wall time, and a lockstep simulation keeps none")
    nodes = [
        NodeSpec("sim_bridge", "sim_node", "ezm_sim", "sim_bridge.sim_node",
                 {"task": options.task, "lockstep": options.lockstep, "seed": options.seed,
                  "publish_clock": options.publish_clock, "model_path": options.model,
                  "perturbation": options.perturbation}, essential=True),
        NodeSpec(PACKAGE, "planner_node", "ezm_planner", "ezm_ros.planner_node",
                 {"model_path": options.model, "task": options.task, "lockstep": options.lockstep,
                  "seed": options.seed}, essential=True,
                 remappings=((topics.JOINT_COMMAND, topics.PLANNER_COMMAND),) if options.safety else ()),
    ]
    if options.safety:
        nodes.append(NodeSpec(PACKAGE, "safety_node", "ezm_safety", "ezm_ros.safety_node",
                              # the simulated H1 starts in its default pose: a short stand-up suffices; a
                              # simulator on a shared computer is no real-time robot: its watchdogs wait as long
                              # as the simulator's own (command_timeout_s 0.25 s)
                              {"model_path": options.model, "autostart": True, "stand_up_s": 0.2,
                               "state_timeout_s": 0.25, "command_timeout_s": 0.25}, essential=True))
    if options.rviz or options.web_view:
        nodes.append(NodeSpec("sim_bridge", "visualization_node", "ezm_visualization",
                              "sim_bridge.visualization_node", {"task": options.task}))
    if options.web_view:
        nodes.append(NodeSpec(PACKAGE, "web_view_node", "ezm_web_view", "ezm_ros.web_view_node"))
    if options.record:
        nodes.append(NodeSpec(PACKAGE, "recorder_node", "ezm_recorder", "ezm_ros.recorder_node"))
    if options.rviz:
        nodes.append(NodeSpec("rviz2", "rviz2", "rviz2", None, {"use_sim_time": True},
                              ("-d", str(config_file(RVIZ_FILE)))))
    return nodes


def installed_share_dir() -> Path | None:
    """share/ezm_ros of a colcon install on AMENT_PREFIX_PATH, or None (a pip or source checkout)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, OSError):  # not installed; no AMENT_PREFIX_PATH at all
        return None


def config_file(name: str) -> Path:
    """A file of launch/config: from the installed share directory (colcon), else from the repository."""
    share = installed_share_dir()
    if share is not None and (share / "config" / name).is_file():
        return share / "config" / name
    return _REPO_LAUNCH_DIR / "config" / name
