"""Helpers for the ROS 2 stack's tests: nodes in their own processes, and an in-test probe node.

Every node runs as `python -m <module> --ros-args ...` in a child process, exactly as `ezm-sim` starts
it, over real Fast DDS on the session's own ROS_DOMAIN_ID (tests/conftest.py). Children are always
stopped (SIGINT, then SIGKILL after a grace period) and their output is kept for the assertions.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from ezm_ros import nodes  # noqa: E402

#: Tasks of the tiny test bundle: the locomotion trio plus one task with an object and one with extras.
TEST_BUNDLE_TASKS = "h1-stand-v0,h1-walk-v0,h1-run-v0,h1-sit_hard-v0,h1-reach-v0"
DISCOVERY_TIMEOUT_S = 20.0
#: Reader history of the probe's recordings (messages queued between two spins of a loaded test process).
RECORDER_DEPTH = 1000


class NodeProcess:
    """A node in a child process; `output()` after `stop()` returns what it printed."""

    def __init__(self, module: str, name: str, parameters: dict, log_dir: Path) -> None:
        self.name = name
        params = log_dir / f"{name}.params.yaml"
        params.write_text(json.dumps({f"/**/{name}": {"ros__parameters": parameters}}))  # JSON is YAML
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}",
             "--params-file", str(nodes.config_file(nodes.PARAMS_FILE)), "--params-file", str(params)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._log.closed:
            self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash, with no chance to clean up."""
        self.process.kill()
        self.process.wait()
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()


@pytest.fixture()
def launch(tmp_path):
    """launch(module, name, **parameters) -> NodeProcess; every process is stopped after the test."""
    started: list[NodeProcess] = []

    def _launch(module: str, name: str, **parameters) -> NodeProcess:
        process = NodeProcess(module, name, parameters, tmp_path)
        started.append(process)
        return process

    yield _launch
    for process in reversed(started):
        process.stop()


class Probe:
    """The test's own node: subscriptions that keep what they receive, and spinning until a condition."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("ezm_test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def collect(self, msg_type, topic: str, qos, keep: int = 100_000) -> list:
        """Subscribe and append (arrival time, message) to the returned list.

        The probe records as rosbag does: the topic's QoS with a deep reader history, so that a probe the
        test's own load slows down queues what it has not yet taken instead of overwriting it (the nodes'
        depth-1 readers keep only the newest message on purpose; a recorder must not)."""
        received: list = []
        qos = copy.copy(qos)
        qos.depth = max(qos.depth, RECORDER_DEPTH)

        def on_message(msg) -> None:
            received.append((time.monotonic(), msg))
            if len(received) > keep:
                del received[0]

        self.node.create_subscription(msg_type, topic, on_message, qos)
        return received

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def spin_until(self, done: Callable[[], bool], timeout_s: float = DISCOVERY_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
            if done():
                return True
        return False

    def call(self, srv_type, name: str, request, timeout_s: float = DISCOVERY_TIMEOUT_S):
        client = self.node.create_client(srv_type, name)
        assert self.spin_until(client.service_is_ready, timeout_s), f"service {name} never appeared"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout_s), f"service {name} did not answer"
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture()
def probe():
    p = Probe()
    yield p
    p.close()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A tiny, untrained WorldModel exported with the real exporter (needs torch: the `train` extra)."""
    pytest.importorskip("torch", reason="exporting a test bundle needs the train extra (torch)")
    from ezm_training.untrained_bundle import export_untrained_bundle

    return export_untrained_bundle(tmp_path_factory.mktemp("bundle") / "tiny", tasks=TEST_BUNDLE_TASKS)


@pytest.fixture(scope="session")
def int8_bundle(tmp_path_factory) -> Path:
    """A tiny untrained WorldModel (stand and walk) exported with its int8 graphs too."""
    torch = pytest.importorskip("torch", reason="exporting a test bundle needs the train extra (torch)")
    from ezm_training.config import EZMConfig
    from ezm_training.export.bundle import export_bundle
    from ezm_training.networks import WorldModel
    from ezm_training.envs import task_dims

    cfg = EZMConfig.from_preset("smoke", size="tiny", tasks="h1-stand-v0,h1-walk-v0")
    out = tmp_path_factory.mktemp("int8") / "bundle"
    with torch.random.fork_rng(devices=[]):  # the weights' seed stays out of the other tests' global RNG
        torch.manual_seed(1)
        export_bundle(WorldModel(cfg, *task_dims(cfg.task_ids)), cfg, out, int8=True)
    return out


def diagnostics_values(msg) -> dict[str, str]:
    """The simulator's key/values from a DiagnosticArray."""
    for status in msg.status:
        if status.name.endswith(": simulator"):
            return {kv.key: kv.value for kv in status.values}
    return {}

