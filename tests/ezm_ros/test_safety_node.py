"""The mode machine and the safety layer over real DDS: each transition, each guard and each watchdog fires
from an induced fault, the status topic shows it, and the robot gets what the documented mode sends.

The test plays the robot (joint_states, odom) and the planner (ezm/planner_command) itself."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from ezm_msgs.msg import JointCommand, SafetyStatus
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, Joy
from std_srvs.srv import Trigger

from ezm_ros import conversions, qos, topics
from ezm_ros.bundle import read_manifest
from ezm_ros.safety_node import INTENTS, tilt_of
from sim_bridge.h1 import constants

pytestmark = pytest.mark.ros
SAFETY = "ezm_ros.safety_node"


class _World:
    """The robot's state and the planner's commands, as the test publishes them."""

    def __init__(self, probe, bundle):
        self.probe = probe
        self.bundle = bundle
        robot = read_manifest(bundle).robot
        self.names = list(robot.joint_names)
        self.low, self.high = np.asarray(robot.ctrl_low), np.asarray(robot.ctrl_high)
        self.joints = probe.node.create_publisher(JointState, topics.JOINT_STATES, qos.SENSOR)
        self.odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
        self.planner = probe.node.create_publisher(JointCommand, topics.PLANNER_COMMAND, qos.COMMAND)
        self.joy = probe.node.create_publisher(Joy, topics.JOY, qos.SENSOR)
        self.commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
        self.status = probe.collect(SafetyStatus, topics.SAFETY, qos.LATCHED)
        self.q = np.asarray(constants.KEYFRAME_QPOS[7:], np.float64) * 0.5  # crouched: not the default pose
        self.dq = np.zeros(len(self.names))
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.stamp = 0
        self.plan_target: np.ndarray | None = None
        self.clients: dict = {}

    def tick(self, seconds: float, state: bool = True) -> None:
        """Publish state (and the planner's target, if set) every 20 ms for `seconds`."""
        for _ in range(max(1, int(round(seconds / 0.02)))):
            stamp = conversions.stamp_from_ns(self.stamp)
            self.stamp += 20_000_000
            if state:
                self.joints.publish(conversions.joint_state_msg(stamp, self.names, self.q, self.dq,
                                                                np.zeros(len(self.names))))
                self.odom.publish(conversions.odometry_msg(stamp, np.r_[0.0, 0.0, 0.98, self.quat], np.zeros(6)))
            if self.plan_target is not None:
                msg = JointCommand(name=self.names, position=self.plan_target.tolist())
                msg.header.stamp = stamp
                self.planner.publish(msg)
            self.probe.spin_for(0.02)

    def call(self, intent: str, state: bool = True):
        """A mode service call, with the robot's state (and the planner) going on while it is answered."""
        client = self.clients.get(intent)
        if client is None:
            client = self.clients[intent] = self.probe.node.create_client(Trigger, f"/{topics.MODE_SERVICES}/{intent}")
        for _ in range(500):
            if client.service_is_ready():
                break
            self.tick(0.02, state)
        future = client.call_async(Trigger.Request())
        for _ in range(500):
            if future.done():
                return future.result()
            self.tick(0.02, state)
        raise AssertionError(f"ezm/mode/{intent} did not answer")

    def mode(self) -> str:
        return self.status[-1][1].mode if self.status else ""


@pytest.fixture()
def world(launch, probe, tiny_bundle):
    # Watchdogs of 0.5 s, not the robot's 0.1 s: this test process plays the robot, and a loaded machine may
    # pause it for longer than 0.1 s; what is tested is that they trip, not how fast.
    node = launch(SAFETY, "ezm_safety", model_path=str(tiny_bundle), stand_up_s=0.6, state_timeout_s=0.5,
                  command_timeout_s=0.5, joy_buttons=[-1, -1, -1, -1, -1, 0, 1])
    w = _World(probe, tiny_bundle)
    assert probe.spin_until(lambda: w.status and w.joints.get_subscription_count() > 0), node.output()
    w.node = node
    return w


def test_the_modes_from_damping_to_plan_and_back(world):
    w = world
    assert w.mode() == "DAMPING"
    w.tick(0.2)
    last = w.commands[-1][1]
    assert list(last.kp) == [0.0] * len(w.names) and all(kd > 0 for kd in last.kd), "damping: kp 0, kd > 0"
    refused = w.call("plan")
    assert not refused.success and "plan starts from HOLD" in refused.message

    assert w.call("stand_up").success and w.mode() == "STAND_UP"
    first = len(w.commands)
    w.tick(0.8)  # longer than stand_up_s 0.6: HOLD on its own
    targets = np.array([m.position for _, m in w.commands[first:]])
    default = np.asarray(w.commands[-1][1].position)
    assert w.mode() == "HOLD" and "stand-up finished" in w.status[-1][1].reason
    start_error = np.abs(targets[0] - w.q).max()
    assert start_error < 0.05, "the stand-up starts from the measured pose: no jump"
    distance = np.abs(targets - default).max(axis=1)
    assert np.all(np.diff(distance) <= 1e-9) and distance[-1] < 1e-6, "monotonically to the default pose"
    # The stiffness ramps from limp to the gains the model was trained with (the bundle's), never past them.
    robot = read_manifest(w.bundle).robot
    stand_up = [m for _, m in w.commands[first:] if len(m.kp)]
    kp = np.array([m.kp for m in stand_up])
    assert kp[0].max() < 0.5 * max(robot.kp), "the ramp starts limp"
    assert np.all(np.diff(kp, axis=0) >= -1e-9) and np.all(kp <= np.asarray(robot.kp) + 1e-9)
    assert np.allclose(stand_up[-1].kp, robot.kp) and np.allclose(stand_up[-1].kd, robot.kd), "HOLD: trained gains"

    assert not w.call("plan").success  # no planner command is arriving
    w.plan_target = default + 0.05
    w.tick(0.2)
    assert w.call("plan").success and w.mode() == "PLAN"
    w.tick(0.2)
    assert np.allclose(w.commands[-1][1].position, w.plan_target), "the planner's commands pass"

    w.plan_target = None  # the planner stops: the command watchdog holds
    w.tick(1.0)
    status = w.status[-1][1]
    assert w.mode() == "HOLD" and "command watchdog" in status.reason and status.command_watchdog_trips == 1
    w.tick(1.0, state=False)  # the state stops: damping
    status = w.status[-1][1]
    assert w.mode() == "DAMPING" and "state watchdog" in status.reason
    assert status.faults & SafetyStatus.FAULT_STATE_STALE


def _to_plan(w) -> np.ndarray:
    w.tick(0.1)
    assert w.call("stand_up").success
    w.tick(0.8)
    default = np.asarray(w.commands[-1][1].position)
    w.plan_target = default.copy()
    w.tick(0.2)
    assert w.call("plan").success, w.status[-1][1].reason
    return default


def test_every_guard_changes_what_the_robot_gets(world):
    w = world
    default = _to_plan(w)
    counters = lambda: w.status[-1][1]  # noqa: E731
    # Out of the joint limits: clamped inside them (less the margin).
    w.plan_target = np.where(np.arange(len(default)) == 3, w.high + 1.0, default)
    w.tick(0.6)
    sent = np.asarray(w.commands[-1][1].position)
    assert sent[3] < w.high[3] and sent[3] == pytest.approx(w.high[3] - 0.02) and counters().clamped_positions > 0
    # A jump to the other limit: each command moves the target at most max_target_rate_rad_s (20 rad/s) times
    # the time since the last one, capped at a period: 0.4 rad per command, however often they come.
    limited_before, count = counters().rate_limited, len(w.commands)
    w.plan_target = np.where(np.arange(len(default)) == 3, w.low[3], sent)
    w.tick(0.1)
    path = [sent[3], *(m.position[3] for _, m in w.commands[count:])]
    assert len(path) > 1 and counters().rate_limited > limited_before
    assert all(abs(b - a) <= 20.0 * 0.02 + 1e-9 for a, b in zip(path, path[1:])), path
    # NaN: refused; the robot gets the last safe command again, never the NaN.
    w.plan_target = np.where(np.arange(len(default)) == 0, np.nan, default)
    count, refused = len(w.commands), counters().rejected_nonfinite
    w.tick(0.06)
    repeated = [np.asarray(m.position) for _, m in w.commands[count:]]
    assert counters().rejected_nonfinite > refused and repeated, "refused, and the last safe command sent again"
    assert all(np.isfinite(p).all() for p in repeated)
    w.tick(1.0)  # a planner that sends only NaN trips the command watchdog
    assert w.mode() == "HOLD" and "command watchdog" in counters().reason
    # Gains, velocity targets and efforts beyond the bounds are cut (max_effort 0: no feed-forward torque).
    w.plan_target = default.copy()
    w.tick(0.2)
    assert w.call("plan").success
    n = len(w.names)
    w.plan_target = None
    huge = JointCommand(name=w.names, position=default.tolist(), kp=[5000.0] * n, kd=[-1.0] * n,
                        velocity=[1e5] * n, effort=[1e4] * n)
    w.planner.publish(huge)
    assert w.probe.spin_until(lambda: counters().gains_limited >= 4, 2.0), counters()
    last = w.commands[-1][1]
    assert max(last.kp) <= 500.0 and min(last.kd) >= 0.0 and max(last.velocity) <= 25.0 and max(last.effort) == 0.0
    # A command whose fields do not match its names (permuted names, a short kd) is refused, not a crash.
    permuted = JointCommand(name=list(reversed(w.names)), position=default.tolist(), kd=[1.0, 2.0, 3.0])
    refused = counters().rejected_nonfinite
    w.planner.publish(permuted)
    assert w.probe.spin_until(lambda: counters().rejected_nonfinite > refused, 2.0)
    assert w.node.alive()


def test_tilt_and_joint_speed_latch_estop_until_reset(world):
    w = world
    _to_plan(w)
    w.quat = np.array([math.cos(0.6), math.sin(0.6), 0.0, 0.0])  # 69 degrees of roll
    assert tilt_of(w.quat) > 1.0
    w.tick(0.2)
    status = w.status[-1][1]
    assert w.mode() == "E_STOP" and "tilt guard" in status.reason and status.faults & SafetyStatus.FAULT_TILT
    assert list(w.commands[-1][1].kp) == [0.0] * len(w.names), "E_STOP damps"
    w.quat = np.array([1.0, 0.0, 0.0, 0.0])
    w.tick(0.2)
    for intent in ("stand_up", "hold", "plan", "damping", "passive"):
        assert not w.call(intent).success and w.mode() == "E_STOP", f"{intent} left a latched E_STOP"
    assert w.call("reset").success and w.mode() == "DAMPING"

    _to_plan(w)
    w.dq = np.where(np.arange(len(w.names)) < 3, 40.0, 0.0)  # three joints over 25 rad/s
    w.tick(0.1)
    assert w.mode() == "E_STOP" and "joint-speed guard" in w.status[-1][1].reason
    assert w.status[-1][1].estops == 2


def test_a_joystick_button_stops_and_resets(world):
    w = world
    w.tick(0.1)
    assert INTENTS[5] == "estop" and INTENTS[6] == "reset"
    w.joy.publish(Joy(buttons=[1, 0]))
    assert w.probe.spin_until(lambda: w.mode() == "E_STOP", 3.0)
    assert "joystick button 0" in w.status[-1][1].reason
    w.joy.publish(Joy(buttons=[0, 0]))
    w.probe.spin_for(0.1)
    w.joy.publish(Joy(buttons=[0, 1]))
    assert w.probe.spin_until(lambda: w.mode() == "DAMPING", 3.0)


def test_a_bundle_that_does_not_fit_the_robots_description_never_plans(launch, probe, tiny_bundle, tmp_path):
    import yaml

    from ezm_ros import preflight
    from sim_bridge.bundle_robot import describe_simulated_h1

    description = describe_simulated_h1()
    fits = tmp_path / "h1.yaml"
    fits.write_text(yaml.safe_dump(description))
    assert preflight.main([str(tiny_bundle), "--robot", str(fits)]) == 0
    narrower = dict(description, joints=[dict(j) for j in description["joints"]])
    narrower["joints"][3]["upper"] -= 0.2  # the robot allows less than the bundle sends
    narrower["control_rate_hz"] = 100.0
    wrong = tmp_path / "narrower.yaml"
    wrong.write_text(yaml.safe_dump(narrower))
    assert preflight.main([str(tiny_bundle), "--robot", str(wrong)]) == 1
    missing = dict(description)
    missing.pop("control_rate_hz")  # a missing key is an error, never a default
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(missing))
    assert preflight.main([str(tiny_bundle), "--robot", str(tmp_path / "missing.yaml")]) == 2

    node = launch(SAFETY, "ezm_safety", model_path=str(tiny_bundle), stand_up_s=0.2, state_timeout_s=0.5,
                  robot_description=str(wrong))
    w = _World(probe, tiny_bundle)
    assert probe.spin_until(lambda: w.status and w.joints.get_subscription_count() > 0), node.output()
    assert "pre-flight check" in node.output() and "control rate" in node.output()
    w.tick(0.1)
    assert w.call("stand_up").success
    w.tick(0.4)
    w.plan_target = np.asarray(w.commands[-1][1].position)
    w.tick(0.2)
    refused = w.call("plan")
    assert not refused.success and "pre-flight check failed" in refused.message and "limits of" in refused.message
    assert w.mode() == "HOLD"


