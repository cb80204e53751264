"""The planner node against a hostile ROS graph, over real Fast DDS: anyone can publish task commands and
states, so floods, oversized fields and spoofed stamps must cost a refusal each, not the 50 Hz loop.
The test publishes the robot's state itself (no simulator), as a robot driver would."""

from __future__ import annotations

import time

import numpy as np
import pytest

from diagnostic_msgs.msg import KeyValue
from ezm_msgs.msg import JointCommand, PlannerStatus, TaskCommand
from ezm_msgs.srv import SwitchTask
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState

from ezm_ros import conversions, qos, topics
from ezm_ros.planner_node import TASK_SWITCH_BURST
from ezm_ros.state_cache import OWNER_SILENCE_S
from ezm_ros.task_names import MAX_TASK_PARAMS
from sim_bridge.h1 import constants

pytestmark = pytest.mark.ros
PLANNER = "ezm_ros.planner_node"
STEP_NS = 20_000_000


class _Robot:
    """Publishes joint_states and odom of the keyframe pose with the stamps it is given."""

    def __init__(self, probe):
        self.probe = probe
        self.joints = probe.node.create_publisher(JointState, topics.JOINT_STATES, qos.SENSOR)
        self.odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
        self.qpos = constants.KEYFRAME_QPOS

    def publish(self, stamp_ns: int) -> None:
        stamp = conversions.stamp_from_ns(stamp_ns)
        zeros = np.zeros(len(constants.JOINTS))
        self.joints.publish(conversions.joint_state_msg(stamp, constants.JOINTS, self.qpos[7:], zeros, zeros))
        self.odom.publish(conversions.odometry_msg(stamp, self.qpos[:7], np.zeros(6)))

    def run(self, first_ns: int, seconds: float, period_s: float = 0.02, stamp_step_ns: int = STEP_NS) -> int:
        """Publish a state every period_s of wall time for `seconds`; returns the next stamp."""
        stamp, deadline = first_ns, time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.publish(stamp)
            stamp += stamp_step_ns
            self.probe.spin_for(period_s)
        return stamp


def _stamps(commands, since: int = 0) -> list[int]:
    return [conversions.stamp_to_ns(m.header.stamp) for _, m in commands[since:]]


