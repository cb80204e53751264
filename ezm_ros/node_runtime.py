"""What every node of the stack shares: declaring parameters with descriptions, and its `main`.

Kept tiny on purpose: each node reads its parameters once into a frozen dataclass right after
declaring them, and `run_node` is the `main` of ros2/examples (SIGINT and SIGTERM end the spin through
`KeyboardInterrupt` or `ExternalShutdownException`; shutdown only if the context is still up).
Ctrl-C in a terminal running `ros2 launch` reaches every node twice, from the terminal and from launch,
which forwards it; the second must not interrupt the clean-up of the first.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def declare(node: Node, name: str, default: Any, description: str, read_only: bool = False) -> Any:
    """Declare `name` with a default and a description; returns its value (from YAML or the default)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    return node.declare_parameter(name, default, descriptor).value


class StartupError(RuntimeError):
    """A node cannot start (bad model, bad parameter): `run_node` prints the message and exits 2."""


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Create the node, spin it until SIGINT/SIGTERM, clean up. Returns the exit status."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except StartupError as err:
        print(f"[{getattr(factory, '__name__', 'node')}] cannot start: {err}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal can shut the context down between two spins; the executor then fails to build its
        # wait set (RCLError). That is a shutdown, not a crash; anything else is a real error.
        if rclpy.ok():
            raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping already; a second Ctrl-C changes nothing
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