def test_a_fallen_robot_can_be_reset_and_stays_limp(world):
    w = world
    _to_plan(w)
    w.quat = np.array([math.cos(0.8), math.sin(0.8), 0.0, 0.0])  # lying on its side
    w.tick(0.2)
    assert w.mode() == "E_STOP"
    assert w.call("reset").success
    w.tick(0.3)  # still lying: DAMPING does not drive it, so the tilt guard does not trip again
    assert w.mode() == "DAMPING" and w.status[-1][1].estops == 1
    assert w.call("stand_up").success  # standing up is the operator's call; the guard acts once it drives
    w.tick(0.2)
    assert w.mode() == "E_STOP" and w.status[-1][1].estops == 2


def test_keys_switch_modes_and_a_bad_mapping_is_refused_by_name(world, tmp_path):
    """`ezm-keys` from a pipe: each character calls its intent's service and prints the answer."""
    import subprocess
    import sys

    from ezm_ros.mode_keys import KeysError, load_keys

    w = world
    w.tick(0.2)
    keys = subprocess.Popen([sys.executable, "-m", "ezm_ros.mode_keys"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    keys.stdin.write("xsp ")  # x: no intent; s: stand up; p: plan (refused: not from STAND_UP); space: E_STOP
    keys.stdin.close()
    deadline = time.monotonic() + 60
    while keys.poll() is None and time.monotonic() < deadline:
        w.tick(0.1)  # the robot's state keeps coming, as stand_up needs a fresh one
    if keys.poll() is None:
        keys.kill()
    out = keys.stdout.read()
    assert keys.wait(timeout=10) == 0, out
    assert "'x': no intent" in out and "stand_up: done" in out, out
    assert "plan: refused: plan starts from HOLD" in out and "estop: done" in out, out
    w.tick(0.2)
    assert w.mode() == "E_STOP"

    for text, message in (("estop: space\nreset: space\n", "is the key of both"),
                          ("halt: h\n", "is not an intent"), ("estop: esc\n", "not one character")):
        path = tmp_path / "keys.yaml"
        path.write_text(text)
        with pytest.raises(KeysError, match=message):
            load_keys(path)
