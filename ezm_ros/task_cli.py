"""`ezm-task`: tell the planner which task to pursue, from a shell.

    ezm-task walk --speed 1.0            # switch to walk (SwitchTask service: prints accepted or why not)
    ezm-task h1-run-v0 --heading 0.5     # env ids work too; heading in rad, in odom
    ezm-task walk --topic                # publish on ezm/task instead (fire and forget, like ros2 topic pub)
    ezm-task --list                      # the tasks the loaded model knows, and the active one

Same as `ros2 service call /ezm/switch_task ezm_msgs/srv/SwitchTask "{command: {task: walk}}"` or
`ros2 topic pub --once /ezm/task ezm_msgs/msg/TaskCommand "{task: walk}"` in a ROS 2 install.
Which targets a task honours is in the README ("Task commands"); the planner says in its status detail
when it ignores one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import rclpy
from rclpy.node import Node

from diagnostic_msgs.msg import KeyValue
from ezm_msgs.msg import TaskCommand
from ezm_msgs.srv import ListTasks, SwitchTask
from ezm_ros import qos, topics

#: Discovery of a running stack on loopback takes ~1 s; leave room for a loaded machine.
DEFAULT_TIMEOUT_S = 10.0


def _command(args: argparse.Namespace, node: Node) -> TaskCommand:
    msg = TaskCommand(task=args.task)
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = topics.ODOM_FRAME
    if args.speed is not None:
        msg.has_forward_speed, msg.forward_speed_mps = True, args.speed
    if args.heading is not None:
        msg.has_heading, msg.heading_rad = True, args.heading
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"ezm-task: --param expects key=value, got {item!r}")
        msg.params.append(KeyValue(key=key, value=value))
    return msg


def _call(node: Node, client, request, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not client.service_is_ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"ezm-task: no planner answers on {client.srv_name} (is the stack running, "
                             f"in this ROS_DOMAIN_ID and namespace?)")
        rclpy.spin_once(node, timeout_sec=0.1)
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.1, deadline - time.monotonic()))
    if not future.done():
        raise SystemExit(f"ezm-task: {client.srv_name} did not answer within {timeout_s} s")
    return future.result()


def _publish(node: Node, msg: TaskCommand, timeout_s: float) -> None:
    publisher = node.create_publisher(TaskCommand, topics.TASK, qos.COMMAND)
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() == 0:  # a volatile message sent before discovery is lost
        if time.monotonic() > deadline:
            raise SystemExit(f"ezm-task: nobody subscribes to {publisher.topic_name}")
        rclpy.spin_once(node, timeout_sec=0.1)
    publisher.publish(msg)
    rclpy.spin_once(node, timeout_sec=0.2)  # let the reliable writer hand the sample over before exiting
    print(f"published {msg.task!r} on {publisher.topic_name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-task", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", nargs="?", help="task name (walk) or env id (h1-walk-v0)")
    parser.add_argument("--speed", type=float, help="forward speed target, m/s (walk, run)")
    parser.add_argument("--heading", type=float, help="heading target, rad in odom")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="free-form task parameter")
    parser.add_argument("--list", action="store_true", help="list the model's tasks and the active one")
    parser.add_argument("--topic", action="store_true", help="publish on ezm/task instead of calling the service")
    parser.add_argument("--namespace", default="", help="namespace of the stack (as launched)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the planner")
    args = parser.parse_args(argv)
    if not args.list and not args.task:
        parser.error("give a task, or --list")

    rclpy.init()
    node = rclpy.create_node("ezm_task_cli", namespace=args.namespace or None)
    try:
        if args.list:
            response = _call(node, node.create_client(ListTasks, topics.LIST_TASKS), ListTasks.Request(), args.timeout)
            print(f"model {response.model_id}; active task: {response.active_task}")
            for task, size in zip(response.tasks, response.observation_sizes):
                print(f"  {task:16s} observation {size}")
            return 0
        msg = _command(args, node)
        if args.topic:
            _publish(node, msg, args.timeout)
            return 0
        response = _call(node, node.create_client(SwitchTask, topics.SWITCH_TASK),
                         SwitchTask.Request(command=msg), args.timeout)
        if response.accepted:
            note = f" ({response.reason})" if response.reason else ""
            print(f"accepted: active task {response.active_task}{note}")
            return 0
        print(f"rejected: {response.reason}; active task stays {response.active_task}", file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
