#!/usr/bin/env python3
"""Records golden trajectories from the original HumanoidBench for sim_bridge's parity tests.

Run it in an environment where `humanoid_bench` (carlosferrazza/humanoid-bench 791405f) imports, with
its pinned mujoco 3.1.6, and with the two ankle-link meshes replaced by Menagerie's (HumanoidBench ships
an older ankle mesh; parity is judged against Menagerie's, see shared reference humanoidbench.md). It
never runs in CI: CI replays the files it wrote (tests/sim_bridge/test_parity_golden.py), and
tests/data/humanoidbench_parity/README.md says how they were made.

For every h1 task and seed it stores, as one .npz:
- the reset: qpos/qvel/observation after `reset(seed=seed)`;
- `steps` transitions under uniform random actions drawn from `default_rng(seed)`: the state before the
  step (qpos, qvel, the solver warm start, the task's internal state), the action, and after the step
  the reward, every info component, `terminated`, and the observation;
- `static/*`: HumanoidBench's reward, components and termination evaluated on each recorded state itself
  (set_state with that step's ctrl, one forward pass, no physics step). These compare the reward code on
  identical MjData, independent of how MuJoCo versions integrate contacts.

Physics differs between MuJoCo 3.1.6 and 4.x in contact-rich states, so a second pass (`--mujoco4`, run
in the project's venv) adds `mj4/qpos_next`, `mj4/qvel_next`: HumanoidBench's own task XML stepped from
each recorded state on this MuJoCo, with sim_bridge's compatibility options. That separates "our model
differs from HumanoidBench's" (must be exactly zero) from "MuJoCo versions differ" (measured, documented).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

H1_TASKS = ("stand", "walk", "run", "crawl", "hurdle", "stair", "slide", "sit_simple", "sit_hard",
            "balance_simple", "balance_hard", "pole", "maze", "reach")


def _task_state(unwrapped) -> dict:
    """The task-internal state HumanoidBench keeps as attributes (maze stage, reach goal)."""
    task = unwrapped.task
    state = {}
    if hasattr(task, "maze_stage"):
        state["maze_stage"] = int(task.maze_stage)
        state["move_direction"] = np.asarray(task.move_direction).tolist()
    if hasattr(task, "goal"):
        state["goal"] = np.asarray(task.goal, dtype=np.float64).tolist()
    return state


def _restore_task_state(unwrapped, state: dict) -> None:
    task = unwrapped.task
    if "maze_stage" in state:
        task.maze_stage = state["maze_stage"]
        task.move_direction = np.asarray(state["move_direction"])
    if "goal" in state:
        task.goal = np.asarray(state["goal"], dtype=np.float64)


def _static_evaluations(unwrapped, record: dict, task_states: list[dict]) -> dict[str, np.ndarray]:
    """HumanoidBench's reward/termination on each recorded pre-step state, after one forward pass."""
    rewards, terminated, components = [], [], {}
    for t, state in enumerate(task_states):
        unwrapped.data.ctrl[:] = unwrapped.task.unnormalize_action(record["action"][t])
        unwrapped.set_state(record["qpos"][t], record["qvel"][t])
        _restore_task_state(unwrapped, state)
        reward, reward_info = unwrapped.task.get_reward()
        done, _ = unwrapped.task.get_terminated()
        _restore_task_state(unwrapped, state)  # maze's get_reward advances its stage
        rewards.append(float(reward))
        terminated.append(bool(done))
        for key, value in reward_info.items():
            if np.ndim(value) == 0:
                components.setdefault(key, []).append(float(value))
    out = {"static/reward": np.asarray(rewards), "static/terminated": np.asarray(terminated)}
    out.update({f"static/info/{k}": np.asarray(v) for k, v in components.items() if len(v) == len(rewards)})
    return out


