"""Packaging: one version everywhere (the real `colcon build` is tests/ezm_ros/test_ros2_launch.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
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
