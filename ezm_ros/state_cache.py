"""The planner's view of the robot: the newest control step for which every state topic has arrived.

The simulator (or a robot driver) publishes joint_states, odom and task_state once per control step,
all with that step's stamp, over best-effort QoS: they arrive in any order, and one may be lost. The
cache keeps the last few messages of each topic by stamp, with their arrival time (staleness is judged
at arrival, in this process's clock, not from the sender's stamp), and hands out the newest stamp that
is complete. task_state is only required by tasks that observe more than the robot (`needs_task_state`).

Anyone on the graph can publish a state, so one stamp must not decide which states count: a stamp more
than MAX_STAMP_JUMP_S from its topic's timeline (a spoofed far-future stamp would otherwise make every real
state look old) is held out, and becomes the new timeline only once NEW_TIMELINE_MESSAGES in a row
continue it (a restarted simulator, whose clock starts again at 0). `epoch` counts those restarts.

A spoofer could still publish its own timeline close to the real one and interleave with it. So each topic
also has one owner, told apart by the DDS publisher GID rclpy hands the subscription callback (MessageInfo):
the first publisher heard owns the topic, another one's messages are ignored (`foreign` counts them), and
another publisher takes over only once the owner has been silent for OWNER_SILENCE_S (a simulator or robot
driver that restarted has a new GID). A topic with no GID (another middleware) is judged by stamps alone.
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
#: A stamp further than this from its topic's timeline is held out (sim time, s: 50 control steps).
MAX_STAMP_JUMP_S = 1.0
#: Messages in a row that make a held-out stamp's timeline the topic's new one.
NEW_TIMELINE_MESSAGES = 5
#: Wall seconds without a message from a topic's owner after which another publisher may take it over. Above
#: the simulator's longest quiet time (a lockstep scene load, 0.1-0.5 s; an idle lockstep simulator republishes
#: every 0.1 s) and below the time a restarted simulator takes to come back (its imports and scene: seconds).
OWNER_SILENCE_S = 1.5


def publisher_of(info: dict | None) -> bytes | None:
    """The publisher GID in an rclpy MessageInfo, as a key; None where the middleware gives none."""
    gid = (info or {}).get("publisher_gid")
    return bytes(gid["data"]) if gid and gid.get("data") is not None else None


class StampTimeline:
    """One topic's timeline: `accept(stamp)` is "ok" for a stamp within max_jump_ns of the newest accepted,
    "held" for one beyond it, and "new" once `confirm` held stamps in a row continued one another (then
    they are the timeline)."""

    def __init__(self, max_jump_ns: int = int(MAX_STAMP_JUMP_S * 1e9), confirm: int = NEW_TIMELINE_MESSAGES):
        self.max_jump_ns, self.confirm = max_jump_ns, confirm
        self.newest: int | None = None
        self._candidate: int | None = None
        self._candidate_count = 0
        self.held = 0  # stamps held out so far

    def accept(self, stamp: int) -> str:
        if self.newest is None or abs(stamp - self.newest) <= self.max_jump_ns:
            self.newest = stamp if self.newest is None else max(self.newest, stamp)
            self._candidate, self._candidate_count = None, 0
            return "ok"
        if self._candidate is not None and abs(stamp - self._candidate) <= self.max_jump_ns:
            self._candidate, self._candidate_count = max(self._candidate, stamp), self._candidate_count + 1
        else:
            self._candidate, self._candidate_count = stamp, 1
        if self._candidate_count >= self.confirm:
            self.newest, self._candidate, self._candidate_count = self._candidate, None, 0
            return "new"
        self.held += 1
        return "held"


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
        self._timelines = {name: StampTimeline() for name in self._topics}
        self._owners: dict[str, tuple[bytes, float]] = {}  # topic -> (owner's GID, when it was last heard)
        self.epoch = 0  # timelines restarted so far (a consumer comparing stamps starts afresh)
        self.foreign = 0  # messages ignored: not from their topic's owner
        self._held_before = 0  # held out by timelines a takeover replaced (`held` never goes down)

    @property
    def held(self) -> int:
        """Messages held out so far for a stamp off their topic's timeline."""
        return self._held_before + sum(timeline.held for timeline in self._timelines.values())

    def add_joint_state(self, msg: JointState, publisher: bytes | None = None) -> None:
        self._add("joints", msg, publisher)

    def add_odom(self, msg: Odometry, publisher: bytes | None = None) -> None:
        self._add("odom", msg, publisher)

    def add_task_state(self, msg: TaskState, publisher: bytes | None = None) -> None:
        self._add("task", msg, publisher)

    def _owned(self, topic: str, publisher: bytes | None) -> bool:
        """Whether a message from `publisher` counts; a takeover restarts the topic (its stamps, a new epoch)."""
        if publisher is None:
            return True
        now = time.monotonic()
        owner = self._owners.get(topic)
        if owner is not None and owner[0] != publisher:
            if now - owner[1] < OWNER_SILENCE_S:
                self.foreign += 1
                return False
            self._topics[topic].clear()
            self._held_before += self._timelines[topic].held
            self._timelines[topic] = StampTimeline()
            self.epoch += 1
        self._owners[topic] = (publisher, now)
        return True

    def _add(self, topic: str, msg, publisher: bytes | None) -> None:
        if not self._owned(topic, publisher):
            return
        entries = self._topics[topic]
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        verdict = self._timelines[topic].accept(stamp)
        if verdict == "held":
            return
        if verdict == "new":
            entries.clear()
            self.epoch += 1
        entries[stamp] = (time.monotonic(), msg)
        entries.move_to_end(stamp)
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
