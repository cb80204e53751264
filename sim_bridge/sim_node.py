"""`sim_node`: the HumanoidBench H1 scene of the active task, stepped as a robot would run.

Real time (default): every 20 ms of wall time, one control step (10 physics steps of 2 ms) with the
latest joint command, then the robot's state is published. Lockstep (`lockstep: true`): one control step
per received command, for deterministic evaluation; nothing moves without a command.

Publishes (relative names, `ezm_ros.topics`; QoS `ezm_ros.qos`): `joint_states`, `imu` (pelvis),
`odom` (`odom` -> `pelvis`, twist in the pelvis frame), `task_state` (ezm_msgs/TaskState), `/clock` (sim
time; every stamp above is sim time), `diagnostics` (mode, real-time factor, command statistics) and,
with `publish_observation`, `sim/observation` (the env's own observation, to verify the planner's).
Subscribes `joint_command` (ezm_msgs/JointCommand) and `ezm/active_task` (the planner's accepted task,
whose scene it loads). Services: `sim/reset` (std_srvs/Trigger), `sim/load_task` (ezm_msgs/SwitchTask).
In real time a scene compiles on a thread of its own (normal scheduling) while the loop steps the old one,
and the control thread swaps it in when it is built; lockstep loads it in place.

Safety, as a robot's low-level controller: the last good command is held; a command with wrong lengths,
unknown joints or NaN is rejected (logged once per burst) and the previous one stays; with no command
for `command_timeout_s` the servos drop to damping (kp 0, kd `damping_kd`) until commands return.
Physics stays paused until the first command arrives (`wait_for_first_command`), so the robot does not
fall while the planner is still loading its model.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import enum
import time
from typing import Final

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

import sim_bridge
from ezm_msgs.msg import JointCommand, TaskCommand, TaskState
from ezm_msgs.srv import SwitchTask
from ezm_ros import conversions, model_path, nodes, qos, topics
from ezm_ros.manifest import FREE_QPOS, FREE_QVEL
from ezm_ros.node_runtime import (
    SEED_BOUNDS,
    BurstLog,
    RateLimiter,
    StartupError,
    declare,
    declare_scheduling,
    follow_live_parameters,
    normal_scheduling,
    run_node,
)
from ezm_ros.task_names import TaskNameError, short_task_name
from sim_bridge import registry
from sim_bridge.bundle_robot import BundleError, OtherRobotError, check_bundle_robot
from sim_bridge.env import HumanoidEnv
from sim_bridge.h1 import constants
from sim_bridge.joint_servos import DEFAULT_DAMPING_KD, MAX_KD, CommandError, Servos, parse_joint_command
from sim_bridge.perturbations import LEVELS as PERTURBATION_LEVELS
from sim_bridge.perturbations import Perturber

NODE_NAME: Final = "ezm_sim"
#: Names of the 3-vectors a task's observation appends after qpos and qvel (see ezm_msgs/TaskState).
#: Reach (sim_bridge/tasks/reach.py `observation`): the left hand site, then the goal.
OBSERVATION_POINT_NAMES: Final = {"reach": ("left_hand", "goal")}
#: Seconds without a rejected command after which the next rejection is logged again.
REJECT_LOG_QUIET_S: Final = 1.0
#: Samples kept for the latency and period statistics in diagnostics (60 s at 50 Hz).
STATS_WINDOW: Final = 3000
DIAGNOSTICS_PERIOD_S: Final = 0.5
#: Sim-time stamps remembered with their publication time, to time commands that echo them.
STAMP_MEMORY: Final = 64
#: Scene loads (a MuJoCo compile each, 0.1-0.5 s) at most this many a second, in bursts of SCENE_LOAD_BURST:
#: anyone can publish ezm/active_task. Beyond it the newest asked scene is loaded when allowed (checked
#: every SCENE_RETRY_S), so a flood costs a few loads, not one each, and the last word still wins.
SCENE_LOADS_PER_S: Final = 2.0
SCENE_LOAD_BURST: Final = 4
SCENE_RETRY_S: Final = 0.1


@dataclasses.dataclass
class _SceneBuild:
    """A scene compiled off the control thread (real time), installed by the control thread when done."""

    name: str
    speed: float | None
    built: concurrent.futures.Future  # -> (HumanoidEnv, first observation, seconds the build took)
    started_steps: int  # control steps of the old scene when the build started (the log says how many it made)
    why: str  # for the log: who asked


def _build_scene(name: str, collision: str, seed: int) -> tuple[HumanoidEnv, np.ndarray, float]:
    """Compile and reset a task's scene (0.1-0.5 s of MuJoCo compile; it releases the GIL most of the time)."""
    start = time.monotonic()
    env = sim_bridge.make(registry.env_id(constants.ROBOT_NAME, name), collision=collision).unwrapped
    obs, _ = env.reset(seed=seed)
    return env, obs, time.monotonic() - start


