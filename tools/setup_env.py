#!/usr/bin/env python3
"""Sets up the project's virtual environment at `.venv/`: Python packages, then the ROS 2 interfaces.

Run by `make setup` (and so by `make test` and `make sim`). Standard library only, because it runs
before the venv exists. Each step records a fingerprint of its inputs in `.venv/.ezm-setup/` and is
skipped when the inputs did not change and its output is still there, so a second run installs and
builds nothing.

Steps:
1. venv: `python -m venv .venv` with the interpreter running this script (Python >= 3.11).
2. packages: `pip install -e .[robot,sim,train,ray,msgs-build,test]` plus the torch pin (below).
3. interfaces: configure, build and install the ament_cmake interface packages with plain cmake
   against the venv prefix, so `from ezm_msgs.msg import ...` works in the venv with no environment
   variables (ROS 2 Kilted from PyPI wheels; see docs/ros2-from-wheels.md): ezm_msgs, and tf2_msgs
   (tools/interfaces/: the standard /tf type, which no wheel has; a ROS install uses its own).

Versions: pip installs with `tools/constraints.txt`, the versions the tests last passed with, so a fresh
machine gets what CI tested (onnxruntime's kernels, say, change between releases). After changing
dependencies, `python3 tools/setup_env.py --lock` rewrites it from the venv (torch is left to EZM_TORCH, so a
CUDA build stays possible). The file is part of the package step's fingerprint.

Environment knobs (part of the fingerprints, so changing one redoes the step):
- EZM_TORCH: the torch requirement. Default `torch==2.13.0`, the CPU build. A GPU user who has
  installed a CUDA build into .venv first sets `EZM_TORCH=keep` so it is not replaced.
- EZM_ONNXRUNTIME: `cpu` (default, extra `robot`) or `gpu` (extra `robot-gpu`, onnxruntime-gpu).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIN_PYTHON = (3, 11)
DEFAULT_TORCH = "torch==2.13.0"
ONNXRUNTIME_EXTRAS = {"cpu": "robot", "gpu": "robot-gpu"}
COMMON_EXTRAS = ("sim", "train", "ray", "msgs-build", "test")
# Inputs of the package step: what pip reads. Of pyproject.toml only the tables pip uses count, so
# that editing, say, the pytest settings does not reinstall everything.
PYPROJECT_TABLES_FOR_PIP = ("build-system", "project", "tool.setuptools")
# Inputs of the interface step: each package and the build fix injected from outside it. (package, its
# directory, an import that proves the install)
INTERFACES = (("ezm_msgs", "ezm_msgs", "from ezm_msgs.msg import TaskCommand; from ezm_msgs.srv import SwitchTask"),
              ("tf2_msgs", "tools/interfaces/tf2_msgs", "from tf2_msgs.msg import TFMessage"))
CONSTRAINTS = REPO / "tools" / "constraints.txt"
# Not pinned by the lock: torch and its CUDA companions follow EZM_TORCH (a GPU user's CUDA build), and
# the project's own (ezm_msgs is built here, not installed from a registry).
UNLOCKED = ("torch", "triton", "nvidia-", "ezm", "tf2_msgs")  # tf2_msgs: built here from tools/interfaces
MSGS_CMAKE_FIX = "tools/cmake/drop_missing_include_dirs.cmake"


def log(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def fingerprint(paths: list[Path], extra: str = "", root: Path = REPO) -> str:
    """sha256 over the names (relative to `root`) and contents of `paths` (files, or directories walked)."""
    digest = hashlib.sha256(extra.encode())
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    for file in files:
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


class Stamp:
    """A step's recorded fingerprint in `.venv/.ezm-setup/<name>`."""

    def __init__(self, venv: Path, name: str) -> None:
        self.path = venv / ".ezm-setup" / name

    def matches(self, value: str) -> bool:
        return self.path.is_file() and self.path.read_text().strip() == value

    def record(self, value: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: an interrupted setup never leaves a stamp for a half-done step.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(value + "\n")
        tmp.replace(self.path)


def run(cmd: list[str], **kwargs) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kwargs)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> None:
    if venv_python(venv).exists():
        log(f"venv {venv.name}: exists")
        return
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"[setup] Python >= {'.'.join(map(str, MIN_PYTHON))} is needed, this is {sys.version.split()[0]}; "
                 f"run with e.g. `make setup PYTHON=python3.11`")
    log(f"venv {venv.name}: creating with {sys.executable}")
    run([sys.executable, "-m", "venv", str(venv)])


