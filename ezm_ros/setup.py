"""colcon build of ezm_ros in a ROS 2 workspace (pip users: see the top-level pyproject.toml)."""
import sys
from glob import glob
from pathlib import Path

if __name__ == "__main__":  # guarded: pip installs this directory as the ezm_ros package too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from ament_python_setup import ament_python_setup

    # The shipped model bundles (models/<name>/), so `ros2 launch ezm_ros sim.launch.py` finds one under
    # share/ezm_ros/models without a model:= argument (ezm_ros/model_path.py).
    models = [(f"share/ezm_ros/models/{Path(d).name}", sorted(f for f in glob(f"{d}/*") if Path(f).is_file()))
              for d in sorted(glob("../models/*")) if Path(d, "manifest.json").is_file()]
    ament_python_setup("ezm_ros", extra_data_files=[
        ("share/ezm_ros/launch", sorted(glob("../launch/*.launch.py"))),
        ("share/ezm_ros/config", sorted(glob("../launch/config/*.yaml") + glob("../launch/config/*.rviz"))),
        *models,
    ])
