"""The planner's view of the robot: the newest control step for which every state topic has arrived.

The simulator (or a robot driver) publishes joint_states, odom and task_state once per control step,
all with that step's stamp, over best-effort QoS: they arrive in any order, and one may be lost. The
cache keeps the last few messages of each topic by stamp, with their arrival time (staleness is judged
at arrival, in this process's clock, not from the sender's stamp), and hands out the newest stamp that
is complete. task_state is only required by tasks that observe more than the robot (`needs_task_state`).
"""

from __future__ import annotations

import collections
import dataclasses
import time

from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState

from ezm_msgs.msg import TaskState
from ezm_ros import conversions

#: Steps kept per topic: enough to pair messages that arrive out of order, bounded for memory.
DEPTH = 8


@dataclasses.dataclass(frozen=True)
class StateSample:
    stamp_ns: int
    arrival_s: float  # time.monotonic() when the last of its messages arrived
    joint_state: JointState
    odom: Odometry
    task_state: TaskState | None


class StateCache:
    def __init__(self) -> None:
        self._topics: dict[str, collections.OrderedDict[int, tuple[float, object]]] = {
            name: collections.OrderedDict() for name in ("joints", "odom", "task")}

    def add_joint_state(self, msg: JointState) -> None:
        self._add("joints", msg)

    def add_odom(self, msg: Odometry) -> None:
        self._add("odom", msg)

    def add_task_state(self, msg: TaskState) -> None:
        self._add("task", msg)

    def _add(self, topic: str, msg) -> None:
        entries = self._topics[topic]
        entries[conversions.stamp_to_ns(msg.header.stamp)] = (time.monotonic(), msg)
        entries.move_to_end(conversions.stamp_to_ns(msg.header.stamp))
        while len(entries) > DEPTH:
            entries.popitem(last=False)

    def latest(self, needs_task_state: bool) -> StateSample | None:
        """The newest complete step, or None while there is none."""
        joints, odom, task = self._topics["joints"], self._topics["odom"], self._topics["task"]
        stamps = set(joints) & set(odom)
        if needs_task_state:
            stamps &= set(task)
        if not stamps:
            return None
        stamp = max(stamps)
        arrivals = [joints[stamp][0], odom[stamp][0]]
        task_state = None
        if stamp in task:
            task_state = task[stamp][1]
            if needs_task_state:
                arrivals.append(task[stamp][0])
        elif task:  # a plain task: the scene's newest task_state (if any) still says which scene is loaded
            task_state = task[next(reversed(task))][1]
        return StateSample(stamp, max(arrivals), joints[stamp][1], odom[stamp][1], task_state)