def test_task_command_floods_cost_a_refusal_each(launch, probe, tiny_bundle):
    planner = launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand")
    commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
    status = probe.collect(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
    task_pub = probe.node.create_publisher(TaskCommand, topics.TASK, qos.COMMAND)
    robot = _Robot(probe)
    assert probe.spin_until(lambda: status and task_pub.get_subscription_count() > 0), planner.output()
    stamp = robot.run(0, 0.5)
    assert commands, planner.output()

    # A 10 MB task name: refused, and only an excerpt of it reaches the status and the log.
    task_pub.publish(TaskCommand(task="x" * 10_000_000))
    assert probe.spin_until(lambda: "longer than 64 characters" in status[-1][1].detail, 10.0), status[-1][1].detail
    assert len(status[-1][1].detail) < 1_000 and status[-1][1].active_task == "stand"

    # Params beyond the bounds: refused through the service, with the reason.
    flood = [KeyValue(key=f"k{i}", value="v") for i in range(MAX_TASK_PARAMS + 1)]
    response = probe.call(SwitchTask, topics.SWITCH_TASK,
                          SwitchTask.Request(command=TaskCommand(task="walk", params=flood)))
    assert not response.accepted and f"at most {MAX_TASK_PARAMS}" in response.reason
    huge = [KeyValue(key="note", value="y" * 100_000)]
    response = probe.call(SwitchTask, topics.SWITCH_TASK, SwitchTask.Request(command=TaskCommand(task="walk", params=huge)))
    assert not response.accepted and "longer than 256 characters" in response.reason and len(response.reason) < 300

    # Hundreds of valid switches at once: a burst passes, the rest are refused, control goes on.
    time.sleep(TASK_SWITCH_BURST / 5.0)  # the bucket refills
    answers = [probe.call(SwitchTask, topics.SWITCH_TASK,
                          SwitchTask.Request(command=TaskCommand(task=("walk", "run")[i % 2])))
               for i in range(3 * TASK_SWITCH_BURST)]
    accepted = sum(a.accepted for a in answers)
    assert TASK_SWITCH_BURST <= accepted < 3 * TASK_SWITCH_BURST, accepted
    assert all("too many task commands" in a.reason for a in answers if not a.accepted)
    before = len(commands)
    robot.run(stamp, 0.5)
    assert len(commands) - before >= 10 and planner.alive(), "control continues"


def test_state_floods_and_spoofed_stamps_do_not_take_the_loop(launch, probe, tiny_bundle):
    planner = launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand")
    commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
    status = probe.collect(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
    robot = _Robot(probe)
    assert probe.spin_until(lambda: status and robot.joints.get_subscription_count() > 0), planner.output()
    stamp = robot.run(0, 0.5)
    assert commands, planner.output()

    # A flood: states 1 ms apart in sim time, as fast as this process publishes them. The planner steps at
    # most three times per control period (twice from states, once at its tick), however many arrive.
    before, started = len(commands), time.monotonic()
    published = 0
    while time.monotonic() - started < 1.0:
        for _ in range(20):
            robot.publish(stamp)
            stamp += 1_000_000
            published += 1
        probe.spin_for(0.001)
    probe.spin_for(0.2)
    planned = len(commands) - before
    elapsed = time.monotonic() - started
    assert published >= 1_000 and planned <= 3 * 50 * elapsed + 5, (published, planned, elapsed)
    stamp += STEP_NS - stamp % STEP_NS

    # One spoofed state from far in the future: held out; the real states go on being planned from.
    robot.publish(stamp + 10**15)
    before = len(commands)
    stamp = robot.run(stamp, 0.6)
    after = _stamps(commands, before)
    assert after and max(after) < stamp and after[-1] > after[0], "planned from the real states"
    assert any("held out" in m.detail for _, m in status[-30:]), [m.detail for _, m in status[-3:]]

    # A simulator that restarts (its clock from 0 again): after a few states it is the timeline.
    before = len(commands)
    robot.run(0, 0.6)
    restarted = _stamps(commands, before)
    assert restarted and restarted[-1] < 10**9 and len(set(restarted)) >= 10, restarted[-5:]
    assert planner.alive()


def test_a_second_publisher_of_the_state_is_ignored_until_the_first_falls_silent(launch, probe, tiny_bundle):
    """A spoofer that publishes its own timeline close to the real one (10 ms after each real state) used to be
    planned from. Each state topic now has one owner, told apart by the DDS publisher GID; another publisher
    takes over only once the owner has been silent for OWNER_SILENCE_S (a restarted simulator)."""
    planner = launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand")
    commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
    status = probe.collect(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
    robot, spoofer = _Robot(probe), _Robot(probe)  # publishers of their own: other GIDs
    assert probe.spin_until(lambda: status and robot.joints.get_subscription_count() > 0), planner.output()
    stamp = robot.run(0, 0.5)
    assert commands, planner.output()

    before, deadline = len(commands), time.monotonic() + 1.0
    while time.monotonic() < deadline:
        robot.publish(stamp)
        spoofer.publish(stamp + STEP_NS // 2)  # always the newest state, were it believed
        stamp += STEP_NS
        probe.spin_for(0.02)
    probe.spin_for(0.1)
    planned = _stamps(commands, before)
    assert len(planned) >= 10 and all(s % STEP_NS == 0 for s in planned), [s % STEP_NS for s in planned]
    assert any("not from the topic's publisher" in m.detail for _, m in status), [m.detail for _, m in status[-3:]]

    probe.spin_for(OWNER_SILENCE_S + 0.3)  # the owner falls silent, as a simulator that died would
    before = len(commands)
    spoofer.run(stamp + STEP_NS // 2, 0.8)
    taken = _stamps(commands, before)
    assert any(s % STEP_NS == STEP_NS // 2 for s in taken), "the new publisher's states are planned from"
    assert planner.alive()


def test_the_fallback_timer_commands_at_the_control_rate_when_states_stop(launch, probe, tiny_bundle):
    planner = launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand")
    commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
    status = probe.collect(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
    robot = _Robot(probe)
    assert probe.spin_until(lambda: status and robot.joints.get_subscription_count() > 0), planner.output()
    last = robot.run(0, 0.5) - STEP_NS
    probe.spin_for(0.2)  # states stop: the timer takes over
    before = len(commands)
    probe.spin_for(2.0)
    held = _stamps(commands, before)
    assert held and set(held) == {last}, "from the last state"
    # 50 Hz, not every second tick (25 Hz, before): 100 ticks in 2 s, of which a loaded machine may lose some.
    assert len(held) > 70, f"{len(held)} commands in 2 s"
    assert status[-1][1].stale_states > 0
