"""Every ezm_msgs message and service type crosses real Fast DDS between two processes intact."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy  # noqa: E402

from diagnostic_msgs.msg import KeyValue  # noqa: E402
from ezm_msgs.msg import JointCommand, PlannerStatus, TaskCommand  # noqa: E402
from ezm_msgs.srv import ListTasks, SwitchTask  # noqa: E402

pytestmark = pytest.mark.ros

PEER = Path(__file__).with_name("echo_peer.py")
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)
# Discovery between two fresh processes takes ~1 s on loopback; leave room for a loaded CI machine.
DISCOVERY_TIMEOUT_S = 20.0

H1_JOINTS = [f"{side}_{joint}" for side in ("left", "right")
             for joint in ("hip_yaw_joint", "hip_roll_joint", "hip_pitch_joint", "knee_joint", "ankle_joint")]


def _stamped(msg, node: Node):
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = "odom"
    return msg


def _samples(node: Node) -> list:
    task = _stamped(TaskCommand(task="walk", has_forward_speed=True, forward_speed_mps=1.25,
                                has_heading=True, heading_rad=-math.pi / 3,
                                params=[KeyValue(key="gait", value="trot"), KeyValue(key="é", value="ü")]), node)
    status = _stamped(PlannerStatus(active_task="walk", model_id="ezm-h1-9task-0123abcd", step_latency_ms=7.25,
                                    simulations=32, root_value=-12.5, deadline_cut=True, fallback=True,
                                    detail="observation contained NaN", deadline_misses=3, fallbacks=2**40,
                                    stale_states=7), node)
    n = len(H1_JOINTS)
    command = _stamped(JointCommand(name=H1_JOINTS, position=[0.1 * i for i in range(n)],
                                    velocity=[-0.5] * n, effort=[], kp=[200.0] * n, kd=[5.0] * n), node)
    return [task, status, command]


@pytest.fixture()
def peer(venv_python):
    process = subprocess.Popen([venv_python, str(PEER)])
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture()
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("ezm_msgs_round_trip_test", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.executor_for_test = executor
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _spin_until(node: Node, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        node.executor_for_test.spin_once(timeout_sec=0.05)
        if done():
            return True
    return False


def test_every_message_type_round_trips_between_processes(peer, node):
    sent = _samples(node)
    received: dict[str, object] = {}
    publishers = {}
    for msg in sent:
        name = type(msg).__name__
        publishers[name] = node.create_publisher(type(msg), f"echo_in/{name}", RELIABLE)
        node.create_subscription(type(msg), f"echo_out/{name}",
                                 lambda m, name=name: received.setdefault(name, m), RELIABLE)

    def all_back() -> bool:
        # Republish until the peer has discovered us and echoed each type once.
        for msg in sent:
            if type(msg).__name__ not in received:
                publishers[type(msg).__name__].publish(msg)
        return len(received) == len(sent)

    assert _spin_until(node, all_back, DISCOVERY_TIMEOUT_S), f"echoed only {sorted(received)}"
    for msg in sent:
        echoed = received[type(msg).__name__]
        assert echoed == msg, f"{type(msg).__name__} changed in transit:\n{msg}\n{echoed}"
    assert list(received["JointCommand"].position) == pytest.approx([0.1 * i for i in range(len(H1_JOINTS))])
    assert received["PlannerStatus"].fallbacks == 2**40


def test_every_service_type_round_trips_between_processes(peer, node):
    list_client = node.create_client(ListTasks, "list_tasks")
    switch_client = node.create_client(SwitchTask, "switch_task")
    assert _spin_until(node, lambda: list_client.service_is_ready() and switch_client.service_is_ready(),
                       DISCOVERY_TIMEOUT_S), "services of the peer process never appeared"

    def call(client, request):
        future = client.call_async(request)
        assert _spin_until(node, future.done, 10.0), "no response"
        return future.result()

    listed = call(list_client, ListTasks.Request())
    assert (listed.model_id, list(listed.tasks), list(listed.observation_sizes), listed.active_task) == (
        "echo-peer", ["stand", "walk", "run"], [51, 51, 51], "stand")

    accepted = call(switch_client, SwitchTask.Request(command=TaskCommand(task="run")))
    assert (accepted.accepted, accepted.reason, accepted.active_task) == (True, "", "run")

    rejected = call(switch_client, SwitchTask.Request(
        command=TaskCommand(task="fly", has_forward_speed=True, forward_speed_mps=2.5)))
    assert (rejected.accepted, rejected.active_task) == (False, "run")
    assert rejected.reason == "unknown task 'fly'; speed 2.5"


def test_task_command_leaves_targets_at_task_default_when_unset():
    # `ros2 topic pub ezm/task ezm_msgs/msg/TaskCommand "{task: walk}"` must mean HumanoidBench's walk.
    msg = TaskCommand(task="walk")
    assert not msg.has_forward_speed and not msg.has_heading
