"""The mode machine and the safety layer between the planner and the robot: one node, so that a mode change and
the command it governs can never race (both run on this node's one thread), and so that every command the robot
gets, in every mode, has passed the same guards.

    planner_node --ezm/planner_command--> safety_node --joint_command--> robot (or sim_node)

Modes (SafetyStatus.mode; `ezm/mode/<intent>` std_srvs/Trigger services and a sensor_msgs/Joy mapping):

    PASSIVE   zero torque (kp 0, kd 0)
    DAMPING   kp 0, kd damping_kd: the robot sinks slowly                       <- start, and the state watchdog
    STAND_UP  the target moves from the pose measured at entry to the bundle's default pose over stand_up_s
              (the servos start with no error, so no jump) while kp ramps from 0 to the gains the model was
              trained with (the bundle's robot.kp, kd) over its first half; then HOLD on its own
    HOLD      the default pose at the trained gains                              <- the command watchdog in PLAN
    PLAN      the planner's commands pass, through the guards
    E_STOP    damping, latched: only `reset` leaves it (to DAMPING)             <- tilt and joint-speed guards

Transitions: estop from any mode; passive and damping from any mode but E_STOP; stand_up from DAMPING or
PASSIVE with a fresh state; hold from STAND_UP once it finished, or from PLAN; plan from HOLD with a fresh
state and planner commands arriving; reset from E_STOP (to DAMPING). Anything else is refused with the
reason. `autostart` (simulation only) walks to PLAN once at start; any operator's, guard's or watchdog's
transition ends it for good.

Guards on every command sent (counted in SafetyStatus): a command with a non-finite field, or fields that do
not match its joint names, is refused (the last safe command is sent again, and a planner that sends only
such commands trips the command watchdog); position targets are clamped into the joint limits (the
bundle's ctrl ranges) less `limit_margin_rad`; each target moves at most `max_target_rate_rad_s` of wall
time; kp, kd, velocity targets and feed-forward efforts are cut to `max_kp`, `max_kd`,
`max_joint_speed_rad_s` and `max_effort`. And on the state: pelvis tilt over `max_tilt_rad`, or
`speed_guard_joints` joints over `max_joint_speed_rad_s`, latch E_STOP (in the modes that drive the robot:
STAND_UP, HOLD, PLAN); no joint state or no odometry for
`state_timeout_s` drops to DAMPING; no accepted planner command for `command_timeout_s` in PLAN drops to
HOLD. Lockstep simulation has no wall-clock rate, so the layer is not for lockstep runs (the stack refuses
the pair).

The robot's joints, limits and default pose come from the model bundle (`model_path`, as the planner's), so
this node needs no MuJoCo, like the rest of the robot path.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
from typing import Final

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, Joy
from std_srvs.srv import Trigger

from ezm_msgs.msg import JointCommand, SafetyStatus
from ezm_ros import model_path, qos, topics
from ezm_ros.bundle import BundleError, read_manifest
from ezm_ros.node_runtime import BurstLog, StartupError, declare, declare_scheduling, run_node
from ezm_ros.preflight import DescriptionError, load_description, preflight

NODE_NAME: Final = "ezm_safety"
INTENTS: Final = ("passive", "damping", "stand_up", "hold", "plan", "estop", "reset")
#: STAND_UP reaches the trained stiffness after 1/STAND_UP_GAIN_RAMP of its time: from limp (the DAMPING it
#: starts from) without a jump, and stiff before the pose arrives where it must carry the robot.
STAND_UP_GAIN_RAMP: Final = 2.0


class Mode(enum.Enum):
    PASSIVE = "PASSIVE"
    DAMPING = "DAMPING"
    STAND_UP = "STAND_UP"
    HOLD = "HOLD"
    PLAN = "PLAN"
    E_STOP = "E_STOP"


#: Modes that drive the robot to a pose, where the tilt and joint-speed guards act. In PASSIVE and DAMPING
#: the robot is already limp (a fallen robot can be reset and lifted without the guards tripping again).
DRIVEN: Final = (Mode.STAND_UP, Mode.HOLD, Mode.PLAN)


@dataclasses.dataclass(frozen=True)
class SafetyParams:
    model_path: str
    control_rate_hz: float
    damping_kd: float
    stand_up_s: float
    limit_margin_rad: float
    max_target_rate_rad_s: float
    max_kp: float
    max_kd: float
    max_effort: float
    max_tilt_rad: float
    max_joint_speed_rad_s: float
    speed_guard_joints: int
    state_timeout_s: float
    command_timeout_s: float
    joy_buttons: tuple[int, ...]  # button index per INTENTS entry; -1: none
    autostart: bool
    robot_description: str


def _declare(node: Node) -> SafetyParams:
    return SafetyParams(
        model_path=declare(node, "model_path", "", "Model bundle whose robot this guards (joints, limits, default "
                           "pose); '' = the shipped one, as the planner's.", read_only=True),
        control_rate_hz=declare(node, "control_rate_hz", 50.0, "Rate of the commands this node makes itself "
                                "(every mode but PLAN) and of SafetyStatus, Hz.", read_only=True,
                                bounds=(10.0, 1000.0)),
        damping_kd=declare(node, "damping_kd", 8.0, "Damping gain in DAMPING and E_STOP, N·m·s/rad.",
                           read_only=True, bounds=(0.0, 100.0)),
        stand_up_s=declare(node, "stand_up_s", 2.0, "Time STAND_UP takes from the measured to the default pose, s.",
                           read_only=True, bounds=(0.2, 30.0)),
        limit_margin_rad=declare(node, "limit_margin_rad", 0.02, "Position targets stay this far inside the "
                                 "joint limits, rad.", read_only=True, bounds=(0.0, 0.5)),
        max_target_rate_rad_s=declare(node, "max_target_rate_rad_s", 20.0, "Fastest a position target may move, "
                                      "rad/s.", read_only=True, bounds=(0.1, 1000.0)),
        max_kp=declare(node, "max_kp", 500.0, "Largest stiffness passed, N·m/rad.", read_only=True,
                       bounds=(0.0, 1000.0)),
        max_kd=declare(node, "max_kd", 20.0, "Largest damping passed, N·m·s/rad.", read_only=True,
                       bounds=(0.0, 100.0)),
        max_effort=declare(node, "max_effort", 0.0, "Largest feed-forward torque passed, N·m (0: none; the planner "
                           "sends none).", read_only=True, bounds=(0.0, 500.0)),
        max_tilt_rad=declare(node, "max_tilt_rad", 1.0, "Pelvis tilt from upright that latches E_STOP, rad "
                             "(about 57 degrees, RoboJuDo's).", read_only=True, bounds=(0.05, math.pi)),
        max_joint_speed_rad_s=declare(node, "max_joint_speed_rad_s", 25.0, "Joint speed counted by the speed "
                                      "guard, rad/s.", read_only=True, bounds=(0.1, 1000.0)),
        speed_guard_joints=declare(node, "speed_guard_joints", 3, "This many joints over the speed latch E_STOP.",
                                   read_only=True, bounds=(1, 1000)),
        state_timeout_s=declare(node, "state_timeout_s", 0.1, "No joint state for this long: DAMPING, s.",
                                read_only=True, bounds=(0.01, 10.0)),
        command_timeout_s=declare(node, "command_timeout_s", 0.1, "In PLAN, no planner command for this long: "
                                  "HOLD, s.", read_only=True, bounds=(0.01, 10.0)),
        # No buttons unless configured: a mapping assumes one pad's layout (launch/config/sim.params.yaml holds
        # joy_linux's Xbox one), and another pad's buttons would mean other intents.
        joy_buttons=tuple(declare(node, "joy_buttons", [-1] * len(INTENTS), "sensor_msgs/Joy button index of "
                                  f"each intent, in the order {', '.join(INTENTS)}; -1: none.", read_only=True)),
        autostart=declare(node, "autostart", False, "Simulation only: walk DAMPING -> STAND_UP -> HOLD -> PLAN "
                          "once at start, as soon as each step is allowed (never after an E_STOP).", read_only=True),
        robot_description=declare(node, "robot_description", "", "The robot's description (YAML, "
                                  "ezm_ros.preflight): the bundle is checked against it at start and PLAN is "
                                  "refused on any difference ('': no check).", read_only=True),
    )


def tilt_of(quat_wxyz: np.ndarray) -> float:
    """Angle between the body's z axis and the world's, rad."""
    w, x, y, z = quat_wxyz / max(float(np.linalg.norm(quat_wxyz)), 1e-12)
    return math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (x * x + y * y))))


class SafetyNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = _declare(self)
        if len(self.p.joy_buttons) != len(INTENTS):
            raise StartupError(f"parameter joy_buttons: {len(self.p.joy_buttons)} entries, one per intent "
                               f"({', '.join(INTENTS)}) expected")
        scheduling = declare_scheduling(self)
        try:
            robot = read_manifest(model_path.resolve(self.p.model_path)).robot
            description = load_description(self.p.robot_description) if self.p.robot_description else None
        except (BundleError, FileNotFoundError, DescriptionError) as err:
            raise StartupError(str(err)) from None
        # The pre-flight check: differences between the bundle and the robot's own description stop PLAN.
        self.preflight_problems = preflight(robot, description) if description is not None else []
        if self.preflight_problems:
            self.get_logger().error("pre-flight check: the bundle does not fit this robot; PLAN is refused:\n"
                                    + "\n".join(self.preflight_problems))
        self.joints = list(robot.joint_names)
        low, high = np.asarray(robot.ctrl_low), np.asarray(robot.ctrl_high)
        self.low, self.high = low + self.p.limit_margin_rad, high - self.p.limit_margin_rad
        self.default_pose = np.clip(robot.to_ctrl(np.asarray(robot.hold_action, np.float32)).astype(np.float64),
                                    self.low, self.high)
        # The gains the model was trained with: STAND_UP ramps kp up to them and HOLD holds at them. A bundle that
        # does not record them leaves both at the robot's own gains, and says so.
        self.trained_gains = (np.asarray(robot.kp), np.asarray(robot.kd)) if robot.kp else None
        if self.trained_gains is None:
            self.get_logger().warning("the bundle does not record its servo gains: STAND_UP and HOLD use the "
                                      "robot's own, with no ramp (export the bundle again to record them)")
        self.dt = 1.0 / self.p.control_rate_hz
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)

        self.mode, self.reason, self._mode_since = Mode.DAMPING, "start", time.monotonic()
        self.faults = 0
        self.counters = dict.fromkeys(("rejected_nonfinite", "clamped_positions", "rate_limited", "gains_limited",
                                       "state_watchdog_trips", "command_watchdog_trips", "estops"), 0)
        self._q: np.ndarray | None = None  # measured joint positions, in self.joints order
        self._state_wall = -math.inf
        self._odom_wall = -math.inf
        self._last_sent_wall: float | None = None
        self._last_safe: JointCommand | None = None
        self._state_stamp = None
        self._planner_wall = -math.inf
        self._stand_from: np.ndarray | None = None
        self._last_target: np.ndarray | None = None  # the last position target sent
        self._joy_previous: tuple[int, ...] = ()
        self._log_error = BurstLog(self.get_logger().error)
        self._autostarted = False

        self._pub_command = self.create_publisher(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
        self._pub_status = self.create_publisher(SafetyStatus, topics.SAFETY, qos.LATCHED)
        self.create_subscription(JointCommand, topics.PLANNER_COMMAND, self._on_planner_command, qos.COMMAND)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, qos.SENSOR)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.SENSOR)
        self.create_subscription(Joy, topics.JOY, self._on_joy, qos.SENSOR)
        for intent in INTENTS:
            self.create_service(Trigger, f"{topics.MODE_SERVICES}/{intent}",
                                lambda request, response, intent=intent: self._on_intent(intent, response))
        self.create_timer(self.dt, self._tick, clock=self._steady)
        self.get_logger().info(f"guarding {len(self.joints)} joints of {robot.name}; {self.mode.value}; "
                               f"{scheduling}")

    # --- modes -------------------------------------------------------------------------------------------
    def request(self, intent: str, why: str, *, ends_autostart: bool = True) -> tuple[bool, str]:
        """Try the transition `intent` asks for; (done, reason). An operator's, a guard's or a watchdog's
        request ends autostart for good (ends_autostart); the node's own steps do not."""
        mode, now = self.mode, time.monotonic()
        if ends_autostart:
            self._autostarted = True
        fresh = self._q is not None and now - min(self._state_wall, self._odom_wall) <= self.p.state_timeout_s
        if intent == "estop":
            return self._enter(Mode.E_STOP, why)
        if mode is Mode.E_STOP and intent != "reset":
            return False, f"E_STOP is latched ({self.reason}); call reset first"
        if intent == "reset":
            if mode is not Mode.E_STOP:
                return False, f"nothing to reset: the mode is {mode.value}"
            self.faults = 0
            return self._enter(Mode.DAMPING, why)
        if intent == "passive":
            return self._enter(Mode.PASSIVE, why)
        if intent == "damping":
            return self._enter(Mode.DAMPING, why)
        if intent == "stand_up":
            if mode not in (Mode.DAMPING, Mode.PASSIVE):
                return False, f"stand_up starts from DAMPING or PASSIVE, not {mode.value}"
            if not fresh:
                return False, "no fresh joint state and odometry: the stand-up starts from the measured pose"
            self._stand_from = self._q.copy()
            return self._enter(Mode.STAND_UP, why)
        if intent == "hold":
            if mode is Mode.STAND_UP and now - self._mode_since < self.p.stand_up_s:
                return False, f"the stand-up has {self.p.stand_up_s - (now - self._mode_since):.1f} s to go"
            if mode not in (Mode.STAND_UP, Mode.PLAN, Mode.HOLD):
                return False, f"hold follows STAND_UP or PLAN, not {mode.value}"
            return self._enter(Mode.HOLD, why)
        if intent == "plan":
            if self.preflight_problems:
                return False, "pre-flight check failed: " + "; ".join(p.strip() for p in self.preflight_problems)
            if mode is not Mode.HOLD:
                return False, f"plan starts from HOLD, not {mode.value}"
            if not fresh:
                return False, "no fresh joint state and odometry"
            if now - self._planner_wall > self.p.command_timeout_s:
                return False, "no planner command is arriving (is the planner running, on ezm/planner_command?)"
            return self._enter(Mode.PLAN, why)
        return False, f"unknown intent {intent!r}; one of {', '.join(INTENTS)}"

    def _enter(self, mode: Mode, why: str) -> tuple[bool, str]:
        if mode is Mode.E_STOP and self.mode is not Mode.E_STOP:
            self.counters["estops"] += 1
        if mode is not self.mode:
            change = f"{self.mode.value} -> {mode.value}: {why}"
            if mode in (Mode.E_STOP, Mode.DAMPING):  # rclpy wants one severity per call site
                self.get_logger().warning(change)
            else:
                self.get_logger().info(change)
            self.mode, self._mode_since = mode, time.monotonic()
        self.reason = why
        self._publish_status()
        return True, f"{mode.value}: {why}"

    def _on_intent(self, intent: str, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.request(intent, f"service {intent}")
        return response

    def _on_joy(self, msg: Joy) -> None:
        pressed = tuple(msg.buttons)
        for intent, button in zip(INTENTS, self.p.joy_buttons):
            if 0 <= button < len(pressed) and pressed[button] and not (
                    button < len(self._joy_previous) and self._joy_previous[button]):
                self.request(intent, f"joystick button {button} ({intent})")
        self._joy_previous = pressed

    # --- state and guards --------------------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if any(name not in index for name in self.joints) or len(msg.position) != len(msg.name):
            return  # not this robot's full state: the watchdog sees no fresh state
        q = np.array([msg.position[index[name]] for name in self.joints])
        with_velocity = len(msg.velocity) == len(msg.name)
        dq = np.array([msg.velocity[index[name]] for name in self.joints]) if with_velocity else np.zeros(len(q))
        if not (np.isfinite(q).all() and np.isfinite(dq).all()):
            self.faults |= SafetyStatus.FAULT_STATE_NONFINITE
            return
        self.faults &= ~SafetyStatus.FAULT_STATE_NONFINITE
        self._q, self._state_wall, self._state_stamp = q, time.monotonic(), msg.header.stamp
        fast = int(np.sum(np.abs(dq) > self.p.max_joint_speed_rad_s))
        if fast >= self.p.speed_guard_joints and self.mode in DRIVEN:
            self.faults |= SafetyStatus.FAULT_JOINT_SPEED
            self.request("estop", f"joint-speed guard: {fast} joints over {self.p.max_joint_speed_rad_s:g} rad/s")

    def _on_odom(self, msg: Odometry) -> None:
        o = msg.pose.pose.orientation
        quat = np.array([o.w, o.x, o.y, o.z])
        if not np.isfinite(quat).all() or np.dot(quat, quat) < 0.5:
            self.faults |= SafetyStatus.FAULT_STATE_NONFINITE
            return
        self._odom_wall = time.monotonic()
        tilt = tilt_of(quat)
        if tilt > self.p.max_tilt_rad and self.mode in DRIVEN:
            self.faults |= SafetyStatus.FAULT_TILT
            self.request("estop", f"tilt guard: pelvis {math.degrees(tilt):.0f} degrees from upright")

    def _on_planner_command(self, msg: JointCommand) -> None:
        """Only an accepted command counts as the planner being alive: one that sends nothing usable trips
        the command watchdog like one that sends nothing."""
        try:
            if self.mode is Mode.PLAN:
                if self._send_guarded(msg):
                    self._planner_wall = time.monotonic()
                elif self._last_safe is not None:
                    self._pub_command.publish(self._last_safe)  # the robot keeps its last safe command
            elif self._usable(msg):
                self._planner_wall = time.monotonic()
        except Exception as err:  # noqa: BLE001  a crafted message must not end the safety layer
            self._fail(err)

    def _tick(self) -> None:
        try:
            self._step(time.monotonic())
        except Exception as err:  # noqa: BLE001  the safety layer must outlive its own bugs: it damps
            self._fail(err)

    def _fail(self, err: Exception) -> None:
        """An error in this node's own code: latch E_STOP and damp, directly (the guards may be what failed)."""
        self._log_error(f"safety layer error ({type(err).__name__}: {err}); E_STOP")
        self._enter(Mode.E_STOP, f"internal error: {type(err).__name__}")
        n = len(self.joints)
        self._pub_command.publish(JointCommand(name=list(self.joints), position=self.default_pose.tolist(),
                                               kp=[0.0] * n, kd=[self.p.damping_kd] * n))

    def _step(self, now: float) -> None:
        age = now - min(self._state_wall, self._odom_wall)
        stale = age > self.p.state_timeout_s
        if self.mode not in (Mode.PASSIVE, Mode.DAMPING, Mode.E_STOP) and stale:
            self.faults |= SafetyStatus.FAULT_STATE_STALE
            self.counters["state_watchdog_trips"] += 1
            self.request("damping", f"state watchdog: no joint state or odometry for {age:.2f} s")
        elif not stale:
            self.faults &= ~SafetyStatus.FAULT_STATE_STALE
        if now - self._planner_wall > self.p.command_timeout_s:
            if self.mode is Mode.PLAN:
                self.faults |= SafetyStatus.FAULT_COMMAND_STALE
                self.counters["command_watchdog_trips"] += 1
                self.request("hold", f"command watchdog: no usable planner command for "
                             f"{now - self._planner_wall:.2f} s")
        else:
            self.faults &= ~SafetyStatus.FAULT_COMMAND_STALE
        if self.mode is Mode.STAND_UP and now - self._mode_since >= self.p.stand_up_s:
            self.request("hold", "the stand-up finished", ends_autostart=False)
        if self.p.autostart and self.counters["estops"] == 0 and not self._autostarted:
            self._autostart_step()
        # Autostart sends nothing before its stand-up begins: a simulator keeps its physics paused until the
        # first command, so the robot is not damped down before the stand-up starts from where it stands.
        waiting_to_autostart = self.p.autostart and not self._autostarted and self.mode is Mode.DAMPING
        if self.mode is not Mode.PLAN and not waiting_to_autostart:
            self._send_own(now)
        self._publish_status()

    def _autostart_step(self) -> None:
        """One step of autostart's way to PLAN; it ends there, or for good at the first E_STOP."""
        intent = {Mode.DAMPING: "stand_up", Mode.PASSIVE: "stand_up", Mode.STAND_UP: "hold", Mode.HOLD: "plan"}.get(
            self.mode)
        if self.mode is Mode.PLAN:
            self._autostarted = True
        elif intent is not None:
            self.request(intent, f"autostart ({intent})", ends_autostart=False)

    def _send_own(self, now: float) -> None:
        """The command of every mode but PLAN."""
        n = len(self.joints)
        target = self._last_target if self._last_target is not None else (
            self._q if self._q is not None else self.default_pose)
        kp = kd = None
        if self.mode is Mode.PASSIVE:
            kp, kd = np.zeros(n), np.zeros(n)
        elif self.mode in (Mode.DAMPING, Mode.E_STOP):
            kp, kd = np.zeros(n), np.full(n, self.p.damping_kd)
            if self._q is not None:
                target = self._q  # irrelevant at kp 0; keeps the target where the joint is
        elif self.mode is Mode.STAND_UP:
            elapsed = (now - self._mode_since) / self.p.stand_up_s
            s = min(1.0, elapsed)
            s = s * s * (3.0 - 2.0 * s)  # smoothstep: no velocity jump at either end
            target = (1.0 - s) * self._stand_from + s * self.default_pose
            if self.trained_gains is not None:  # stiffness from 0 to the trained kp over the first half
                kp, kd = self.trained_gains[0] * min(1.0, STAND_UP_GAIN_RAMP * elapsed), self.trained_gains[1]
        elif self.mode is Mode.HOLD:
            target = self.default_pose
            if self.trained_gains is not None:
                kp, kd = self.trained_gains
        command = JointCommand(name=list(self.joints), position=np.asarray(target, np.float64).tolist())
        if kp is not None:
            command.kp, command.kd = kp.tolist(), kd.tolist()
        self._send_guarded(command, rate_limit=self.mode in (Mode.HOLD, Mode.PLAN))

    def _usable(self, msg: JointCommand) -> dict[str, np.ndarray] | None:
        """The command's fields in self.joints order, or None if it names other joints, a field's length is
        not its names' (an empty optional field is fine) or anything is NaN/inf."""
        names = list(msg.name)
        index = {name: i for i, name in enumerate(names)}
        if len(names) != len(self.joints) or len(index) != len(names) or any(n not in index for n in self.joints):
            return None
        order = [index[name] for name in self.joints]
        fields = {}
        for field in ("position", "velocity", "effort", "kp", "kd"):
            values = np.asarray(getattr(msg, field), np.float64)
            if len(values) not in ((len(names),) if field == "position" else (0, len(names))):
                return None
            if not np.isfinite(values).all():
                return None
            fields[field] = values[order] if len(values) else values
        return fields

    def _send_guarded(self, msg: JointCommand, rate_limit: bool = True) -> bool:
        """The guards every command passes, then publish; False (and nothing sent) if it was refused."""
        fields = self._usable(msg)
        if fields is None:
            self.counters["rejected_nonfinite"] += 1
            self.faults |= SafetyStatus.FAULT_COMMAND_REFUSED
            return False
        self.faults &= ~SafetyStatus.FAULT_COMMAND_REFUSED
        target = np.clip(fields["position"], self.low, self.high)
        if not np.array_equal(target, fields["position"]):
            self.counters["clamped_positions"] += 1
        now = time.monotonic()
        if rate_limit and self._last_target is not None and self._last_sent_wall is not None:
            # per second of wall time, whatever the message rate: a faster publisher gains nothing
            step = self.p.max_target_rate_rad_s * min(now - self._last_sent_wall, self.dt)
            limited = np.clip(target, self._last_target - step, self._last_target + step)
            if not np.array_equal(limited, target):
                self.counters["rate_limited"] += 1
            target = limited
        cut = {}
        for field, bound, low in (("kp", self.p.max_kp, 0.0), ("kd", self.p.max_kd, 0.0),
                                  ("velocity", self.p.max_joint_speed_rad_s, -self.p.max_joint_speed_rad_s),
                                  ("effort", self.p.max_effort, -self.p.max_effort)):
            value = fields[field]
            cut[field] = np.clip(value, low, bound)
            if len(value) and not np.array_equal(cut[field], value):
                self.counters["gains_limited"] += 1
        out = JointCommand(name=list(self.joints), position=target.tolist(),
                           **{field: value.tolist() for field, value in cut.items()})
        out.header.stamp = msg.header.stamp if (msg.header.stamp.sec or msg.header.stamp.nanosec) else (
            self._state_stamp if self._state_stamp is not None else out.header.stamp)
        self._last_target, self._last_sent_wall, self._last_safe = target, now, out
        self._pub_command.publish(out)
        return True

    def _publish_status(self) -> None:
        msg = SafetyStatus(mode=self.mode.value, reason=self.reason, faults=self.faults,
                           mode_age_s=time.monotonic() - self._mode_since, **self.counters)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub_status.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(SafetyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
