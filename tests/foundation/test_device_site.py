"""tools/device_site.py: what the GPU machine lacks, small enough to carry, and enough to run the simulator."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

# The wheels it fetches are CPython's manylinux x86-64 builds (the GPU machine's); the bare-interpreter check
# runs them here, which needs the same kind of machine.
pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                                reason="device_site fetches manylinux x86-64 wheels")

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "device_site.py"

BARE_CHECK = """
import sys
assert not any("site-packages" in p for p in sys.path), sys.path
import numpy as np
import sim_bridge
env = sim_bridge.make("h1-walk-v0")
obs, _ = env.reset(seed=0)
for _ in range(5):
    obs, reward, terminated, truncated, _ = env.step(np.zeros(19, np.float32))
import mujoco
print(mujoco.__file__, obs.shape)
"""


def test_device_site_runs_the_simulator_in_a_bare_interpreter(tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, str(TOOL), "--out", str(site), "--python-version",
                    f"{sys.version_info.major}.{sys.version_info.minor}", "--bare-check"], check=True)
    # -S: no site-packages at all, only the site and the repository on the path (as on the device machine).
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "MUJOCO_GL": "egl"}
    out = subprocess.run([sys.base_prefix + "/bin/python3", "-S", "-c", BARE_CHECK], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(site)) and "(51,)" in out.stdout


def test_device_site_replaces_only_what_it_made(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    out = subprocess.run([sys.executable, str(TOOL), "--out", str(keep)], capture_output=True, text=True)
    assert out.returncode != 0 and "was not made by this script" in out.stderr
    assert (keep / "notes.txt").read_text() == "mine"


def test_device_site_for_the_gpu_machine_fits_a_call(tmp_path):
    out = subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path / "site")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    carried = sum(f.stat().st_size for f in (tmp_path / "site").rglob("*") if f.is_file())
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    repository = sum((REPO / name.decode()).stat().st_size for name in tracked if name and (REPO / name.decode()).is_file())
    assert list((tmp_path / "site" / "mujoco").glob("_specs.cpython-312-x86_64-linux-gnu.so"))  # the device's Python
    assert carried + repository < 64 * 2**20, (carried, repository)
