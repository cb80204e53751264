"""What every node of the stack shares: declaring parameters with descriptions, and its `main`.

Kept tiny on purpose: each node reads its parameters once into a frozen dataclass right after
declaring them. A parameter is either read-only, or live: `follow_live_parameters` puts each accepted
change into that dataclass, so a writable parameter is never accepted and then ignored. Numeric
parameters carry their bounds in the descriptor, so rclpy itself refuses an out-of-range value at start
(a YAML or launch override) and at run time (`ros2 param set` reports why). `run_node` is the `main` of
ros2/examples (SIGINT and SIGTERM end the spin through
`KeyboardInterrupt` or `ExternalShutdownException`; shutdown only if the context is still up), with a
bounded wait so that a lost wake-up cannot keep a stopped node alive.
Ctrl-C in a terminal running `ros2 launch` reaches every node twice, from the terminal and from launch,
which forwards it; the second must not interrupt the clean-up of the first.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from ezm_ros.process_lifetime import follow_launcher


#: How long the executor waits for work before it looks at the context again. rclpy ends a spin on
#: SIGINT/SIGTERM from its own signal thread: it triggers the executor's guard condition and shuts the
#: context down. On a loaded 2-core machine the trigger was lost about once in 15 SIGTERMs (the
#: interface round-trip test's peer, a CI failure), and an unbounded `rclpy.spin` then waited in
#: `rmw_wait` forever; a bounded wait sees the shut-down context within this time instead.
SHUTDOWN_POLL_S: Final = 0.25

#: Seeds are numpy/MuJoCo seeds: non-negative and within a C int.
SEED_BOUNDS: Final = (0, 2**31 - 1)


def declare(node: Node, name: str, default: Any, description: str, read_only: bool = False,
            bounds: tuple[float, float] | None = None) -> Any:
    """Declare `name` with a default and a description; returns its value (from YAML or the default).

    bounds: the inclusive range of a numeric parameter (an int parameter needs int bounds). A value
    outside it, or of another type, stops the node with a StartupError naming the parameter."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if bounds is not None:
        low, high = bounds
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise TypeError(f"{name}: bounds need a numeric default, got {default!r}")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high),
                                                                  step=0.0)]
        descriptor.additional_constraints = f"{low} <= {name} <= {high}"
    try:
        return node.declare_parameter(name, default, descriptor).value
    except (InvalidParameterValueException, InvalidParameterTypeException) as err:
        raise StartupError(f"parameter {name}: {err}") from None


def follow_live_parameters(node: Node, names: Sequence[str], get: Callable[[], Any],
                           put: Callable[[Any], None]) -> None:
    """After each accepted `ros2 param set` of a name in `names`, put `dataclasses.replace(get(), ...)`.

    The node's params dataclass stays the one place its code reads settings from; the parameters that are
    not live are declared read-only, so rclpy refuses a change to them instead of accepting and ignoring it.
    """
    live = frozenset(names)

    def applied(params) -> None:
        changes = {param.name: param.value for param in params if param.name in live}
        if changes:
            put(dataclasses.replace(get(), **changes))
            node.get_logger().info("parameters applied: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))

    node.add_post_set_parameters_callback(applied)


class StartupError(RuntimeError):
    """A node cannot start (bad model, bad parameter): `run_node` prints the message and exits 2."""


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Create the node, spin it until SIGINT/SIGTERM, clean up. Returns the exit status."""
    follow_launcher()  # started by ezm-sim: end with it, even when it is SIGKILLed
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        spin_until_shutdown(node)
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


def spin_until_shutdown(node: Node) -> None:
    """Spin `node` until its context is shut down; raises ExternalShutdownException then, as `rclpy.spin`
    does, but never waits longer than SHUTDOWN_POLL_S without looking at the context."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while True:
            executor.spin_once(timeout_sec=SHUTDOWN_POLL_S)
    finally:
        executor.remove_node(node)


class RateLimiter:
    """A token bucket: `allow()` is True at most `burst` times at once and `rate_per_s` times a second on
    average, so a flood of requests costs the node one refusal each, not one piece of work each."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s, self.burst, self._clock = rate_per_s, burst, clock
        self._tokens, self._last = float(burst), clock()
        self.refused = 0

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False


class BurstLog:
    """Logs the first event of a burst and counts the rest: one line per `period_s` at most, saying how
    many were not logged, so a flood cannot flood the log."""

    def __init__(self, log: Callable[[str], None], period_s: float = 1.0) -> None:
        self._log, self._period_s = log, period_s
        self._last, self._unlogged = -float("inf"), 0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self._period_s:
            self._unlogged += 1
            return
        if self._unlogged:
            text += f" ({self._unlogged} more since the last such line)"
        self._log(text)
        self._last, self._unlogged = now, 0


#: SCHED_FIFO priorities Linux accepts for a user process.
SCHED_PRIORITY_BOUNDS: Final = (0, 99)


def declare_scheduling(node: Node) -> str:
    """Declare `sched_priority` and `cpu_affinity` (read-only) and apply them to every thread of this process.

    A control loop on a loaded computer is late because the scheduler preempts it (BENCHMARKS.md, control
    loop): SCHED_FIFO at `sched_priority` runs it before every normal process, and `cpu_affinity` keeps it
    on its own cores. Where the OS refuses (no CAP_SYS_NICE or rtprio limit; a CPU that does not exist) the
    node says so and runs on with the normal scheduler. Returns what was applied, for the start-up line."""
    priority = declare(node, "sched_priority", 0, "SCHED_FIFO priority of this node's threads, 1-99 (0: the "
                       "normal scheduler). Needs CAP_SYS_NICE or an rtprio limit; refused, the node warns.",
                       read_only=True, bounds=SCHED_PRIORITY_BOUNDS)
    affinity = declare(node, "cpu_affinity", "", "CPUs this node's threads may run on, e.g. '1' or '2,3' "
                       "('': all).", read_only=True)
    try:
        cpus = {int(part) for part in affinity.split(",") if part.strip()}
    except ValueError:
        raise StartupError(f"parameter cpu_affinity: {affinity!r} is not a comma-separated list of CPU "
                           "numbers") from None
    applied = []
    threads = [int(tid) for tid in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    if cpus:
        try:
            for tid in threads:
                os.sched_setaffinity(tid, cpus)
            applied.append(f"CPUs {sorted(cpus)}")
        except OSError as err:
            node.get_logger().warning(f"cpu_affinity {affinity!r} refused by the OS ({err}); running on every CPU")
    if priority > 0:
        try:
            for tid in threads:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            applied.append(f"SCHED_FIFO {priority}")
        except (OSError, AttributeError) as err:
            node.get_logger().warning(f"sched_priority {priority} refused by the OS ({err}); running with the "
                                      "normal scheduler (grant CAP_SYS_NICE or an rtprio limit)")
    return ", ".join(applied) or "normal scheduling"


def normal_scheduling() -> None:
    """Put the calling thread back on the normal scheduler. For a node's background work (a model warming up,
    a scene compiling): a thread inherits SCHED_FIFO from its creator and could hold off the control thread
    on the same core for as long as the work takes, and that work is not time-critical."""
    if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
