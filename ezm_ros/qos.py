"""The QoS profiles of the stack, one per kind of topic, each with the reason it is what it is.

Every topic of the stack uses one of these (`ezm_ros.topics` says which). Publishers of sensor
streams and commands accept QoS overrides from parameters (`qos_overrides./<topic>.publisher.*`,
rclpy's `QoSOverridingOptions`), so a deployment can change depth or reliability without code changes.

No profile sets a DDS deadline. A subscription that requests one is incompatible with every publisher
that offers none (the default: a robot driver, `ros2 topic pub`), and would then receive nothing.
Staleness is measured where it matters instead, at arrival time in the receiving node (the planner
counts stale states, the simulator's watchdog times commands), as BH's controllers do.
"""

from __future__ import annotations

from typing import Final

from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
)

#: Robot state streams (joint_states, imu, odom, task_state): best effort, keep last 5, volatile.
#: Why: a late sample is worth less than the next one; retransmitting old state only adds latency
#: (the reasoning of `rclpy.qos.qos_profile_sensor_data`, whose depth 5 this keeps).
SENSOR: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=QoSReliabilityPolicy.BEST_EFFORT,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: Commands (joint_command, ezm/task): reliable, keep last 1, volatile.
#: Why: only the newest command matters, but it must arrive (a dropped task switch would be silently
#: lost; a dropped joint command would trip the watchdog). Depth 1 so a slow reader never acts on a
#: backlog of stale commands. Volatile: a controller that starts late must not replay old commands.
COMMAND: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: Status and current task (ezm/planner_status, ezm/active_task): reliable, transient local, keep last 1.
#: Why: a late joiner (rviz, `ezm-task --status`, the status line) sees the latest state at once
#: instead of waiting for the next change; only the latest value is meaningful.
LATCHED: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)

#: Visualization (markers): reliable, keep last 1, volatile.
#: Why: rviz subscribes to markers reliably by default, and a reliable writer is compatible with both
#: reliable and best-effort readers; depth 1 because each MarkerArray replaces the previous one.
VISUALIZATION: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: /clock: best effort, keep last 1, as rclpy's own time source subscribes to it (only the newest
#: time matters; a late clock sample is useless).
CLOCK: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.BEST_EFFORT,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: Diagnostics (diagnostic_msgs/DiagnosticArray on `diagnostics`): reliable, keep last 10, as
#: diagnostic_updater publishes it (aggregators expect every status change).
DIAGNOSTICS: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: /tf: reliable, keep last 100, volatile, as tf2's TransformBroadcaster publishes it and its listeners read it
#: (a listener interpolates between samples, so none should be dropped).
TF: Final = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)

#: robot_description: reliable, transient local, keep last 1, as robot_state_publisher publishes it: rviz's
#: RobotModel display, started at any time, gets the description at once.
ROBOT_DESCRIPTION: Final = LATCHED
