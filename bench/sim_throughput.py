"""Simulator throughput: env steps per second per task, against raw MuJoCo on the same compiled model.

For each task and collision variant:
- env: `sim_bridge.make(id)` (gymnasium wrappers included) stepped with uniform random actions in one
  process, resetting when an episode ends;
- raw: the same compiled model and the same control sequence from the same start states, stepped with
  bare `mj_step(model, data, nstep=frame_skip)`: the floor under any Python environment;
- ratio env/raw (the environment's own overhead; the aim is >= 0.9), and the same against raw plus the
  `mj_rnePostConstraint` that HumanoidBench's step also runs;
- vector, total env steps/s over both cores: `gymnasium.make_vec(id, num_envs=2, vectorization_mode="async")`
  (one env per process), and `MultiTaskVectorEnv` with two processes hosting several envs each.

    .venv/bin/python bench/sim_throughput.py --steps 2000                # every available task
    .venv/bin/python bench/sim_throughput.py --steps 500 --tasks walk stand

Prints a Markdown table (the one in BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import sim_bridge  # first: picks the headless GL backend before mujoco is imported

import gymnasium
import mujoco
import numpy as np

from sim_bridge.h1.constants import COLLISION_VARIANTS
from sim_bridge.multitask import MultiTaskVectorEnv


def _episode_plan(env: gymnasium.Env, steps: int, seed: int) -> tuple[float, list[np.ndarray], list[tuple]]:
    """Step the env; return (seconds, ctrl per step, [(step, qpos, qvel) at each episode start])."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps, env.action_space.shape[0])).astype(np.float32)
    unwrapped = env.unwrapped
    env.reset(seed=seed)
    starts = [(0, unwrapped.data.qpos.copy(), unwrapped.data.qvel.copy())]
    ctrls = []
    start = time.perf_counter()
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
            starts.append((i + 1, unwrapped.data.qpos.copy(), unwrapped.data.qvel.copy()))
    elapsed = time.perf_counter() - start
    ctrls = unwrapped.action_map.to_ctrl(actions)
    return elapsed, list(ctrls), starts


def _raw(model: mujoco.MjModel, frame_skip: int, ctrls: list[np.ndarray], starts: list[tuple],
         post_constraint: bool = False) -> float:
    """Seconds for bare mj_step over the same controls, restarting where the env reset.

    `post_constraint` adds the `mj_rnePostConstraint` HumanoidBench's step ends with (it fills the
    contact forces and `cacc` that rewards may read), i.e. all the physics an env step does.
    """
    data = mujoco.MjData(model)
    restart = {step: (qpos, qvel) for step, qpos, qvel in starts}
    start = time.perf_counter()
    for i, ctrl in enumerate(ctrls):
        if i in restart:
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = restart[i]
            mujoco.mj_forward(model, data)
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, nstep=frame_skip)
        if post_constraint:
            mujoco.mj_rnePostConstraint(model, data)
    return time.perf_counter() - start


def _timed_vector_steps(step, num_envs: int, steps: int, seed: int) -> float:
    """Total env steps/s of `step(actions)` over `steps` env steps (after one warm-up step)."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(max(steps // num_envs, 2), num_envs, 19)).astype(np.float32)
    step(actions[0])
    start = time.perf_counter()
    for action in actions[1:]:
        step(action)
    return num_envs * (len(actions) - 1) / (time.perf_counter() - start)


def _gymnasium_async(env_id: str, collision: str, steps: int, seed: int) -> float:
    """gymnasium's AsyncVectorEnv: two envs, one per process."""
    envs = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="async", collision=collision)
    try:
        envs.reset(seed=seed)
        return _timed_vector_steps(envs.step, 2, steps, seed)
    finally:
        envs.close()


def _multitask(env_id: str, collision: str, steps: int, seed: int, envs_per_worker: int) -> float:
    """sim_bridge's MultiTaskVectorEnv: two worker processes hosting `envs_per_worker` envs each."""
    with MultiTaskVectorEnv([env_id] * (2 * envs_per_worker), collision=collision, num_workers=2) as envs:
        envs.reset(seed=seed)
        return _timed_vector_steps(envs.step, envs.num_envs, steps, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement")
    parser.add_argument("--tasks", nargs="*", default=None, help="task names (default: every available)")
    parser.add_argument("--collision", nargs="*", default=list(COLLISION_VARIANTS), choices=COLLISION_VARIANTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="measure env and raw this many times, interleaved, and keep the fastest of each")
    parser.add_argument("--no-vector", action="store_true", help="skip the 2-process measurements")
    parser.add_argument("--envs-per-worker", type=int, default=4, help="MultiTaskVectorEnv envs per process")
    args = parser.parse_args()

    env_ids = (sim_bridge.available_task_ids() if args.tasks is None
               else tuple(sim_bridge.registry.env_id("h1", t) for t in args.tasks))
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, mujoco {mujoco.__version__}, {args.steps} steps per "
          f"measurement, fastest of {args.repeats}, uniform random actions\n")
    print("| task | collision | env steps/s | raw mj_step x10 steps/s | env/raw | raw + rnePostConstraint "
          "steps/s | env/(raw + rne) | gymnasium async, 2 x 1 env | MultiTaskVectorEnv, 2 x "
          f"{args.envs_per_worker} envs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for env_id in env_ids:
        for collision in args.collision:
            env = sim_bridge.make(env_id, collision=collision)
            env_seconds = raw_seconds = post_seconds = float("inf")
            model, frame_skip = env.unwrapped.model, env.unwrapped.frame_skip
            for _ in range(args.repeats):  # fastest of several: the machine may be shared
                seconds, ctrls, starts = _episode_plan(env, args.steps, args.seed)
                env_seconds = min(env_seconds, seconds)
                raw_seconds = min(raw_seconds, _raw(model, frame_skip, ctrls, starts))
                post_seconds = min(post_seconds, _raw(model, frame_skip, ctrls, starts, post_constraint=True))
            env.close()
            if args.no_vector:
                vector = "- | -"
            else:
                vector = (f"{_gymnasium_async(env_id, collision, args.steps, args.seed):,.0f} | "
                          f"{_multitask(env_id, collision, args.steps, args.seed, args.envs_per_worker):,.0f}")
            print(f"| {env_id} | {collision} | {args.steps / env_seconds:,.0f} | {args.steps / raw_seconds:,.0f} "
                  f"| {raw_seconds / env_seconds:.2f} | {args.steps / post_seconds:,.0f} "
                  f"| {post_seconds / env_seconds:.2f} | {vector} |", flush=True)


if __name__ == "__main__":
    main()
