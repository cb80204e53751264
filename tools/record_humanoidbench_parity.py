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
  the reward, every info component, `terminated`, and the observation.
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
    if hasattr(task, "goal"):
        state["goal"] = np.asarray(task.goal, dtype=np.float64).tolist()
    return state


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
    args = parser.parse_args()
    import mujoco

    print(f"humanoid_bench with mujoco {mujoco.__version__}")
    for task in args.tasks:
        for seed in args.seeds:
            path = record(task, seed, args.steps, args.out)
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
