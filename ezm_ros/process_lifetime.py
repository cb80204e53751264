"""A child process that ends with its parent (Linux), for env workers and for the nodes `ezm-sim` starts.

A process whose parent is SIGKILLed is re-parented and keeps running: a simulator that steps on, a planner
that keeps commanding, an env worker blocked on its pipe. `PR_SET_PDEATHSIG` has the kernel signal it when
the parent dies. No ROS import: sim_bridge's env workers use it too.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Final

#: Set by a launcher (ezm-sim) to its pid: a node started with it ends when that process dies.
PARENT_PID_ENV: Final = "EZM_PARENT_PID"


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends `signum` to this process when its parent dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signum))


def follow_launcher() -> None:
    """Where `PARENT_PID_ENV` names the launcher: die with it (SIGTERM, a clean node shutdown), and exit now
    if it is already gone (it died between the fork and this call, so no signal would come)."""
    launcher = os.environ.get(PARENT_PID_ENV, "")
    if not launcher.isdigit():
        return
    die_with_parent(signal.SIGTERM)
    if os.getppid() != int(launcher):
        sys.exit(f"launcher {launcher} is gone; not starting")
