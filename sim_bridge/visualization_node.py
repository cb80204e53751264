"""`visualization_node`: the scene as visualization_msgs/MarkerArray on `ezm/markers`, for rviz and the browser,
and the robot as rviz's RobotModel display expects it: `/tf` and `/robot_description`.

It keeps its own copy of the active task's MuJoCo scene (built by sim_bridge, never stepped), poses it
from the state topics (joint_states, odom, task_state) and publishes the H1's link meshes, the scene's
objects and an arrow for the commanded velocity and heading (`sim_bridge.markers`). With each marker update
it publishes the TF tree of the pose (odom -> pelvis, then each link from its parent, frames named as the
bodies), and the robot's URDF once, latched (`sim_bridge.urdf`), so RobotModel and TF displays work as in any
ROS stack; a ROS install's robot_state_publisher, given the same URDF, would publish the same links from
joint_states. Works the same against a real robot's state topics, minus the scene objects.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Final

import mujoco
import numpy as np
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

import sim_bridge
from ezm_msgs.msg import TaskCommand, TaskState
from ezm_ros import conversions, nodes, qos, topics
from sim_bridge import markers
from ezm_ros.node_runtime import declare, follow_live_parameters, run_node
from ezm_ros.task_names import TaskNameError, short_task_name
from sim_bridge import registry
from sim_bridge.h1 import constants
from sim_bridge.urdf import robot_urdf

NODE_NAME: Final = "ezm_visualization"


@dataclasses.dataclass(frozen=True)
class VisualizationParams:
    rate_hz: float
    scene_period_s: float
    task: str


class VisualizationNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = VisualizationParams(
            rate_hz=declare(self, "rate_hz", 25.0, "Marker update rate, Hz (rviz needs no more).", read_only=True,
                            bounds=(0.1, 100.0)),
            scene_period_s=declare(self, "scene_period_s", 2.0, "Period of re-sending the static scene, s "
                                   "(late joiners see it within this time). Live.", bounds=(0.1, 600.0)),
            task=declare(self, "task", nodes.DEFAULT_TASK, "Scene drawn until task_state names one.",
                         read_only=True),
        )
        follow_live_parameters(self, ("scene_period_s",), lambda: self.p, lambda params: setattr(self, "p", params))
        self._pub = self.create_publisher(MarkerArray, topics.MARKERS, qos.VISUALIZATION)
        self._pub_tf = self.create_publisher(TFMessage, topics.TF, qos.TF)
        self._pub_description = self.create_publisher(String, topics.ROBOT_DESCRIPTION, qos.ROBOT_DESCRIPTION)
        self._description = ""
        self._joints: JointState | None = None
        self._odom: Odometry | None = None
        # The last few of each by stamp: the pose is drawn from one step's pair where both carry it (a robot whose
        # odometry comes from another source, with other stamps, gets the newest of each).
        self._joints_by_stamp: collections.OrderedDict[int, JointState] = collections.OrderedDict()
        self._odom_by_stamp: collections.OrderedDict[int, Odometry] = collections.OrderedDict()
        self._task_state: TaskState | None = None
        self._command: TaskCommand | None = None
        self._dirty = False
        self._scene_sent = -np.inf
        self._load(short_task_name(self.p.task, registry.robot_tasks(constants.ROBOT_NAME)))
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, qos.SENSOR)
        self.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.SENSOR)
        self.create_subscription(TaskState, topics.TASK_STATE, self._on_task_state, qos.SENSOR)
        self.create_subscription(TaskCommand, topics.ACTIVE_TASK, self._on_active_task, qos.LATCHED)
        self.create_timer(1.0 / self.p.rate_hz, self._publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _load(self, task: str) -> None:
        env = sim_bridge.make(registry.env_id(constants.ROBOT_NAME, task)).unwrapped
        self._task = task
        self._model = env.model
        self._data = mujoco.MjData(env.model)
        self._robot_nq, self._robot_nv = env.signals.robot_nq, env.signals.robot_nv
        self._scene = markers.SceneMarkers(env.model, constants.ROOT_BODY)
        root = env.model.body(constants.ROOT_BODY).id
        # The robot's bodies, parents first (MuJoCo numbers a parent before its children): the TF tree.
        self._links = [b for b in range(env.model.nbody) if int(env.model.body_rootid[b]) == root]
        description = robot_urdf(env.model, constants.ROOT_BODY, constants.ROBOT_NAME)
        if description != self._description:  # the same robot in every scene: sent once, latched
            self._description = description
            self._pub_description.publish(String(data=description))
        self._default_speed = float(getattr(env.task, "move_speed", 0.0))
        self._scene_sent = -np.inf  # a new scene: clear and resend at once
        self._clear = True
        env.close()

    def _on_joints(self, msg: JointState) -> None:
        self._joints, self._dirty = msg, True
        _remember(self._joints_by_stamp, msg)

    def _on_odom(self, msg: Odometry) -> None:
        self._odom, self._dirty = msg, True
        _remember(self._odom_by_stamp, msg)

    def _latest_pair(self) -> tuple[JointState, Odometry]:
        common = set(self._joints_by_stamp) & set(self._odom_by_stamp)
        if not common:
            return self._joints, self._odom
        stamp = max(common)
        return self._joints_by_stamp[stamp], self._odom_by_stamp[stamp]

    def _on_task_state(self, msg: TaskState) -> None:
        self._task_state = msg
        if msg.task and msg.task != self._task:
            try:
                self._load(short_task_name(msg.task, registry.robot_tasks(constants.ROBOT_NAME)))
            except TaskNameError as err:
                self.get_logger().warning(f"cannot draw the scene: {err}")

    def _on_active_task(self, msg: TaskCommand) -> None:
        self._command = msg

    def _publish(self) -> None:
        if not self._dirty or self._joints is None or self._odom is None:
            return
        try:
            joints, odom = self._latest_pair()
            robot = conversions.robot_coordinates(joints, odom, constants.JOINTS)
        except conversions.StateError:
            return  # the planner reports bad states; the picture just waits for a good one
        self._dirty = False
        data = self._data
        data.qpos[: self._robot_nq] = robot.qpos
        state = self._task_state
        if state is not None and state.task == self._task and len(state.object_qpos) == self._model.nq - self._robot_nq:
            data.qpos[self._robot_nq:] = state.object_qpos
        mujoco.mj_kinematics(self._model, data)
        stamp = joints.header.stamp
        out = MarkerArray()
        if self._clear:
            out.markers.append(markers.delete_all(stamp))
            self._clear = False
        namespaces = (markers.NS_ROBOT, markers.NS_OBJECTS)
        now = time.monotonic()
        if now - self._scene_sent >= self.p.scene_period_s:
            namespaces += (markers.NS_SCENE,)
            self._scene_sent = now
        out.markers.extend(self._scene.markers(data, stamp, namespaces))
        if state is not None and state.task == self._task:
            out.markers.extend(markers.task_points(stamp, list(state.points)))
        out.markers.append(self._arrow(stamp, robot.qpos))
        self._pub.publish(out)
        self._pub_tf.publish(self._transforms(stamp))

    def _transforms(self, stamp) -> TFMessage:
        """odom -> the root body, then each body from its parent, as posed in `self._data`."""
        model, data = self._model, self._data
        out = TFMessage()
        for body in self._links:
            parent = int(model.body_parentid[body])
            position, quat = data.xpos[body], data.xquat[body]
            if body != self._links[0]:  # relative to the parent: R_pᵀ (p_c - p_p), q_p⁻¹ q_c
                inverse = np.empty(4)
                mujoco.mju_negQuat(inverse, data.xquat[parent])
                relative = np.empty(4)
                mujoco.mju_mulQuat(relative, inverse, quat)
                position = data.xmat[parent].reshape(3, 3).T @ (position - data.xpos[parent])
                quat = relative
            transform = TransformStamped()
            transform.header.stamp = stamp
            transform.header.frame_id = topics.ODOM_FRAME if body == self._links[0] else model.body(parent).name
            transform.child_frame_id = model.body(body).name
            t = transform.transform
            t.translation.x, t.translation.y, t.translation.z = (float(v) for v in position)
            t.rotation.w, t.rotation.x, t.rotation.y, t.rotation.z = (float(v) for v in quat)
            out.transforms.append(transform)
        return out

    def _arrow(self, stamp, qpos: np.ndarray):
        """The commanded velocity: the task's speed (or the command's) along its heading (or the robot's)."""
        command = self._command
        speed = self._default_speed
        heading = conversions.yaw_of(qpos[3:7])
        if command is not None and command.has_forward_speed:
            speed = command.forward_speed_mps
        if command is not None and command.has_heading:
            heading = command.heading_rad
        return markers.command_arrow(stamp, qpos[0:3], heading, speed if speed > 0 else None)


#: State messages remembered per topic to pair joint states with odometry of the same step.
PAIRING_DEPTH: Final = 8


def _remember(by_stamp: collections.OrderedDict, msg) -> None:
    by_stamp[conversions.stamp_to_ns(msg.header.stamp)] = msg
    while len(by_stamp) > PAIRING_DEPTH:
        by_stamp.popitem(last=False)


def main(args: list[str] | None = None) -> int:
    return run_node(VisualizationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
