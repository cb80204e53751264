"""The robot and its tasks as the bundle describes them, read from sim_bridge's compiled MuJoCo models (the
one source of joint names, ctrl ranges, the hold pose and the observation layouts), plus a few recorded steps
of each task for the parity check. MuJoCo is imported here only: the rest of the exporter needs none."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ezm_ros.manifest import ObsSegment, RobotSpec, TaskSpec
from ezm_training.export import ExportError

RECORDED_STEPS_PER_TASK = 4  # env steps recorded per task (reset, then random actions)
RECORD_SEED = 0


def robot_and_tasks(env_ids: Sequence[str], task_indices: Sequence[int]):
    """(RobotSpec, TaskSpecs, recorded observations and actions per task) from sim_bridge's compiled models.

    Recorded: RECORDED_STEPS_PER_TASK observations of each task's env after reset(seed 0) under random
    actions, and those actions, as real inputs for the parity check.
    """
    import mujoco

    from sim_bridge import registry
    from sim_bridge.env import HumanoidEnv

    robot, tasks, recorded = None, [], {}
    for env_id, index in zip(env_ids, task_indices):
        env = HumanoidEnv(task=registry.parse_env_id(env_id)[1])
        try:
            spec = _robot_spec(env, mujoco)
            if robot is not None and spec != robot:
                raise ExportError(f"{env_id} has a different robot than {env_ids[0]}: one bundle drives one robot")
            robot = spec
            obs_size = int(env.observation_space.shape[0])
            tasks.append(TaskSpec(env_id, index, obs_size, _obs_layout(env.model, obs_size, mujoco)))
            recorded[env_id] = _record(env, obs_size)
        finally:
            env.close()
    return robot, tuple(tasks), recorded


def _robot_spec(env, mujoco) -> RobotSpec:
    from sim_bridge.joint_servos import Servos

    model, action_map = env.model, env.action_map
    names = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(action_map.size))
    # The hold pose is the robot's reset keyframe, mapped back through the one action map.
    joint_qpos = [env.robot.keyframe_qpos[model.jnt_qposadr[model.actuator_trnid[i, 0]]] for i in range(action_map.size)]
    hold = action_map.to_action(np.asarray(joint_qpos, np.float32))
    # The servo gains the model trains with: what a default joint command applies (sim_bridge.joint_servos).
    servos = Servos(model, action_map.size)
    return RobotSpec(name=env.robot.name, joint_names=names, ctrl_low=_float32s(action_map.low),
                     ctrl_high=_float32s(action_map.high), hold_action=_float32s(hold), control_dt_s=float(env.dt),
                     kp=tuple(float(v) for v in servos.model_kp), kd=tuple(float(v) for v in servos.model_kd))


def _float32s(values) -> tuple[float, ...]:
    """float32 numbers by their shortest decimal (-0.43, not -0.4300000071525574): the same float32 back."""
    return tuple(float(str(np.float32(v))) for v in values)


def _obs_layout(model, obs_size: int, mujoco) -> tuple[ObsSegment, ...]:
    """qpos then qvel of every joint in MuJoCo order (robot first, then scene objects), then any extras the
    task appends (reach: left hand and goal positions), as HumanoidBench and sim_bridge observe."""
    joint = mujoco.mjtJoint
    sizes = {int(joint.mjJNT_FREE): (7, 6), int(joint.mjJNT_BALL): (4, 3), int(joint.mjJNT_SLIDE): (1, 1),
             int(joint.mjJNT_HINGE): (1, 1)}  # (qpos, qvel) entries per joint type
    joints = sorted(range(model.njnt), key=lambda j: model.jnt_qposadr[j])
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}" for j in joints]
    segments = [ObsSegment(f"qpos.{name}", int(model.jnt_qposadr[j]), sizes[int(model.jnt_type[j])][0])
                for j, name in zip(joints, names)]
    segments += [ObsSegment(f"qvel.{name}", model.nq + int(model.jnt_dofadr[j]), sizes[int(model.jnt_type[j])][1])
                 for j, name in zip(joints, names)]
    if obs_size < model.nq + model.nv:
        return (ObsSegment("obs", 0, obs_size),)  # a task observing less than qpos, qvel: layout unknown here
    if obs_size > model.nq + model.nv:
        segments.append(ObsSegment("extra", model.nq + model.nv, obs_size - model.nq - model.nv))
    return tuple(segments)


def _record(env, obs_size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RECORD_SEED)
    obs, _ = env.reset(seed=RECORD_SEED)
    observations, actions = [], []
    for _ in range(RECORDED_STEPS_PER_TASK):
        action = rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32)
        observations.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(observations, np.float32).reshape(-1, obs_size), np.asarray(actions, np.float32)