def pip_inputs() -> str:
    """The parts of pyproject.toml and VERSION that decide what pip installs, as canonical text."""
    with open(REPO / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    tables = {}
    for dotted in PYPROJECT_TABLES_FOR_PIP:
        table = pyproject
        for key in dotted.split("."):
            table = table.get(key, {})
        tables[dotted] = table
    return json.dumps(tables, sort_keys=True) + (REPO / "VERSION").read_text()


def install_packages(venv: Path) -> str:
    torch_spec = os.environ.get("EZM_TORCH", DEFAULT_TORCH)
    ort = os.environ.get("EZM_ONNXRUNTIME", "cpu")
    if ort not in ONNXRUNTIME_EXTRAS:
        sys.exit(f"[setup] EZM_ONNXRUNTIME must be one of {sorted(ONNXRUNTIME_EXTRAS)}, not {ort!r}")
    extras = ",".join((ONNXRUNTIME_EXTRAS[ort], *COMMON_EXTRAS))
    constraints = CONSTRAINTS.read_text() if CONSTRAINTS.is_file() else ""
    value = fingerprint([], extra=f"{pip_inputs()}|{torch_spec}|{extras}|{constraints}")
    stamp = Stamp(venv, "packages")
    if stamp.matches(value):
        log("python packages: up to date")
        return value
    log("python packages: installing")
    cmd = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if torch_spec != "keep":
        cmd.append(torch_spec)
    if constraints:
        cmd += ["-c", str(CONSTRAINTS)]
    cmd += ["-e", f"{REPO}[{extras}]"]
    run(cmd)
    stamp.record(value)
    return value


def lock(venv: Path) -> None:
    """Write tools/constraints.txt: every installed distribution's version, but the project and torch's."""
    frozen = subprocess.run([str(venv_python(venv)), "-m", "pip", "freeze", "--exclude-editable",
                             "--disable-pip-version-check"], check=True, capture_output=True, text=True).stdout
    pins = sorted((line for line in frozen.splitlines() if "==" in line and not line.startswith(UNLOCKED)),
                  key=str.lower)
    CONSTRAINTS.write_text("# The versions `make test` last passed with; `python3 tools/setup_env.py --lock` rewrites\n"
                           "# this from .venv. torch is not pinned here (EZM_TORCH, tools/setup_env.py).\n"
                           + "\n".join(pins) + "\n")
    log(f"wrote {CONSTRAINTS.relative_to(REPO)} ({len(pins)} pins)")


def msgs_installed(venv: Path, package: str) -> bool:
    site = next((venv / "lib").glob("python3*/site-packages"), None)
    return site is not None and (site / package / "msg" / "__init__.py").is_file()


def build_msgs(venv: Path, packages_value: str) -> None:
    for package, directory, proof in INTERFACES:
        build_interface(venv, packages_value, package, REPO / directory, proof)


def build_interface(venv: Path, packages_value: str, package: str, source: Path, proof: str) -> None:
    if shutil.which("cmake") is None:
        sys.exit(f"[setup] cmake is needed to build {package} (Debian/Ubuntu: apt-get install cmake g++)")
    value = fingerprint([source, REPO / MSGS_CMAKE_FIX], extra=packages_value)
    stamp = Stamp(venv, package)
    if stamp.matches(value) and msgs_installed(venv, package):
        log(f"{package}: up to date")
        return
    log(f"{package}: building")
    prefix = str(venv.resolve())
    build = REPO / "build" / package
    run(["cmake", "-S", str(source), "-B", str(build),
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
         "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF",
         f"-DPython3_EXECUTABLE={venv_python(venv)}",
         f"-DCMAKE_PROJECT_INCLUDE={REPO / MSGS_CMAKE_FIX}"], stdout=subprocess.DEVNULL)
    run(["cmake", "--build", str(build), f"-j{os.cpu_count() or 1}"], stdout=subprocess.DEVNULL)
    run(["cmake", "--install", str(build)], stdout=subprocess.DEVNULL)
    # Prove the install before recording it: the import needs the venv's rclpy library hook.
    run([str(venv_python(venv)), "-c", proof], cwd="/")
    stamp.record(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="virtual environment path")
    parser.add_argument("--lock", action="store_true", help="write tools/constraints.txt from the venv and stop")
    args = parser.parse_args(argv)
    venv = args.venv.resolve()
    if args.lock:
        lock(venv)
        return 0
    ensure_venv(venv)
    packages_value = install_packages(venv)
    build_msgs(venv, packages_value)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
