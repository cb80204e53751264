"""Mesh (HumanoidBench) versus primitive (Menagerie) collision: speed, and how far rewards drift apart.

Both variants start from the same seeded reset (identical qpos: collision geoms do not change the state)
and receive the same action sequence. Per task, over several seeds and two policies (zero action:
the robot collapses; uniform random actions: it flails and falls), the script reports:
- env steps/s of each variant (one process, same actions);
- mean |reward difference| per step over the first 10 and the first 100 steps, and the mean returns;
- how often the episode terminates at the same step (and the mean gap when it does not).

    .venv/bin/python bench/collision_variants.py --steps 200 --seeds 5
"""

from __future__ import annotations

import argparse
import time

import sim_bridge  # first: picks the headless GL backend before mujoco is imported

import gymnasium
import numpy as np

from sim_bridge.h1.constants import COLLISION_HUMANOIDBENCH, COLLISION_PRIMITIVE


def _episode(env: gymnasium.Env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, int | None, float]:
    """Rewards until termination or the end of `actions`; the termination step (or None); seconds."""
    env.reset(seed=seed)
    rewards, end = [], None
    start = time.perf_counter()
    for t, action in enumerate(actions):
        _, reward, terminated, _, _ = env.step(action)
        rewards.append(reward)
        if terminated:
            end = t
            break
    return np.array(rewards), end, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="longest episode per run, in env steps")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", nargs="*", default=["stand", "walk", "run"])
    args = parser.parse_args()

    print(f"# {args.seeds} seeds x 2 policies, up to {args.steps} steps, same actions on both variants\n")
    print("| task | policy | mesh steps/s | primitive steps/s | mean abs reward diff, steps 1-10 | "
          "steps 1-100 | mean return mesh | mean return primitive | same termination step | mean gap |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task in args.tasks:
        env_id = sim_bridge.registry.env_id("h1", task)
        envs = {c: sim_bridge.make(env_id, collision=c) for c in (COLLISION_HUMANOIDBENCH, COLLISION_PRIMITIVE)}
        for policy in ("zero", "random"):
            diffs10, diffs100, returns, same, gaps = [], [], {c: [] for c in envs}, 0, []
            steps, seconds = {c: 0 for c in envs}, {c: 0.0 for c in envs}
            for seed in range(args.seeds):
                rng = np.random.default_rng(1000 + seed)
                actions = (np.zeros((args.steps, 19), np.float32) if policy == "zero"
                           else rng.uniform(-1, 1, (args.steps, 19)).astype(np.float32))
                runs = {c: _episode(env, seed, actions) for c, env in envs.items()}
                for c, (rewards, _, secs) in runs.items():
                    returns[c].append(rewards.sum())
                    steps[c] += len(rewards)
                    seconds[c] += secs
                mesh, prim = runs[COLLISION_HUMANOIDBENCH][0], runs[COLLISION_PRIMITIVE][0]
                n10, n100 = min(10, len(mesh), len(prim)), min(100, len(mesh), len(prim))
                diffs10.append(np.abs(mesh[:n10] - prim[:n10]).mean())
                diffs100.append(np.abs(mesh[:n100] - prim[:n100]).mean())
                end_mesh, end_prim = runs[COLLISION_HUMANOIDBENCH][1], runs[COLLISION_PRIMITIVE][1]
                if end_mesh == end_prim:
                    same += 1
                else:
                    gaps.append(abs((end_mesh or args.steps) - (end_prim or args.steps)))
            gap = f"{np.mean(gaps):.1f}" if gaps else "-"
            print(f"| {env_id} | {policy} | {steps[COLLISION_HUMANOIDBENCH] / seconds[COLLISION_HUMANOIDBENCH]:,.0f} "
                  f"| {steps[COLLISION_PRIMITIVE] / seconds[COLLISION_PRIMITIVE]:,.0f} "
                  f"| {np.mean(diffs10):.4f} | {np.mean(diffs100):.4f} "
                  f"| {np.mean(returns[COLLISION_HUMANOIDBENCH]):.2f} | {np.mean(returns[COLLISION_PRIMITIVE]):.2f} "
                  f"| {same}/{args.seeds} | {gap} |", flush=True)
        for env in envs.values():
            env.close()


if __name__ == "__main__":
    main()
