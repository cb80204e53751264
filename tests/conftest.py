"""Session-wide test settings.

ROS 2 tests run over real Fast DDS. Each pytest session gets its own ROS_DOMAIN_ID and keeps discovery
on this host, so parallel sessions (and other users' nodes) never see each other's topics. Child
processes started by tests inherit these variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# DDS domain ids 0..101 are safe on Linux with default port mapping; 0 is everyone's default.
_DOMAIN_ID_RANGE = 100


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % _DOMAIN_ID_RANGE))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.fixture(scope="session")
def venv_python() -> str:
    """The interpreter running the tests: the venv's, whose .pth hook sets up ROS 2 libraries."""
    return sys.executable
