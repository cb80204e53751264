"""colcon build of sim_bridge in a ROS 2 workspace (pip users: see the top-level pyproject.toml)."""
import sys
from pathlib import Path

if __name__ == "__main__":  # guarded: pip installs this directory as the sim_bridge package too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from ament_python_setup import ament_python_setup

    ament_python_setup("sim_bridge")