def add_mujoco4_physics(npz_dir: Path, hb_envs_dir: Path) -> None:
    """Step HumanoidBench's own task XMLs on this MuJoCo from every recorded state (see module doc)."""
    import mujoco

    from sim_bridge.h1 import constants as h1

    for path in sorted(npz_dir.glob("h1-*-seed*.npz")):
        golden = dict(np.load(path))
        task = path.stem.rsplit("-seed", 1)[0].removeprefix("h1-")
        xml = hb_envs_dir / f"h1_pos_{task}.xml"
        model = mujoco.MjModel.from_xml_path(str(xml))
        model.opt.ccd_iterations = h1.CCD_ITERATIONS
        model.opt.ccd_tolerance = h1.CCD_TOLERANCE
        for flag in h1.COMPAT_DISABLE_FLAGS:
            model.opt.disableflags |= int(getattr(mujoco.mjtDisableBit, flag))
        data = mujoco.MjData(model)
        low, high = model.actuator_ctrlrange[:19].astype(np.float32).T
        qpos_next, qvel_next = [], []
        for t in range(len(golden["action"])):
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = golden["qpos"][t], golden["qvel"][t]
            mujoco.mj_forward(model, data)
            data.qacc_warmstart[:] = golden["qacc_warmstart"][t]
            data.ctrl[:19] = (golden["action"][t] + 1) / 2 * (high - low) + low
            mujoco.mj_step(model, data, nstep=10)
            qpos_next.append(data.qpos.copy())
            qvel_next.append(data.qvel.copy())
        golden["mj4/qpos_next"], golden["mj4/qvel_next"] = np.asarray(qpos_next), np.asarray(qvel_next)
        golden["mj4/version"] = np.asarray(mujoco.__version__)
        np.savez_compressed(path, **golden)
        print(f"added MuJoCo {mujoco.__version__} physics to {path}")


def record(task: str, seed: int, steps: int, out_dir: Path) -> Path:
    import gymnasium as gym
    import humanoid_bench  # noqa: F401  (registers the h1-* ids)

    env = gym.make(f"h1-{task}-v0")
    unwrapped = env.unwrapped
    obs, _ = env.reset(seed=seed)
    record = {
        "reset_qpos": unwrapped.data.qpos.copy(), "reset_qvel": unwrapped.data.qvel.copy(),
        "reset_obs": np.asarray(obs, dtype=np.float64),
    }
    reset_task_state = _task_state(unwrapped)
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {k: [] for k in ("qpos", "qvel", "qacc_warmstart", "action", "reward",
                                                 "terminated", "obs")}
    components: dict[str, list] = {}
    task_states = []
    for _ in range(steps):
        columns["qpos"].append(unwrapped.data.qpos.copy())
        columns["qvel"].append(unwrapped.data.qvel.copy())
        columns["qacc_warmstart"].append(unwrapped.data.qacc_warmstart.copy())
        task_states.append(_task_state(unwrapped))
        action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, _, info = env.step(action)
        columns["action"].append(action)
        columns["reward"].append(float(reward))
        columns["terminated"].append(bool(terminated))
        columns["obs"].append(np.asarray(obs, dtype=np.float64))
        for key, value in info.items():
            if np.ndim(value) == 0 and isinstance(value, (int, float, np.number, bool, np.bool_)):
                components.setdefault(key, []).append(float(value))
    for key, values in columns.items():
        record[key] = np.asarray(values)
    for key, values in components.items():
        if len(values) == steps:
            record[f"info/{key}"] = np.asarray(values)
    record.update(_static_evaluations(unwrapped, record, task_states))
    record["task_states"] = np.asarray(json.dumps(task_states))
    record["reset_task_state"] = np.asarray(json.dumps(reset_task_state))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"h1-{task}-seed{seed}.npz"
    np.savez_compressed(path, **record)
    env.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/humanoidbench_parity"))
    parser.add_argument("--tasks", nargs="*", default=list(H1_TASKS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--mujoco4", type=Path, metavar="HB_ENVS_DIR",
                        help="instead of recording: add this MuJoCo's physics of HumanoidBench's XMLs in "
                             "HB_ENVS_DIR (humanoid_bench/assets/envs) to the files in --out")
    args = parser.parse_args()
    if args.mujoco4:
        add_mujoco4_physics(args.out, args.mujoco4)
        return
    import mujoco

    print(f"humanoid_bench with mujoco {mujoco.__version__}")
    for task in args.tasks:
        for seed in args.seeds:
            path = record(task, seed, args.steps, args.out)
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
