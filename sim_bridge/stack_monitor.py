"""What `ezm-sim` watches while the stack runs: the live status line, and the states for the video.

One node in the `ezm-sim` process. It reads only what any ROS 2 user could: the simulator's
`diagnostics`, the planner's `ezm/planner_status`, and the state topics.
"""

from __future__ import annotations

import collections
import math
from typing import Final

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState

from ezm_msgs.msg import PlannerStatus, TaskState
from ezm_ros import conversions, qos, topics
from sim_bridge.rollout_video import RolloutRecorder
from sim_bridge.h1 import constants

#: Planner steps the p99 latency of the status line is taken over (10 s at 50 Hz).
LATENCY_WINDOW: Final = 500
SIM_STATUS_SUFFIX: Final = ": simulator"


class StackMonitor(Node):
    def __init__(self, video_seconds: float, namespace: str = "", model_note: str = "") -> None:
        super().__init__("ezm_sim_monitor", namespace=namespace or None)
        self._model_note = model_note  # shown on every line, e.g. that the model is untrained
        self.recorder = RolloutRecorder(video_seconds)
        self.sim: dict[str, str] = {}
        self.planner: PlannerStatus | None = None
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._pending: dict[int, dict[str, object]] = {}
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.DIAGNOSTICS)
        self.create_subscription(PlannerStatus, topics.PLANNER_STATUS, self._on_status, qos.LATCHED)
        self.create_subscription(JointState, topics.JOINT_STATES, lambda m: self._on_state("joints", m), qos.SENSOR)
        self.create_subscription(Odometry, topics.ODOM, lambda m: self._on_state("odom", m), qos.SENSOR)
        self.create_subscription(TaskState, topics.TASK_STATE, lambda m: self._on_state("task", m), qos.SENSOR)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(SIM_STATUS_SUFFIX):
                self.sim = {kv.key: kv.value for kv in status.values}

    def _on_status(self, msg: PlannerStatus) -> None:
        self.planner = msg
        if math.isfinite(msg.step_latency_ms):
            self._latencies.append(msg.step_latency_ms)

    def _on_state(self, kind: str, msg) -> None:
        """Pair the three state messages of one control step by stamp, then record the step."""
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        parts = self._pending.setdefault(stamp, {})
        parts[kind] = msg
        if len(parts) < 3:
            if len(self._pending) > 8:  # drop halves of steps whose other messages were lost
                for old in sorted(self._pending)[:-4]:
                    del self._pending[old]
            return
        del self._pending[stamp]
        try:
            robot = conversions.robot_coordinates(parts["joints"], parts["odom"], constants.JOINTS)
        except conversions.StateError:
            return
        self.recorder.add(stamp, robot, parts["task"])

    def status_line(self) -> str:
        """task, sim time, real-time factor, pelvis height, forward speed, planner p99 latency, misses."""
        sim, planner = self.sim, self.planner
        if not sim:
            return "waiting for the simulator..."
        p99 = f"{np.percentile(self._latencies, 99):5.1f} ms" if self._latencies else "   -   "
        task = planner.active_task if planner is not None else sim.get("task", "?")
        parts = [
            f"task {task:<10s}",
            f"sim {float(sim.get('sim_time_s', 'nan')):7.2f} s",
            f"RTF {float(sim.get('real_time_factor', 'nan')):4.2f}",
            f"pelvis {float(sim.get('pelvis_height_m', 'nan')):4.2f} m",
            f"fwd {float(sim.get('forward_speed_mps', 'nan')):+5.2f} m/s",
            f"planner p99 {p99}",
            f"misses {planner.deadline_misses if planner is not None else 0}",
            f"fallbacks {planner.fallbacks if planner is not None else 0}",
        ]
        if self._model_note:
            parts.insert(0, f"[{self._model_note}]")
        mode = sim.get("mode", "")
        if mode != "commanded":
            parts.append(f"[{mode}]")
        if planner is not None and planner.detail:
            parts.append(planner.detail[:60])
        return " | ".join(parts)
