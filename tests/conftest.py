"""Session-wide test settings.

ROS 2 tests run over real Fast DDS. Each pytest session gets its own ROS_DOMAIN_ID and keeps discovery
on this host, so parallel sessions (and other users' nodes) never see each other's topics. Child
processes started by tests inherit these variables. The report header names the CPU and the instruction
sets that decide onnxruntime's integer kernels, so a run's log says which machine it held on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# DDS domain ids 0..101 are safe on Linux with default port mapping; 0 is everyone's default.
_DOMAIN_ID_RANGE = 100
#: /proc/cpuinfo flags that choose onnxruntime's int8 kernels (VNNI: u8*s8 dot products without overflow).
_INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % _DOMAIN_ID_RANGE))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def pytest_report_header(config: pytest.Config) -> list[str]:
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        runtime = f"onnxruntime {version('onnxruntime')}"
    except Exception:  # noqa: BLE001  a header must never stop a test run
        runtime = "onnxruntime not installed"
    isa = ", ".join(flag for flag in _INT8_FLAGS if flag in flags) or "none of " + ", ".join(_INT8_FLAGS)
    return [f"cpu: {model}, {os.cpu_count()} cores; int8-relevant flags: {isa}; {runtime}"]


@pytest.fixture(scope="session")
def venv_python() -> str:
    """The interpreter running the tests: the venv's, whose .pth hook sets up ROS 2 libraries."""
    return sys.executable
