"""The shared body of the ament_python packages' setup.py, for `colcon build` in a ROS 2 workspace.

pip users never run this: they install all Python packages from the top-level pyproject.toml. colcon
builds each ROS package from its own directory, so each of ezm_ros/, sim_bridge/ and
ezm_training/search/ (the `ezm_search` package) carries a package.xml, a tiny setup.py calling
`ament_python_setup` and, where it has executables, a setup.cfg (scripts into lib/<pkg>, where `ros2 run`
and launch_ros look). Version, console scripts and Python requirements are read from
pyproject.toml and VERSION, so there is one source of truth; package.xml repeats the version because
its format requires a literal (tests/foundation/test_packaging.py keeps them equal).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

REPO = Path(__file__).resolve().parent.parent


def _console_scripts(package: str) -> list[str]:
    """The [project.scripts] entries of pyproject.toml that live in `package`."""
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    return [f"{name} = {target}" for name, target in scripts.items() if target.startswith(package + ".")]


def _relative(paths, start: Path) -> list[str]:
    return sorted(str(Path(p).relative_to(start)) if Path(p).is_relative_to(start) else str(p) for p in paths)


def ament_python_setup(package: str, extra_data_files: list[tuple[str, list[str]]] = (), *,
                       import_name: str | None = None) -> None:
    """Run setuptools for the ament_python package `package`, whose Python sources are its own dir.

    `import_name` is the Python package those sources are imported as, when it differs from the ROS
    package's name: `ezm_search` installs `ezm_training.search` (the learner and the planner import the
    one search under one name; a robot install holds it without the rest of `ezm_training`, as a
    namespace portion)."""
    import_name = import_name or package
    package_dir = REPO / Path(*import_name.split("."))
    subpackages = find_packages(str(package_dir), exclude=("resource*",))
    data_files = [
        ("share/ament_index/resource_index/packages", [f"resource/{package}"]),
        (f"share/{package}", ["package.xml"]),
        *extra_data_files,
    ]
    setup(
        name=package,
        version=(REPO / "VERSION").read_text().strip(),
        # The package's sources sit beside this setup.py (the repository keeps one flat layout
        # for pip and colcon alike), hence the mapping of the package onto ".".
        package_dir={import_name: "."},
        packages=[import_name, *(f"{import_name}.{sub}" for sub in subpackages)],
        data_files=data_files,
        install_requires=["setuptools"],
        zip_safe=True,
        entry_points={"console_scripts": _console_scripts(import_name)},
    )
