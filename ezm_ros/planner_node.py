"""`planner_node`: the EZ-M latent planner at 50 Hz, from state topics to joint commands (no torch).

A control step runs as soon as a new state is complete (joint_states, odom and, for tasks with scene
objects or extras, task_state of one stamp: the robot's 50 Hz), so each command is computed from the
newest state and reaches the robot before its next tick. A 50 Hz timer on the steady clock keeps
commands flowing from the last state if states stop (counted as stale). Lockstep: new states only,
no deadline, deterministic. Each step rebuilds the active task's observation exactly as the simulator
observes (`ezm_ros.observation`), runs the anytime search (`ezm_ros.planner`) on the model bundle
(`ezm_ros.bundle`, onnxruntime), maps the action to joint targets with the bundle's robot spec (joint
names, ctrl ranges) and publishes `joint_command` and `ezm/planner_status`. Everything it knows about the
robot and the tasks comes from the bundle's manifest: the node needs rclpy, numpy, onnxruntime, ezm_msgs and
a bundle, no MuJoCo and no torch (the robot computer's install).

Tasks: `ezm/task` (TaskCommand) and the `ezm/switch_task` service switch the task; `ezm/list_tasks`
lists the model's. An unknown task is rejected with a reason (service response, status detail) and
control continues on the current task. The accepted task is latched on `ezm/active_task`, which the
simulator follows to load the task's scene. Targets the model cannot honour (speed, heading: the
HumanoidBench tasks fix them) are accepted and reported as ignored in the status detail.

Faults are counted and reported, never fatal: a state with NaN/inf or the wrong joints gives the
planner's hold fallback (the previous targets), a step over its deadline is a deadline miss, a state
older than `stale_state_s` when a step uses it is stale. A model that cannot be loaded at start ends the node with
a clear message (exit status 2); a model swap (setting `model_path` at run time) that fails keeps the
old model running, and so does a swap to a bundle made for other joints or ctrl ranges.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Final

import numpy as np
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import JointState

from ezm_msgs.msg import JointCommand, PlannerStatus, TaskCommand, TaskState
from ezm_msgs.srv import ListTasks, SwitchTask
from ezm_ros import conversions, model_path, nodes, qos, topics
from ezm_ros.bundle import Bundle, BundleError, RuntimeSettings, check_files, load_bundle, read_manifest
from ezm_ros.manifest import RobotSpec, robot_mismatches
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
from ezm_ros.observation import build_observation
from ezm_ros.planner import DEFAULT_DEADLINE_MS, Planner, PlannerSettings
from ezm_ros.state_cache import StateCache, publisher_of
from ezm_ros.task_names import TaskNameError, excerpt, params_problem, short_task_name
from ezm_training.search.settings import MAX_SIMULATIONS

NODE_NAME: Final = "ezm_planner"
#: Without a new state for this many control periods, the timer runs a step from the last state, and then
#: one every tick (the control rate) until states come back.
TIMER_STEP_AFTER_PERIODS: Final = 1.5
#: States closer together than this (in control periods, wall time) step at most once: a state flood
#: (1 kHz of spoofed joint_states) costs at most two searches per period from states, plus the tick's, which
#: plans the newest waiting one, not one per message.
MIN_STEP_INTERVAL_PERIODS: Final = 0.5
#: Accepted task commands (topic and service together): this many per second on average, bursts of
#: TASK_SWITCH_BURST. Each switch republishes the active task and may load a scene in the simulator.
TASK_SWITCHES_PER_S: Final = 5.0
TASK_SWITCH_BURST: Final = 10
#: How long a rejected task command stays in the status detail, s.
NOTICE_S: Final = 3.0
#: The HumanoidBench tasks fix their targets; the model sees no speed or heading input.
IGNORED_SPEED: Final = "forward speed {:.2f} m/s ignored: the model is not conditioned on speed"
IGNORED_HEADING: Final = "heading {:.2f} rad ignored: the model is not conditioned on heading"


@dataclasses.dataclass(frozen=True)
class PlannerParams:
    model_path: str
    task: str
    seed: int
    lockstep: bool
    control_rate_hz: float
    deadline_ms: float
    stale_state_s: float
    num_simulations: int
    device: str
    precision: str


@dataclasses.dataclass(frozen=True)
class _Model:
    """A loaded bundle with its planner and the task name -> index map."""

    path: Path
    bundle: Bundle
    planner: Planner
    tasks: dict[str, int]  # short name -> the graphs' task index
    env_ids: dict[str, str]  # short name -> env id
    obs_sizes: dict[str, int]
    needs_task_state: dict[str, bool]  # observes scene objects or points besides the robot's coordinates

    @property
    def model_id(self) -> str:
        return self.bundle.manifest.model_id


class PlannerNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = PlannerParams(
            model_path=declare(self, "model_path", "", "Model bundle directory; empty: the model the repository "
                               "ships. Setting it at run time swaps the model (a failed swap keeps the old one)."),
            task=declare(self, "task", nodes.DEFAULT_TASK, "Task at start (short name or env id); switch later on "
                         "ezm/task or ezm/switch_task.", read_only=True),
            seed=declare(self, "seed", 0, "Seed of the search's random numbers.", read_only=True, bounds=SEED_BOUNDS),
            lockstep=declare(self, "lockstep", False, "Plan once per new state with no deadline (deterministic "
                             "evaluation with a lockstep simulator).", read_only=True),
            control_rate_hz=declare(self, "control_rate_hz", 50.0, "Control rate, Hz: steps follow new states; "
                                    "when states stop, a timer at this rate keeps commanding from the last one.",
                                    read_only=True, bounds=(1.0, 1000.0)),
            deadline_ms=declare(self, "deadline_ms", DEFAULT_DEADLINE_MS, "Search budget per step, ms (the rest "
                                "of the period reads the state and publishes).", read_only=True,
                                bounds=(0.1, 1000.0)),
            stale_state_s=declare(self, "stale_state_s", 0.1, "A state older than this at a tick is stale, s. Live.",
                                  bounds=(0.001, 10.0)),
            num_simulations=declare(self, "num_simulations", 0, "Search simulations per step; 0: the bundle's.",
                                    read_only=True, bounds=(0, MAX_SIMULATIONS)),
            device=declare(self, "device", "cpu", "onnxruntime device: cpu or cuda (onnxruntime-gpu).",
                           read_only=True),
            precision=declare(self, "precision", "fp32", "Graphs to run: fp32, or int8 where the bundle has them "
                              "(ezm-export --int8; CPU only, several times faster, approximate).", read_only=True),
        )
        self._scheduling = declare_scheduling(self)
        if not self.p.lockstep and self.p.deadline_ms >= 1e3 / self.p.control_rate_hz:
            raise StartupError(f"deadline_ms {self.p.deadline_ms:g} leaves nothing of the "
                               f"{1e3 / self.p.control_rate_hz:g} ms control period to read the state and publish")
        follow_live_parameters(self, ("stale_state_s",), lambda: self.p, lambda params: setattr(self, "p", params))
        try:
            self._model = self._load(self.p.model_path)
            self._task = short_task_name(self.p.task, self._model.env_ids)
        except (BundleError, FileNotFoundError, TaskNameError) as err:
            raise StartupError(str(err)) from None
        # (model_path value, the model loaded by the swap thread or why it failed), until the loop takes it
        self._pending: tuple[str, _Model | str] | None = None
        self._swapping = threading.Event()  # set while a swap thread runs: one swap at a time
        self._model_param = self.p.model_path  # the model_path value of the running model
        self._reverting = False  # model_path is being set back to the running model's after a failed swap
        self._swap_lock = threading.Lock()
        self._command: TaskCommand = TaskCommand(task=self._task)
        self._notice, self._notice_until = "", 0.0
        self._state = StateCache()
        self._state_epoch = 0
        self._held_reported = 0
        self._foreign_reported = 0
        self._last_planned_ns: int | None = None
        self._last_step_wall = 0.0
        self._timer_driving = False  # the last step came from the timer (no new state since)
        self._last_state_step_wall = 0.0
        self._switches = RateLimiter(TASK_SWITCHES_PER_S, TASK_SWITCH_BURST)
        self._log_rejection = BurstLog(self.get_logger().warning)
        self._deadline_misses = self._fallbacks = self._stale = 0

        overrides = QoSOverridingOptions.with_default_policies()
        self._pub_command = self.create_publisher(JointCommand, topics.JOINT_COMMAND, qos.COMMAND,
                                                  qos_overriding_options=overrides)
        self._pub_status = self.create_publisher(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
        self._pub_active = self.create_publisher(TaskCommand, topics.ACTIVE_TASK, qos.LATCHED)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, qos.SENSOR)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.SENSOR)
        self.create_subscription(TaskState, topics.TASK_STATE, self._on_task_state, qos.SENSOR)
        self.create_subscription(TaskCommand, topics.TASK, self._on_task_command, qos.COMMAND)
        self.create_service(ListTasks, topics.LIST_TASKS, self._on_list_tasks)
        self.create_service(SwitchTask, topics.SWITCH_TASK, self._on_switch_task)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if not self.p.lockstep:
            self.create_timer(1.0 / self.p.control_rate_hz, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._publish_active_task()
        self.get_logger().info(f"model {self._model.model_id} ({self.p.precision} graphs) from {self._model.path}; "
                               f"task {self._task}; "
                               f"{'lockstep' if self.p.lockstep else f'{self.p.control_rate_hz:g} Hz'}; "
                               f"{self._scheduling}")

    # --- model ---------------------------------------------------------------------------------------------
    def _load(self, path_param: str, robot: RobotSpec | None = None) -> _Model:
        """Load, check and warm up a bundle; BundleError or FileNotFoundError saying what is wrong.

        robot: the running model's robot spec at a swap, which the new bundle must match (joints, order and
        ctrl ranges): the robot does not change under a running planner."""
        path = model_path.resolve(path_param)
        bundle = load_bundle(path, RuntimeSettings(device=self.p.device, precision=self.p.precision))
        manifest = bundle.manifest
        if robot is not None:
            mismatch = robot_mismatches(manifest.robot, robot.joint_names, robot.ctrl_low, robot.ctrl_high)
            if mismatch:
                raise BundleError(f"{path}: the bundle was made for another robot than the running model's:\n"
                                  + "\n".join(mismatch))
        if manifest.training.get("env_steps", 1) == 0:
            self.get_logger().warning(f"{manifest.model_id} is UNTRAINED (0 environment steps): random weights")
        settings = PlannerSettings(
            deadline_ms=math.inf if self.p.lockstep else self.p.deadline_ms,
            num_simulations=self.p.num_simulations or None, seed=self.p.seed)
        planner = Planner(bundle, settings)
        specs = {spec.name: spec for spec in manifest.tasks}
        return _Model(path, bundle, planner, tasks={name: spec.index for name, spec in specs.items()},
                      env_ids={name: spec.env_id for name, spec in specs.items()},
                      obs_sizes={name: spec.obs_size for name, spec in specs.items()},
                      needs_task_state={name: spec.obs_size > manifest.robot.coordinates_size
                                        for name, spec in specs.items()})

    def _on_set_parameters(self, params) -> SetParametersResult:
        """model_path: the cheap checks answer at once; a bundle that passes them is accepted and loads in a
        thread (rclpy returns no reason with a success, so ezm/planner_status and the log report the swap or
        why it failed), and if that load fails the parameter is set back to the running model's path, so
        `ros2 param get` never names a model that is not running. One swap at a time."""
        for param in params:
            if param.name != "model_path" or self._reverting:
                continue
            # Cheap checks now, so an obviously broken bundle is refused with a reason; the rest loads in a
            # thread, because warming a model up takes longer than the control period.
            if self._swapping.is_set():
                return SetParametersResult(successful=False, reason="a model swap is still loading; try again "
                                           "once ezm/planner_status reports it")
            try:
                path = model_path.resolve(param.value)
                manifest = read_manifest(path)
                manifest.graph_files(self.p.precision)  # a bundle without the configured precision's graphs
                check_files(path, manifest, verify_hashes=False)  # the load thread hashes them
            except (BundleError, FileNotFoundError) as err:
                self.get_logger().error(f"model swap refused, keeping {self._model.model_id}: {err}")
                return SetParametersResult(successful=False, reason=str(err))
            self._swapping.set()
            threading.Thread(target=self._load_in_background, args=(param.value,), daemon=True).start()
        return SetParametersResult(successful=True)

    def _load_in_background(self, path: str) -> None:
        normal_scheduling()  # the warm-up must not hold off a real-time control thread
        try:
            model = self._load(path, self._model.bundle.manifest.robot)
            if self._task not in model.tasks:
                raise BundleError(f"the new model does not know the active task {self._task!r}")
            result: _Model | str = model
        except Exception as err:  # any failure must leave the running model in place; the reason is reported
            result = f"model swap to {path} failed, keeping {self._model.model_id}: {err}"
        with self._swap_lock:
            self._pending = (path, result)

    def _take_pending_model(self) -> None:
        with self._swap_lock:
            taken, self._pending = self._pending, None
        if taken is None:
            return
        path, pending = taken
        self._swapping.clear()  # only now: a second swap must not start before this one is taken
        if isinstance(pending, str):
            self.get_logger().error(pending)
            self._set_notice(pending)
            self._reverting = True
            try:
                self.set_parameters([Parameter("model_path", Parameter.Type.STRING, self._model_param)])
            finally:
                self._reverting = False
        elif pending is not None:
            self.get_logger().info(f"swapped the model: {self._model.model_id} -> {pending.model_id}")
            self._model, self._model_param = pending, path

    # --- tasks ---------------------------------------------------------------------------------------------
    def _switch(self, command: TaskCommand) -> tuple[bool, str]:
        """Accept or reject a task command; (accepted, reason or note)."""
        try:
            task = short_task_name(command.task, self._model.env_ids)
        except TaskNameError as err:
            return False, str(err)
        problem = params_problem(command.params)
        if problem:
            return False, problem
        if not self._switches.allow():
            return False, (f"too many task commands: at most {TASK_SWITCHES_PER_S:g} per second "
                           f"(bursts of {TASK_SWITCH_BURST}); {self._switches.refused} refused so far")
        accepted = TaskCommand(header=command.header, task=task, has_forward_speed=command.has_forward_speed,
                               forward_speed_mps=command.forward_speed_mps, has_heading=command.has_heading,
                               heading_rad=command.heading_rad, params=command.params)
        if task != self._task:
            self.get_logger().info(f"task {self._task} -> {task}")
        self._task, self._command = task, accepted
        self._publish_active_task()
        return True, self._ignored_targets()

    def _ignored_targets(self) -> str:
        notes = []
        if self._command.has_forward_speed:
            notes.append(IGNORED_SPEED.format(self._command.forward_speed_mps))
        if self._command.has_heading:
            notes.append(IGNORED_HEADING.format(self._command.heading_rad))
        return "; ".join(notes)

    def _on_task_command(self, msg: TaskCommand) -> None:
        accepted, reason = self._switch(msg)
        if not accepted:
            self._log_rejection(f"rejected task command: {reason}; staying on {self._task}")
            self._set_notice(f"rejected task {excerpt(msg.task)}: {reason}")

    def _on_switch_task(self, request: SwitchTask.Request, response: SwitchTask.Response) -> SwitchTask.Response:
        response.accepted, response.reason = self._switch(request.command)
        if not response.accepted:
            self._log_rejection(f"rejected switch_task: {response.reason}; staying on {self._task}")
        response.active_task = self._task
        return response

    def _on_list_tasks(self, request: ListTasks.Request, response: ListTasks.Response) -> ListTasks.Response:
        response.model_id = self._model.model_id
        response.tasks = list(self._model.tasks)
        response.observation_sizes = [self._model.obs_sizes[t] for t in self._model.tasks]
        response.active_task = self._task
        return response

    def _publish_active_task(self) -> None:
        msg = self._command
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub_active.publish(msg)

    def _set_notice(self, text: str) -> None:
        self._notice, self._notice_until = text, time.monotonic() + NOTICE_S

    # --- state ------------------------------------------------------------------------------------------------
    # Two-argument callbacks: rclpy then passes the MessageInfo, whose publisher GID tells the topic's owner
    # from a second publisher (state_cache).
    def _on_joints(self, msg: JointState, info: dict) -> None:
        self._state.add_joint_state(msg, publisher_of(info))
        self._on_new_state()

    def _on_odom(self, msg: Odometry, info: dict) -> None:
        self._state.add_odom(msg, publisher_of(info))
        self._on_new_state()

    def _on_task_state(self, msg: TaskState, info: dict) -> None:
        self._state.add_task_state(msg, publisher_of(info))
        self._on_new_state()

    def _on_new_state(self) -> None:
        """A control step as soon as a step's state is complete: the command then reaches the robot before
        its next 20 ms tick, as HumanoidBench applies an action right after its observation. (Planning on a
        free-running timer would add up to a whole period of latency, by the phase between two clocks.)"""
        sample = self._unplanned_state()
        # Measured from the last state-driven step only: a timer step must not push new states onto the
        # timer's phase for good (they would then wait up to a period each).
        if sample is not None and (self.p.lockstep or time.monotonic() - self._last_state_step_wall
                                   >= MIN_STEP_INTERVAL_PERIODS / self.p.control_rate_hz):
            self._last_state_step_wall = time.monotonic()
            self._control_step(time.perf_counter(), sample)

    def _unplanned_state(self):
        """The newest complete state not planned from yet, or None."""
        if self._state.epoch != self._state_epoch:  # a new timeline (a restarted simulator): its stamps count
            self._state_epoch, self._last_planned_ns = self._state.epoch, None
        if self._state.held > self._held_reported:
            self._held_reported = self._state.held
            self._set_notice(f"{self._state.held} state messages held out: stamp off the topic's timeline")
        if self._state.foreign > self._foreign_reported:
            self._foreign_reported = self._state.foreign
            self._set_notice(f"{self._state.foreign} state messages ignored: not from the topic's publisher")
        sample = self._state.latest(self._needs_task_state())
        if sample is not None and (self._last_planned_ns is None or sample.stamp_ns > self._last_planned_ns):
            return sample
        return None

    def _needs_task_state(self) -> bool:
        return self._model.needs_task_state[self._task]

    # --- control ----------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        """The 50 Hz clock (real time only): keeps commands flowing from the last state when states stop
        (counted as stale), and reports while there is no state at all."""
        start = time.perf_counter()
        self._take_pending_model()
        waiting = self._unplanned_state()
        if waiting is not None:  # a state the flood limit left for this tick
            self._control_step(start, waiting)
            return
        sample = self._state.latest(self._needs_task_state())
        if sample is None:
            self._publish_status(None, detail="waiting for the robot's state (joint_states, odom"
                                 + (", task_state)" if self._needs_task_state() else ")"))
        elif (self._timer_driving
              or time.monotonic() - self._last_step_wall > TIMER_STEP_AFTER_PERIODS / self.p.control_rate_hz):
            self._control_step(start, sample, from_timer=True)

    def _control_step(self, start: float, sample, from_timer: bool = False) -> None:
        self._take_pending_model()
        self._last_step_wall = time.monotonic()
        self._timer_driving = from_timer
        model, task = self._model, self._task
        stale_note = ""
        age = time.monotonic() - sample.arrival_s
        if not self.p.lockstep and age > self.p.stale_state_s:  # planned from anyway; the robot holds its own
            self._stale += 1
            stale_note = f"stale state ({1e3 * age:.0f} ms old)"
        self._last_planned_ns = sample.stamp_ns
        obs, problem = self._observation(sample, task)
        if problem:
            # The planner's own hold fallback (the previous targets), fed an unusable observation so that
            # the hold logic lives in one place; the detail says what was wrong with the state.
            result = model.planner.plan(np.full(model.obs_sizes[task], np.nan), model.tasks[task], start_time=start)
            result = dataclasses.replace(result, detail=problem)
        else:
            result = model.planner.plan(obs, model.tasks[task], start_time=start)
        positions = model.bundle.manifest.robot.to_ctrl(result.action)
        command = JointCommand(name=list(model.bundle.manifest.robot.joint_names),
                               position=np.asarray(positions, dtype=np.float64).tolist())
        command.header.stamp = sample.joint_state.header.stamp  # the state it was computed from
        self._pub_command.publish(command)
        latency_ms = 1e3 * (time.perf_counter() - start)
        if result.fallback:
            self._fallbacks += 1
        if result.deadline_missed or latency_ms > 1e3 / self.p.control_rate_hz:
            self._deadline_misses += 1
        details = [d for d in (result.detail, stale_note) if d]
        self._publish_status(sample, result=result, latency_ms=latency_ms, detail="; ".join(details))

    def _observation(self, sample, task: str) -> tuple[np.ndarray | None, str]:
        """(observation, "") or (None, why the state cannot be used)."""
        try:
            robot = conversions.robot_coordinates(sample.joint_state, sample.odom,
                                                  self._model.bundle.manifest.robot.joint_names)
        except conversions.StateError as err:
            return None, f"invalid state: {err}"
        scene = sample.task_state  # None from a robot; from a simulator, the scene it has loaded
        if scene is not None and scene.task and scene.task != task:
            return None, f"waiting for the scene of {task} (the simulator shows {scene.task})"
        try:
            obs = build_observation(robot, scene if self._needs_task_state() else TaskState())
        except conversions.StateError as err:
            return None, f"invalid state: {err}"
        expected = self._model.obs_sizes[task]
        if obs.shape[0] != expected:
            return None, f"observation has {obs.shape[0]} entries, {task} needs {expected}"
        return obs, ""

    def _publish_status(self, sample, result=None, latency_ms: float = math.nan, detail: str = "") -> None:
        msg = PlannerStatus(active_task=self._task, model_id=self._model.model_id, precision=self.p.precision,
                            step_latency_ms=latency_ms,
                            root_value=math.nan, deadline_misses=self._deadline_misses, fallbacks=self._fallbacks,
                            stale_states=self._stale)
        if sample is not None:
            msg.header.stamp = sample.joint_state.header.stamp
        if result is not None:
            msg.simulations = int(result.simulations)
            msg.root_value = float(result.root_value)
            msg.deadline_cut = bool(result.deadline_cut)
            msg.fallback = bool(result.fallback)
        notes = [detail] if detail else []
        ignored = self._ignored_targets()
        if ignored:
            notes.append(ignored)
        if self._notice and time.monotonic() < self._notice_until:
            notes.append(self._notice)
        msg.detail = "; ".join(notes)
        self._pub_status.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(PlannerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