class Mode(enum.Enum):
    WAITING = "waiting for the first command"  # physics paused
    COMMANDED = "commanded"
    DAMPING = "damping"  # commands stopped: kp 0, kd damping_kd


@dataclasses.dataclass(frozen=True)
class SimParams:
    task: str
    seed: int
    lockstep: bool
    collision: str
    command_timeout_s: float
    damping_kd: float
    wait_for_first_command: bool
    reset_after_fall_s: float
    follow_active_task: bool
    publish_clock: bool
    publish_observation: bool
    lockstep_republish_s: float
    model_path: str
    max_command_age_s: float
    perturbation: str


#: What `ros2 param set` changes while the simulator runs; every other parameter is read-only.
LIVE_PARAMETERS: Final = ("command_timeout_s", "damping_kd", "reset_after_fall_s", "perturbation")


def _declare_params(node: Node) -> SimParams:
    p = SimParams(
        task=declare(node, "task", nodes.DEFAULT_TASK, "Task whose scene is loaded at start (short name or env id); "
                     "later the planner's accepted task (ezm/active_task) selects it.", read_only=True),
        seed=declare(node, "seed", 0, "Seed of the first reset; reset k uses seed + k.", read_only=True,
                     bounds=SEED_BOUNDS),
        lockstep=declare(node, "lockstep", False, "One control step per received command instead of real "
                         "time (deterministic evaluation).", read_only=True),
        collision=declare(node, "collision", constants.COLLISION_HUMANOIDBENCH,
                          f"Robot collision variant: {', '.join(constants.COLLISION_VARIANTS)}.", read_only=True),
        command_timeout_s=declare(node, "command_timeout_s", 0.25, "Seconds without a joint command before "
                                  "the servos drop to damping (real-time mode). Live.", bounds=(0.02, 2.0)),
        damping_kd=declare(node, "damping_kd", DEFAULT_DAMPING_KD, "Damping-mode gain, N·m·s/rad. Live.",
                           bounds=(0.0, MAX_KD)),
        wait_for_first_command=declare(node, "wait_for_first_command", True, "Keep physics paused until the "
                                       "first joint command arrives.", read_only=True),
        reset_after_fall_s=declare(node, "reset_after_fall_s", 2.0, "Sim seconds after the task's "
                                   "termination (a fall) before an automatic reset; 0 disables it. Live.",
                                   bounds=(0.0, 600.0)),
        follow_active_task=declare(node, "follow_active_task", True, "Load the scene of the planner's "
                                   "accepted task (ezm/active_task).", read_only=True),
        publish_clock=declare(node, "publish_clock", True, "Publish sim time on /clock (use_sim_time).",
                              read_only=True),
        publish_observation=declare(node, "publish_observation", False, "Also publish the env's own "
                                    "observation on sim/observation (verification).", read_only=True),
        lockstep_republish_s=declare(node, "lockstep_republish_s", 0.1, "Lockstep: republish the current "
                                     "state after this many seconds without a command (lost samples).",
                                     read_only=True, bounds=(0.01, 10.0)),
        max_command_age_s=declare(node, "max_command_age_s", 0.2, "Real time: a command planned from a state "
                                  "older than this (sim time, s) is refused as stale, and one stamped ahead of the "
                                  "simulation's clock as implausible (unstamped commands pass).", read_only=True,
                                  bounds=(0.02, 10.0)),
        perturbation=declare(node, "perturbation", "none", "Perturbed sim2sim, one of "
                             f"{', '.join(PERTURBATION_LEVELS)} (sim_bridge/perturbations.py): masses, friction, "
                             "motor strength and encoder bias drawn at each reset, action latency, encoder noise, "
                             "period jitter and pushes every step. Live: a change draws at once."),
        model_path=declare(node, "model_path", "", "The planner's model bundle ('' = the shipped one), checked at "
                           "start: one made for another robot (joints, their order, ctrl ranges) ends this node "
                           "with the differences. The launch passes the planner's.", read_only=True),
    )
    return p


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = _declare_params(self)
        if self.p.perturbation not in PERTURBATION_LEVELS:
            raise StartupError(f"parameter perturbation: {self.p.perturbation!r} is not one of "
                               f"{', '.join(PERTURBATION_LEVELS)}")
        self._scheduling = declare_scheduling(self)
        self.add_on_set_parameters_callback(self._check_parameters)
        follow_live_parameters(self, LIVE_PARAMETERS, lambda: self.p, self._apply_parameters)
        self._perturbation_draws = 0  # draws made by parameter changes (their seeds differ from the resets')
        self._measured = None  # (state key, the noisy qpos and qvel published for it)
        self._installs = 0  # scenes installed so far (part of that key: a new scene is a new reading)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        sensor_overrides = QoSOverridingOptions.with_default_policies()
        self._pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, qos.SENSOR,
                                                 qos_overriding_options=sensor_overrides)
        self._pub_imu = self.create_publisher(Imu, topics.IMU, qos.SENSOR, qos_overriding_options=sensor_overrides)
        self._pub_odom = self.create_publisher(Odometry, topics.ODOM, qos.SENSOR,
                                               qos_overriding_options=sensor_overrides)
        self._pub_task = self.create_publisher(TaskState, topics.TASK_STATE, qos.SENSOR,
                                               qos_overriding_options=sensor_overrides)
        self._pub_clock = (self.create_publisher(ClockMsg, topics.CLOCK, qos.CLOCK) if self.p.publish_clock
                           else None)
        self._pub_obs = (self.create_publisher(Float64MultiArray, "sim/observation", qos.SENSOR)
                         if self.p.publish_observation else None)
        self._pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)

        # Simulation state.
        self._sim_time_ns = 0  # monotonic across resets and scene loads (a clock must not jump back)
        self._resets = 0
        self._mode = Mode.WAITING if self.p.wait_for_first_command else Mode.DAMPING
        self._command = None  # last good ServoCommand
        self._last_good_command = None  # the command of the last step that succeeded
        self._last_command_wall = None
        self._fallen_since_ns: int | None = None
        self._episode_return = 0.0
        self._steps = 0
        self._last_step_wall = time.monotonic()
        # Real time: scenes compile on this thread, and the control thread installs them when done, so the
        # 50 Hz loop keeps stepping the old scene meanwhile. Lockstep loads in place (nothing moves anyway,
        # and a load's place among the commands must not depend on thread timing).
        self._scene_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene",
                                                                   initializer=normal_scheduling)
        self._builds: collections.deque[_SceneBuild] = collections.deque()
        self._load(self.p.task, keep_state=False)
        self._check_planner_model()

        # Statistics for diagnostics.
        self._received = 0
        self._rejected = 0
        self._last_reject_wall = -np.inf
        self._damping_entries = 0
        self._published_at: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._latencies_ms: collections.deque[float] = collections.deque(maxlen=STATS_WINDOW)
        self._periods_ms: collections.deque[float] = collections.deque(maxlen=STATS_WINDOW)
        self._rtf_anchor = (time.monotonic(), self._sim_time_ns)
        self._rtf = 0.0
        self._physics_errors = 0
        self._tick_errors = 0
        self._log_tick_error = BurstLog(self.get_logger().error)
        self._scene_loads = RateLimiter(SCENE_LOADS_PER_S, SCENE_LOAD_BURST)
        self._wanted_scene: tuple[str, float | None] | None = None  # asked by ezm/active_task, not yet loaded
        self._scene_loads_deferred = 0  # ezm/active_task requests not loaded at once (the newest is, later)
        self._scene_loads_refused = 0  # sim/load_task calls refused by the limit

        self.create_subscription(JointCommand, topics.JOINT_COMMAND, self._on_command, qos.COMMAND)
        if self.p.follow_active_task:
            self.create_subscription(TaskCommand, topics.ACTIVE_TASK, self._on_active_task, qos.LATCHED)
        self.create_service(Trigger, topics.SIM_RESET, self._on_reset)
        self.create_service(SwitchTask, topics.SIM_LOAD_TASK, self._on_load_task)
        if self.p.lockstep:
            self.create_timer(self.p.lockstep_republish_s, self._republish_if_idle, clock=self._steady)
        else:
            self.create_timer(constants.CONTROL_DT_S, self._tick, clock=self._steady)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, clock=self._steady)
        self.create_timer(SCENE_RETRY_S, self._advance_scenes, clock=self._steady)
        self._publish_state()
        self.get_logger().info(
            f"simulating {self._task_name} ({'lockstep' if self.p.lockstep else 'real time'}, "
            f"{self.p.collision} collision; {self._scheduling}); {self._mode.value}")

    # --- scene ------------------------------------------------------------------------------------------
    def _load(self, task: str, keep_state: bool, forward_speed: float | None = None) -> None:
        """Build the task's scene here and now (start, lockstep)."""
        name = short_task_name(task, registry.robot_tasks(constants.ROBOT_NAME))
        env, obs, _ = _build_scene(name, self.p.collision, self.p.seed + self._resets)
        self._install(env, obs, name, keep_state, forward_speed)

    def _install(self, env: HumanoidEnv, obs: np.ndarray, name: str, keep_state: bool,
                 forward_speed: float | None) -> None:
        """Make a built scene the simulated one; keep the robot's state when the scene has the same structure."""
        previous = getattr(self, "_env", None)
        self._installs += 1
        if keep_state and previous is not None and _same_structure(previous.model, env.model):
            env.set_state(previous.data.qpos.copy(), previous.data.qvel.copy())
            obs = env.task.observation(env.data)
        if previous is not None:
            previous.close()
        self._env = env
        self._task_name = name
        self._obs = obs
        self._servos = Servos(env.model, env.action_map.size)  # before the draw: it keeps the nominal gains
        self._perturber = Perturber(env.model, env.data, env.signals.robot_nq, env.signals.robot_nv,
                                    PERTURBATION_LEVELS[self.p.perturbation])
        self._draw_perturbation(self.p.seed + self._resets)
        self._fallen_since_ns = None
        self._episode_return = 0.0
        self._set_speed(forward_speed)

    def _draw_perturbation(self, seed: int) -> None:
        self._perturber.draw(seed)
        self._servos.strength = self._perturber.kp_factor

    def _check_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "perturbation" and param.value not in PERTURBATION_LEVELS:
                return SetParametersResult(successful=False, reason=f"perturbation must be one of "
                                           f"{', '.join(PERTURBATION_LEVELS)}, got {param.value!r}")
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: SimParams) -> None:
        changed = params.perturbation != self.p.perturbation
        self.p = params
        if changed:  # at once, on the running episode: a live sim2sim knob
            self._perturbation_draws += 1
            self._perturber.perturbation = PERTURBATION_LEVELS[params.perturbation]
            self._draw_perturbation(self.p.seed + self._resets + 100_003 * self._perturbation_draws)
            self.get_logger().info(f"perturbation {params.perturbation}: drawn on the running episode")

    def _set_speed(self, forward_speed: float | None) -> None:
        """Walk and run reward the speed they are asked for (HumanoidBench's `move_speed`); others have none."""
        task = self._env.task
        default = getattr(type(task), "move_speed", 0.0)  # the class's: HumanoidBench's speed for the task
        if default > 0:
            task.move_speed = float(forward_speed) if forward_speed is not None and forward_speed > 0 else default

    def _reset(self) -> None:
        self._resets += 1
        self._draw_perturbation(self.p.seed + self._resets)
        self._obs, _ = self._env.reset(seed=self.p.seed + self._resets)
        self._fallen_since_ns = None
        self._episode_return = 0.0

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset()
        self._publish_state()
        response.success = True
        response.message = f"reset {self._task_name} with seed {self.p.seed + self._resets}"
        self.get_logger().info(response.message)
        return response

    def _on_load_task(self, request: SwitchTask.Request, response: SwitchTask.Response) -> SwitchTask.Response:
        """Lockstep: answered with the scene loaded. Real time: answered at once, as the planner answers a model
        swap: the name is checked here, the scene compiles off the control thread (the loop keeps stepping the
        old one meanwhile) and `task_state` carries the new task once it is simulated, within a second. (An
        rclpy service cannot answer later without holding the executor: a coroutine callback that awaits
        keeps a single-threaded executor spinning on it, and the control timer starves.)"""
        command = request.command
        if not self._scene_loads.allow():  # the same budget as ezm/active_task's loads
            self._scene_loads_refused += 1
            response.accepted, response.active_task = False, self._task_name
            response.reason = (f"too many scene loads: at most {SCENE_LOADS_PER_S:g} per second (bursts of "
                               f"{SCENE_LOAD_BURST}); try again")
            return response
        speed = command.forward_speed_mps if command.has_forward_speed else None
        try:
            name = short_task_name(command.task, registry.robot_tasks(constants.ROBOT_NAME))
            if self.p.lockstep:
                self._load(name, keep_state=True, forward_speed=speed)
                self._publish_state()
                self.get_logger().info(f"loaded the scene of {self._task_name}")
            else:
                self._start_build(name, speed, "asked by sim/load_task")
                response.reason = (f"compiling the scene of {name} off the control thread; task_state carries it "
                                   "once it is simulated")
        except (TaskNameError, ValueError) as err:
            response.accepted, response.reason, response.active_task = False, str(err), self._task_name
            return response
        response.accepted, response.active_task = True, name
        return response

    def _on_active_task(self, msg: TaskCommand) -> None:
        try:
            name = short_task_name(msg.task, registry.robot_tasks(constants.ROBOT_NAME))
        except TaskNameError as err:
            self.get_logger().warning(f"ignoring active task: {err}")
            return
        speed = msg.forward_speed_mps if msg.has_forward_speed else None
        if name == self._task_name and not self._builds:  # same scene: only the asked speed may have changed
            self._wanted_scene = None
            self._set_speed(speed)
            return
        self._wanted_scene = (name, speed)  # the last word wins: an earlier wish not yet started is dropped
        started = self._advance_scenes()
        if not started and (self._wanted_scene is not None):
            self._scene_loads_deferred += 1

    def _start_build(self, name: str, speed: float | None, why: str) -> None:
        self._builds.append(_SceneBuild(name, speed, self._scene_thread.submit(
            _build_scene, name, self.p.collision, self.p.seed + self._resets), self._steps, why))

    def _advance_scenes(self) -> bool:
        """Install the scenes built since the last call, then start the one `ezm/active_task` wants when nothing
        is building and the rate limit allows (lockstep: load it here). Called every tick and SCENE_RETRY_S.
        Returns whether the wanted scene was started or loaded."""
        while self._builds and self._builds[0].built.done():
            build = self._builds.popleft()
            try:
                env, obs, seconds = build.built.result()
            except Exception as err:  # noqa: BLE001  a scene that fails to build leaves the old one running
                self.get_logger().error(f"the scene of {build.name} failed to build ({type(err).__name__}: {err}); "
                                        f"still simulating {self._task_name}")
                if self._wanted_scene is not None and self._wanted_scene[0] == build.name:
                    self._wanted_scene = None  # not tried again until asked again (it would fail the same way)
                continue
            speed = build.speed
            if self._wanted_scene is not None and self._wanted_scene[0] == build.name:
                speed, self._wanted_scene = self._wanted_scene[1], None
            self._install(env, obs, build.name, keep_state=True, forward_speed=speed)
            self._publish_state()
            deferred = f"; {self._scene_loads_deferred} requests deferred so far" if self._scene_loads_deferred else ""
            self.get_logger().info(f"{build.why}: loaded the scene of {build.name} (compiled in {seconds:.3f} s off "
                                   f"the control thread; the old scene made {self._steps - build.started_steps} "
                                   f"control steps meanwhile{deferred})")
        if self._wanted_scene is None or self._builds:
            return False
        name, speed = self._wanted_scene
        if name == self._task_name:
            self._wanted_scene = None
            self._set_speed(speed)
            return True
        if not self._scene_loads.allow():
            return False
        if self.p.lockstep:
            self._wanted_scene = None
            self._load(name, keep_state=True, forward_speed=speed)
            self._publish_state()
            self.get_logger().info(f"following the planner: loaded the scene of {name}")
        else:
            self._start_build(name, speed, "following the planner")  # wanted until installed or replaced
        return True

    # --- commands -------------------------------------------------------------------------------------------
    def _on_command(self, msg: JointCommand) -> None:
        now = time.monotonic()
        self._received += 1
        try:
            command = parse_joint_command(msg.name, msg.position, msg.velocity, msg.effort, msg.kp, msg.kd,
                                          constants.ACTUATORS, self._servos.limits)
        except CommandError as err:
            self._reject(str(err), now)
            return
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
        if stamp_ns and not self.p.lockstep:  # 0: an unstamped command (ros2 topic pub), which has no age
            if stamp_ns > self._sim_time_ns:
                self._reject(f"stamped {1e-9 * (stamp_ns - self._sim_time_ns):.3f} s ahead of the simulation's "
                             f"clock", now)
                return
            if self._sim_time_ns - stamp_ns > self.p.max_command_age_s * 1e9:
                self._reject(f"stale: planned from a state {1e-9 * (self._sim_time_ns - stamp_ns):.3f} s old "
                             f"(max_command_age_s {self.p.max_command_age_s:g})", now)
                return
        published = self._published_at.get(stamp_ns) if stamp_ns else None  # 0: an unstamped command
        if published is not None:
            self._latencies_ms.append(1e3 * (now - published))
        if self._last_command_wall is not None:
            self._periods_ms.append(1e3 * (now - self._last_command_wall))
        self._last_command_wall = now
        self._command = command
        if self._mode is not Mode.COMMANDED:
            if self._mode is Mode.DAMPING:
                self.get_logger().info("joint commands are back: leaving damping mode")
            self._mode = Mode.COMMANDED
        if self.p.lockstep and (stamp_ns == 0 or stamp_ns >= self._sim_time_ns):
            # A command computed from an older state is held but does not step the simulation.
            self._step_and_publish()

    def _check_planner_model(self) -> None:
        """StartupError if the planner's bundle drives another robot than this H1. A bundle that cannot be
        found or read is the planner's to report (it exits saying why), so that only warns here."""
        try:
            check_bundle_robot(model_path.resolve(self.p.model_path), self._env.action_map)
        except OtherRobotError as err:
            raise StartupError(str(err)) from None
        except (BundleError, OSError) as err:
            self.get_logger().warning(f"the planner's model was not checked against the simulated H1: {err}")

    def _reject(self, reason: str, now: float) -> None:
        self._rejected += 1
        if now - self._last_reject_wall > REJECT_LOG_QUIET_S:
            self.get_logger().warning(f"rejected joint command ({reason}); holding the last good command "
                                      f"(further rejections in this burst are counted, not logged)")
        self._last_reject_wall = now

    # --- stepping ---------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        """Real-time mode, every 20 ms of wall time."""
        now = time.monotonic()
        if self._builds and self._builds[0].built.done():
            self._advance_scenes()
        self._watchdog(now)
        if self._mode is not Mode.WAITING:
            self._step_and_publish()
        else:
            self._publish_state()

    def _step_and_publish(self) -> None:
        """One control step and its state. Whatever fails in it is counted and logged once per burst; the
        command that failed is dropped for the last one a step succeeded with (damping if none), and the clock
        still advances one step, so a lockstep planner gets a new state to plan from instead of waiting for
        ever: the robot the simulator stands in for does not stop either."""
        before = self._sim_time_ns
        try:
            self._step()
            self._last_good_command = self._command
        except Exception as err:  # noqa: BLE001  the control loop must outlive any one step
            self._tick_errors += 1
            self._command = self._last_good_command
            if self._sim_time_ns == before:
                self._sim_time_ns += int(round(constants.CONTROL_DT_S * 1e9))
            self._log_tick_error(f"control step failed ({type(err).__name__}: {err}); back to the last good "
                                 f"command ({self._tick_errors} failed steps so far)")
        self._publish_state()

    def _watchdog(self, now: float) -> None:
        if (self._mode is Mode.COMMANDED and self._last_command_wall is not None
                and now - self._last_command_wall > self.p.command_timeout_s):
            self._mode = Mode.DAMPING
            self._damping_entries += 1
            self.get_logger().warning(f"no joint command for {now - self._last_command_wall:.2f} s "
                                      f"(timeout {self.p.command_timeout_s} s): damping mode, kp 0, kd "
                                      f"{self.p.damping_kd}")

    def _republish_if_idle(self) -> None:
        """Lockstep: a lost best-effort sample must not stall the loop, so repeat the state when idle."""
        if time.monotonic() - self._last_step_wall >= self.p.lockstep_republish_s:
            self._publish_state()

    def _step(self) -> None:
        env = self._env
        if self._mode is Mode.DAMPING or self._command is None:
            self._servos.damp(self.p.damping_kd)
            # irrelevant with kp 0; keeps ctrl in range
            target = env.data.qpos[FREE_QPOS:FREE_QPOS + env.action_map.size]
        else:
            command = self._perturber.delay(self._command)  # the perturbation's latency (none: this one)
            self._servos.apply(command)
            # MuJoCo clamps ctrl to each servo's range anyway; clamping first keeps the action map finite
            # for absurd targets (±1.8e308 would overflow it and end the node).
            target = np.clip(command.position, env.action_map.low, env.action_map.high)
        self._perturber.step_begin()
        try:
            obs, reward, terminated, _, info = env.step(env.action_map.to_action(np.asarray(target,
                                                                                            dtype=np.float64)))
        finally:
            self._perturber.step_end()
        self._obs = obs
        self._steps += 1
        self._sim_time_ns += int(round(constants.CONTROL_DT_S * 1e9))
        self._last_step_wall = time.monotonic()
        self._episode_return += reward
        if "physics_error" in info:
            self._physics_errors += 1
            self.get_logger().error(f"physics diverged ({info['physics_error']}): resetting")
            self._reset()
            return
        # Once terminated, the episode stays over until a reset (HumanoidBench ends it there), even if the
        # condition flickers (a pelvis bouncing around the fall height).
        if terminated and self._fallen_since_ns is None:
            self._fallen_since_ns = self._sim_time_ns
            self.get_logger().info(f"{self._task_name}: episode terminated (return {self._episode_return:.1f})")
        if (self._fallen_since_ns is not None
                and 0 < self.p.reset_after_fall_s <= (self._sim_time_ns - self._fallen_since_ns) * 1e-9):
            self._reset()

    # --- publishing -----------------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        stamp = conversions.stamp_from_ns(self._sim_time_ns)
        # One reading per state: a republished state (lockstep, idle) carries the same encoder noise.
        key = (self._sim_time_ns, self._resets, self._installs, self._perturbation_draws)
        if self._measured is None or self._measured[0] != key:
            self._measured = key, self._perturber.observe_coordinates(self._env.data.qpos, self._env.data.qvel)
        joints, imu, odom, task_state = state_messages(self._env, self._obs, self._task_name, stamp,
                                                       self._measured[1])
        self._pub_joints.publish(joints)
        self._pub_imu.publish(imu)
        self._pub_odom.publish(odom)
        self._pub_task.publish(task_state)
        if self._pub_obs is not None:
            self._pub_obs.publish(Float64MultiArray(data=self._obs.tolist()))
        if self._pub_clock is not None:
            self._pub_clock.publish(ClockMsg(clock=stamp))
        self._published_at[self._sim_time_ns] = time.monotonic()
        while len(self._published_at) > STAMP_MEMORY:
            self._published_at.popitem(last=False)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        wall0, sim0 = self._rtf_anchor
        if now - wall0 > 0:
            self._rtf = (self._sim_time_ns - sim0) * 1e-9 / (now - wall0)
        self._rtf_anchor = (now, self._sim_time_ns)
        status = DiagnosticStatus(name=f"{self.get_name()}: simulator", hardware_id="h1-mujoco")
        fallen = self._fallen_since_ns is not None
        status.level = DiagnosticStatus.OK if self._mode is Mode.COMMANDED and not fallen else DiagnosticStatus.WARN
        status.message = self._mode.value + ("; the robot has fallen (task terminated)" if fallen else "")
        data = self._env.data
        linear_body = conversions.rotate_inverse(data.qpos[3:7], data.qvel[0:3])

        def pct(values, q) -> str:
            return f"{np.percentile(values, q):.3f}" if len(values) else "nan"

        jitter = np.abs(np.asarray(self._periods_ms) - 1e3 * constants.CONTROL_DT_S)

        values = {
            "task": self._task_name,
            "mode": self._mode.name.lower(),
            "sim_time_s": f"{self._sim_time_ns * 1e-9:.3f}",
            "real_time_factor": f"{self._rtf:.3f}",
            "control_steps": str(self._steps),
            "episode_return": f"{self._episode_return:.3f}",
            "pelvis_height_m": f"{data.qpos[2]:.4f}",
            "forward_speed_mps": f"{linear_body[0]:.4f}",
            "commands_received": str(self._received),
            "commands_rejected": str(self._rejected),
            "damping_entries": str(self._damping_entries),
            "resets": str(self._resets),
            "physics_errors": str(self._physics_errors),
            "failed_steps": str(self._tick_errors),
            "scene_loads_deferred": str(self._scene_loads_deferred),
            "scene_loads_refused": str(self._scene_loads_refused),
            "perturbation": self.p.perturbation,
            "pushes": str(self._perturber.pushes),
            "state_to_command_latency_p50_ms": pct(self._latencies_ms, 50),
            "state_to_command_latency_p99_ms": pct(self._latencies_ms, 99),
            "state_to_command_latency_max_ms": pct(self._latencies_ms, 100),
            "command_period_p50_ms": pct(self._periods_ms, 50),
            "command_period_p99_ms": pct(self._periods_ms, 99),
            "command_period_max_ms": pct(self._periods_ms, 100),
            # |period - 20 ms|: how far the command stream strays from the control rate.
            "command_jitter_p50_ms": pct(jitter, 50),
            "command_jitter_p99_ms": pct(jitter, 99),
            "statistics_window": str(len(self._periods_ms)),
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(array)

    def close(self) -> None:
        self._scene_thread.shutdown(wait=True, cancel_futures=True)
        self._env.close()


def state_messages(env: HumanoidEnv, obs: np.ndarray, task_name: str, stamp: Time,
                   measured: tuple[np.ndarray, np.ndarray] | None = None,
                   ) -> tuple[JointState, Imu, Odometry, TaskState]:
    """What a robot driver would publish about `env`'s state, with the task's observation extras.

    `obs` is the env's latest observation (from `reset` or `step`); its entries after qpos and qvel are
    published as TaskState points (reach's stale hand site and goal), since they cannot be recomputed.
    `measured`: (qpos, qvel) as the sensors read them (a perturbed sim2sim's encoder noise), else the state's.
    """
    model, data, signals = env.model, env.data, env.signals
    nq, nv, nu = signals.robot_nq, signals.robot_nv, env.action_map.size
    qpos, qvel = (data.qpos, data.qvel) if measured is None else measured
    pelvis = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, constants.ROOT_BODY)
    acceleration = np.zeros(6)
    # Proper acceleration (gravity included) of the pelvis in its own frame: what an IMU measures. XBODY, not
    # BODY: MuJoCo's "local frame" of a BODY is its inertial frame (the pelvis's is turned about 90 degrees).
    mujoco.mj_objectAcceleration(model, data, mujoco.mjtObj.mjOBJ_XBODY, pelvis, acceleration, 1)
    extra = obs[model.nq + model.nv:].reshape(-1, 3)
    names = OBSERVATION_POINT_NAMES.get(task_name, tuple(f"point_{i}" for i in range(len(extra))))
    object_joints = [model.joint(j).name for j in range(model.njnt) if model.jnt_qposadr[j] >= nq]
    return (
        conversions.joint_state_msg(stamp, constants.JOINTS, qpos[FREE_QPOS:nq], qvel[FREE_QVEL:nv],
                                    data.actuator_force[:nu]),
        conversions.imu_msg(stamp, qpos[3:7], qvel[3:6], acceleration[3:6]),
        conversions.odometry_msg(stamp, qpos[:FREE_QPOS], qvel[:FREE_QVEL]),
        conversions.task_state_msg(stamp, task_name, object_joints, qpos[nq:], qvel[nv:], list(zip(names, extra)),
                                   {k: v for k, v in env.task_state.items() if np.isscalar(v)}),
    )


def _same_structure(a: mujoco.MjModel, b: mujoco.MjModel) -> bool:
    """Scenes whose robot state carries over (stand, walk, run and reach share an empty world)."""
    return (a.nq, a.nv, a.nbody, a.ngeom) == (b.nq, b.nv, b.nbody, b.ngeom)


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
