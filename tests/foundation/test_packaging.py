"""Packaging: one version everywhere, and a real `colcon build` of the three ROS packages."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROS_PACKAGES = ("ezm_msgs", "ezm_ros", "sim_bridge")


def test_every_package_xml_carries_the_project_version():
    version = (REPO / "VERSION").read_text().strip()
    for package in ROS_PACKAGES:
        root = ET.parse(REPO / package / "package.xml").getroot()
        assert root.findtext("name") == package
        assert root.findtext("version") == version, f"{package}/package.xml disagrees with VERSION"


def test_console_scripts_resolve_to_callables():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.module.split(".")[0] in
               ("sim_bridge", "ezm_training", "ezm_ros")}
    assert {"sim-bridge", "ezm-sim"} <= set(scripts)
    for name, ep in scripts.items():
        assert callable(ep.load()), name


@pytest.mark.slow
def test_colcon_builds_the_workspace(tmp_path):
    """What a ROS 2 user does: the repository in src/, `colcon build`, executables under lib/<pkg>.

    colcon runs from its own venv (it pins an older setuptools); ROS 2 comes from this venv's wheels,
    with the two settings docs/ros2-from-wheels.md explains (an apt ROS 2 install needs neither).
    """
    colcon_venv = tmp_path / "colcon-venv"
    venv.EnvBuilder(with_pip=True).create(colcon_venv)
    subprocess.run([colcon_venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "colcon-common-extensions", "setuptools<80"], check=True, timeout=600)
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "ezm").symlink_to(REPO)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PATH=f"{colcon_venv / 'bin'}:{os.environ['PATH']}")
    listed = subprocess.run(["colcon", "list", "--names-only"], cwd=workspace, env=env, capture_output=True,
                            text=True, check=True, timeout=120)
    assert sorted(listed.stdout.split()) == sorted(ROS_PACKAGES)
    subprocess.run(["colcon", "build", "--event-handlers", "console_direct-",
                    "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF",
                    f"-DCMAKE_PROJECT_INCLUDE={REPO / 'tools/cmake/drop_missing_include_dirs.cmake'}"],
                   cwd=workspace, env=env, check=True, timeout=900, capture_output=True)
    install = workspace / "install"
    for package in ROS_PACKAGES:
        assert (install / package / "share/ament_index/resource_index/packages" / package).is_file()
        assert (install / package / "share" / package / "package.xml").is_file()
    assert (install / "ezm_ros/lib/ezm_ros/ezm-sim").is_file()
    assert (install / "sim_bridge/lib/sim_bridge/sim-bridge").is_file()
    # What `ros2 launch ezm_ros sim.launch.py` needs: the node executables, the launch file and its config.
    for executable in ("ezm_ros/lib/ezm_ros/planner_node", "ezm_ros/lib/ezm_ros/visualization_node",
                       "ezm_ros/lib/ezm_ros/web_view_node", "ezm_ros/lib/ezm_ros/ezm-task",
                       "sim_bridge/lib/sim_bridge/sim_node"):
        assert (install / executable).is_file(), executable
    for shared in ("launch/sim.launch.py", "config/sim.params.yaml", "config/ezm_sim.rviz"):
        assert (install / "ezm_ros/share/ezm_ros" / shared).is_file(), shared
    generated = list((install / "ezm_msgs/lib").glob("python3*/site-packages/ezm_msgs/msg/_task_command.py"))
    assert generated, "colcon did not generate the ezm_msgs Python bindings"
