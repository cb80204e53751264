"""Topic and service names of the stack, in one place.

Names are relative, so they resolve in the node's namespace: launched under `/robot1`, the simulator
publishes `/robot1/joint_states`, and a second robot can run beside it under `/robot2`. The one
exception is `/clock`, which ROS time sources read from the root namespace (a second simulator in the
same domain sets `publish_clock: false`). The QoS profile of each is named beside it (`ezm_ros.qos`).
"""

from __future__ import annotations

from typing import Final

# --- robot state, published by the simulator (or a real robot's driver) -------------------------------
JOINT_STATES: Final = "joint_states"  # sensor_msgs/JointState, qos.SENSOR
IMU: Final = "imu"  # sensor_msgs/Imu, qos.SENSOR
ODOM: Final = "odom"  # nav_msgs/Odometry, qos.SENSOR
TASK_STATE: Final = "task_state"  # ezm_msgs/TaskState, qos.SENSOR
CLOCK: Final = "/clock"  # rosgraph_msgs/Clock, qos.CLOCK
DIAGNOSTICS: Final = "diagnostics"  # diagnostic_msgs/DiagnosticArray, qos.DIAGNOSTICS

# --- commands -----------------------------------------------------------------------------------------------
JOINT_COMMAND: Final = "joint_command"  # ezm_msgs/JointCommand, qos.COMMAND
TASK: Final = "ezm/task"  # ezm_msgs/TaskCommand, qos.COMMAND
JOY: Final = "joy"  # sensor_msgs/Joy (the safety node's mode buttons), qos.SENSOR

# --- the safety layer (ezm_ros/safety_node.py), between the planner and the robot ---------------------------
#: The planner's commands when a safety node stands between it and the robot (the launch remaps the planner's
#: joint_command here); the safety node publishes joint_command.
PLANNER_COMMAND: Final = "ezm/planner_command"  # ezm_msgs/JointCommand, qos.COMMAND
SAFETY: Final = "ezm/safety"  # ezm_msgs/SafetyStatus, qos.LATCHED
MODE_SERVICES: Final = "ezm/mode"  # std_srvs/srv/Trigger: ezm/mode/<intent> (safety_node.INTENTS)

# --- planner outputs ----------------------------------------------------------------------------------------
PLANNER_STATUS: Final = "ezm/planner_status"  # ezm_msgs/PlannerStatus, qos.LATCHED
ACTIVE_TASK: Final = "ezm/active_task"  # ezm_msgs/TaskCommand (the accepted one), qos.LATCHED
MARKERS: Final = "ezm/markers"  # visualization_msgs/MarkerArray, qos.VISUALIZATION
# tf2_msgs/TFMessage, qos.TF: odom -> pelvis and every link. Relative (a namespaced robot has its own tf, as
# multi-robot ROS setups remap /tf); in the root namespace it is /tf.
TF: Final = "tf"
ROBOT_DESCRIPTION: Final = "robot_description"  # std_msgs/String (URDF), qos.ROBOT_DESCRIPTION

# --- services -------------------------------------------------------------------------------------------------
LIST_TASKS: Final = "ezm/list_tasks"  # ezm_msgs/srv/ListTasks (planner)
SWITCH_TASK: Final = "ezm/switch_task"  # ezm_msgs/srv/SwitchTask (planner)
SIM_RESET: Final = "sim/reset"  # std_srvs/srv/Trigger (simulator)
SIM_LOAD_TASK: Final = "sim/load_task"  # ezm_msgs/srv/SwitchTask (simulator: load the task's scene)

# --- frames (REP-105) -------------------------------------------------------------------------------------
ODOM_FRAME: Final = "odom"
BASE_FRAME: Final = "pelvis"  # the H1's root body; sim_bridge.h1.constants.ROOT_BODY
IMU_FRAME: Final = "imu"  # the torso's imu site
