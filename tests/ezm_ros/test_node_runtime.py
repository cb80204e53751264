"""`run_node`, the `main` of every node: a stopped node's process ends, even when rclpy's wake-up is lost.

rclpy stops a spin from its signal thread in two steps: it triggers the executor's guard condition, then
shuts the context down. Under load the first step was lost about once in 15 SIGTERMs, and the process
stayed in `rmw_wait` for good. These tests take the second step alone (the context's C-level shutdown,
which calls no Python callback and triggers nothing), which is what a lost wake-up leaves behind.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap

import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")

pytestmark = pytest.mark.ros

# Generous for a loaded CI machine: the bounded wait ends the spin within a fraction of a second.
EXIT_TIMEOUT_S = 30.0

NODE_SCRIPT = textwrap.dedent("""
    import sys
    import threading

    from rclpy.node import Node

    from ezm_ros.node_runtime import run_node


    class Quiet(Node):
        # Nothing to do, so nothing but the context can end its executor's wait.
        def __init__(self):
            super().__init__("ezm_node_runtime_test")
            if sys.argv[1] == "lost-wakeup":
                threading.Timer(1.0, self.context.handle.shutdown).start()
            else:
                self._ready = self.create_timer(0.01, self._spinning)

        def _spinning(self):
            self._ready.cancel()
            print("ready", flush=True)  # built and spinning: a signal now must reach close()

        def close(self):
            print("closed", flush=True)


    raise SystemExit(run_node(Quiet))
""")


def _start(venv_python, mode: str) -> subprocess.Popen:
    return subprocess.Popen([venv_python, "-c", NODE_SCRIPT, mode], stdout=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the node was still running {EXIT_TIMEOUT_S:.0f} s after its context was shut down")
    return process.returncode, out


def test_a_shut_down_context_ends_the_spin_without_a_wake_up(venv_python):
    code, out = _finish(_start(venv_python, "lost-wakeup"))
    assert (code, out.split()) == (0, ["closed"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_node_cleanly(venv_python, sig):
    process = _start(venv_python, "wait")
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(sig)
    code, out = _finish(process)
    assert (code, out.split()) == (0, ["closed"])
