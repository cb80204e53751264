"""A second process for the interface round-trip test: echoes every ezm_msgs type back.

Subscribes `echo_in/<Type>` and republishes what it receives on `echo_out/<Type>`; serves
`list_tasks` and `switch_task` with answers derived from the request, so the test can check that
requests arrive intact. Exits on SIGTERM/SIGINT, through the stack's own `run_node`.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from ezm_msgs.msg import JointCommand, PlannerStatus, TaskCommand
from ezm_msgs.srv import ListTasks, SwitchTask
from ezm_ros.node_runtime import run_node

MESSAGE_TYPES = (TaskCommand, PlannerStatus, JointCommand)
KNOWN_TASKS = ("stand", "walk", "run")
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)


class EchoPeer(Node):
    def __init__(self) -> None:
        super().__init__("ezm_msgs_echo_peer")
        self._echo_publishers = {}
        for msg_type in MESSAGE_TYPES:
            name = msg_type.__name__
            self._echo_publishers[name] = self.create_publisher(msg_type, f"echo_out/{name}", RELIABLE)
            self.create_subscription(msg_type, f"echo_in/{name}",
                                     lambda msg, name=name: self._echo_publishers[name].publish(msg), RELIABLE)
        self.create_service(ListTasks, "list_tasks", self._list_tasks)
        self.create_service(SwitchTask, "switch_task", self._switch_task)
        self._active = KNOWN_TASKS[0]

    def _list_tasks(self, request: ListTasks.Request, response: ListTasks.Response) -> ListTasks.Response:
        response.model_id = "echo-peer"
        response.tasks = list(KNOWN_TASKS)
        response.observation_sizes = [51] * len(KNOWN_TASKS)
        response.active_task = self._active
        return response

    def _switch_task(self, request: SwitchTask.Request, response: SwitchTask.Response) -> SwitchTask.Response:
        task = request.command.task
        response.accepted = task in KNOWN_TASKS
        if response.accepted:
            self._active = task
        else:
            response.reason = f"unknown task {task!r}; speed {request.command.forward_speed_mps}"
        response.active_task = self._active
        return response


if __name__ == "__main__":
    raise SystemExit(run_node(EchoPeer))
