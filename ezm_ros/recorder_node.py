"""The flight recorder: every topic of the graph (or those named) into one MCAP file, as rosbag2 records.

    ros2 launch ezm_ros sim.launch.py record:=true        # records/ezm-<UTC time>.mcap
    ezm-sim --record                                      # the same without a ROS 2 install
    ezm-record-summary records/ezm-20261205T074501Z.mcap  # rates, task changes, planner timing, faults

rosbag2 has no PyPI wheel, so this node does its recording part: it discovers topics every
`discovery_period_s`, subscribes to each (once it has a publisher) with the QoS its publishers offer (best effort if any publisher is,
transient local if all are, so a latched status is recorded from its last value), and writes the serialized
bytes it receives with the receive time (`ezm_ros.flight_record` says what the file holds). A topic whose
type is not installed here is skipped with a warning. Ctrl-C (SIGINT/SIGTERM) finishes the file; a node
killed with SIGKILL leaves a file without its summary section, which `mcap recover` repairs.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Final

from mcap.writer import Writer
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ezm_ros.flight_record import (
    MESSAGE_ENCODING,
    PROFILE,
    SCHEMA_ENCODING,
    DefinitionError,
    message_class,
    message_definition,
)
from ezm_ros.node_runtime import declare, run_node

NODE_NAME: Final = "ezm_recorder"
#: Reader history per recorded topic: messages queued between two spins of a busy recorder.
RECORD_DEPTH: Final = 1000


@dataclasses.dataclass(frozen=True)
class RecorderParams:
    path: str
    topics: tuple[str, ...]
    discovery_period_s: float


def default_path(now: datetime.datetime | None = None) -> Path:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return Path("records") / f"ezm-{now.strftime('%Y%m%dT%H%M%SZ')}.mcap"


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = RecorderParams(
            path=declare(self, "path", "", "MCAP file to write ('': records/ezm-<UTC time>.mcap in the "
                         "working directory).", read_only=True),
            topics=tuple(declare(self, "topics", [""], "Topics to record (absolute names); [''] or []: every "
                                 "topic discovered.", read_only=True)),
            discovery_period_s=declare(self, "discovery_period_s", 1.0, "How often new topics are looked for, s.",
                                       read_only=True, bounds=(0.05, 60.0)),
        )
        self.path = Path(self.p.path) if self.p.path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file)
        self._writer.start(profile=PROFILE, library="ezm_ros recorder_node")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._skipped: set[str] = set()
        self.counts: dict[str, int] = {}
        self._wanted = {t for t in self.p.topics if t}
        self._closed = False
        self._discover()
        self.create_timer(self.p.discovery_period_s, self._discover)
        self.get_logger().info(f"recording {'every topic' if not self._wanted else sorted(self._wanted)} to "
                               f"{self.path}")

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self._channels or topic in self._skipped or (self._wanted and topic not in self._wanted):
                continue
            offered = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
            if not offered:  # only subscribers so far: the publishers' QoS decides the reader's, so wait
                continue
            type_name = types[0]
            try:
                msg_type = message_class(type_name)
                if type_name not in self._schemas:
                    self._schemas[type_name] = self._writer.register_schema(
                        name=type_name, encoding=SCHEMA_ENCODING, data=message_definition(type_name).encode())
            except (ImportError, AttributeError, DefinitionError, ValueError) as err:
                self._skipped.add(topic)
                self.get_logger().warning(f"not recording {topic} ({type_name}): {err}")
                continue
            channel = self._writer.register_channel(topic=topic, message_encoding=MESSAGE_ENCODING,
                                                    schema_id=self._schemas[type_name])
            self._channels[topic] = channel
            self.counts[topic] = 0
            self.create_subscription(msg_type, topic, self._writer_for(topic, channel), self._qos_for(offered),
                                     raw=True)
            self.get_logger().info(f"recording {topic} ({type_name})")

    @staticmethod
    def _qos_for(offered: list[QoSProfile]) -> QoSProfile:
        """What rosbag2 does: a reader every publisher of the topic can match, and latched values kept."""
        best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
        latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        return QoSProfile(depth=RECORD_DEPTH,
                          reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _writer_for(self, topic: str, channel: int):
        def write(data: bytes) -> None:
            if self._closed:
                return
            now = time.time_ns()
            self._writer.add_message(channel_id=channel, log_time=now, data=data, publish_time=now,
                                     sequence=self.counts[topic])
            self.counts[topic] += 1
        return write

    def close(self) -> None:
        """Finish the file (its summary and index), once; run_node calls it on SIGINT/SIGTERM."""
        if self._closed:
            return
        self._closed = True
        self._writer.finish()
        self._file.close()
        total = sum(self.counts.values())
        self.get_logger().info(f"wrote {total} messages on {len(self.counts)} topics to {self.path}")


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
