"""`make setup` is repeatable: a second run installs and builds nothing, and a changed input redoes its step."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "tools" / "setup_env.py"


def _load_setup_module():
    spec = importlib.util.spec_from_file_location("setup_env", SETUP_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed_msgs_file() -> Path:
    import ezm_msgs.msg

    return Path(ezm_msgs.msg.__file__)


@pytest.mark.skipif(Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
                    reason="checks the project's own .venv; these tests run from another environment")
def test_second_setup_run_installs_and_builds_nothing():
    msgs_file = _installed_msgs_file()
    mtime_before = msgs_file.stat().st_mtime_ns
    # The base interpreter, as `make setup` runs it (the script must not need the venv to start).
    result = subprocess.run([sys._base_executable, str(SETUP_SCRIPT), "--venv", str(REPO / ".venv")],
                            capture_output=True, text=True, timeout=120, check=True)
    lines = result.stdout.splitlines()
    assert "[setup] python packages: up to date" in lines, result.stdout
    assert "[setup] ezm_msgs: up to date" in lines, result.stdout
    assert not [line for line in lines if line.startswith("[setup] $ ")], f"setup ran commands:\n{result.stdout}"
    assert msgs_file.stat().st_mtime_ns == mtime_before


def test_fingerprint_changes_with_content_and_name_but_not_with_mtime(tmp_path):
    setup_env = _load_setup_module()
    pkg = tmp_path / "pkg"
    (pkg / "msg").mkdir(parents=True)
    msg = pkg / "msg" / "A.msg"
    msg.write_text("float64 x\n")
    first = setup_env.fingerprint([pkg], root=tmp_path)

    msg.touch()
    assert setup_env.fingerprint([pkg], root=tmp_path) == first

    msg.write_text("float64 y\n")
    changed = setup_env.fingerprint([pkg], root=tmp_path)
    assert changed != first

    msg.rename(pkg / "msg" / "B.msg")
    assert setup_env.fingerprint([pkg], root=tmp_path) != changed
    assert setup_env.fingerprint([pkg], root=tmp_path, extra="torch==2.13.0") != setup_env.fingerprint(
        [pkg], root=tmp_path, extra="keep")


def test_a_stamp_is_recorded_atomically(tmp_path):
    setup_env = _load_setup_module()
    stamp = setup_env.Stamp(tmp_path, "step")
    assert not stamp.matches("abc")
    stamp.record("abc")
    assert stamp.matches("abc") and not stamp.matches("abd")
    assert [p.name for p in stamp.path.parent.iterdir()] == ["step"]


def test_the_lock_pins_what_the_venv_has_but_torch_and_the_project(tmp_path, monkeypatch):
    setup_env = _load_setup_module()
    monkeypatch.setattr(setup_env, "CONSTRAINTS", tmp_path / "constraints.txt")
    monkeypatch.setattr(setup_env, "REPO", tmp_path)
    setup_env.lock(Path(sys.prefix))
    pins = dict(line.split("==", 1) for line in (tmp_path / "constraints.txt").read_text().splitlines()
                if "==" in line)
    from importlib.metadata import version

    assert pins["numpy"] == version("numpy") and pins["pytest"] == version("pytest")
    assert not [name for name in pins if name.startswith(("torch", "nvidia-", "ezm"))]
    assert (REPO / "tools" / "constraints.txt").is_file(), "the committed lock the pip step installs with"
