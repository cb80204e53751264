"""colcon build of ezm_search (the Python package ezm_training.search) in a ROS 2 workspace.

pip users: see the top-level pyproject.toml, which installs it as part of ezm_training.
"""
import sys
from pathlib import Path

if __name__ == "__main__":  # guarded: pip installs this directory as the ezm_training.search package too
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from ament_python_setup import ament_python_setup

    ament_python_setup("ezm_search", import_name="ezm_training.search")
