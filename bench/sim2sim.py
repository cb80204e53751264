"""Perturbed sim2sim: the shipped bundle through the planner in closed loop on stand and walk, at each
perturbation level of sim_bridge.perturbations.LEVELS, side by side in one run.

    .venv/bin/python bench/sim2sim.py                           # the shipped model, 10 episodes per cell
    .venv/bin/python bench/sim2sim.py --episodes 5 --levels none,high --append BENCHMARKS.md

Each cell runs the same seeds (episode k: seed + k) through `ezm-bundle-eval`'s episode loop (the planner node's
code minus DDS, no deadline) on `Perturbed(env, level)`. It reports the return (mean ± std), the episode length
and the fall rate: the share of episodes that the task ended before HumanoidBench's 1000 steps (a fall, for
stand and walk), with the pushes that were given.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim_bridge  # noqa: E402
from ezm_ros import model_path  # noqa: E402
from ezm_ros.bundle import RuntimeSettings, load_bundle  # noqa: E402
from ezm_ros.planner import Planner, PlannerSettings  # noqa: E402
from sim_bridge.bundle_eval import EPISODE_STEPS, run_episode  # noqa: E402
from sim_bridge.perturbations import LEVELS, Perturbed  # noqa: E402


def run(bundle_dir: Path, tasks: list[str], levels: list[str], episodes: int, seed: int) -> tuple[list[dict], str]:
    """The table's rows, and the bundle's model id."""
    bundle = load_bundle(bundle_dir, RuntimeSettings())
    planner = Planner(bundle, PlannerSettings(deadline_ms=float("inf")))
    rows = []
    for task in tasks:
        env_id = f"h1-{task}-v0"
        index = bundle.manifest.task(env_id).index
        for level in levels:
            env = Perturbed(sim_bridge.make(env_id), LEVELS[level])
            try:
                stats = [run_episode(env, planner, index, seed + k) for k in range(episodes)]
            finally:
                env.close()
            returns = np.array([s.env_return for s in stats])
            lengths = np.array([s.length for s in stats])
            rows.append({"task": task, "level": level, "return": returns.mean(), "std": returns.std(),
                         "length": lengths.mean(), "falls": float(np.mean(lengths < EPISODE_STEPS)),
                         "pushes": env.pushes})
            print(rows[-1], flush=True)
    return rows, bundle.manifest.model_id


def report(rows: list[dict], args, bundle_dir: Path, model_id: str) -> str:
    levels = ", ".join(f"**{name}** {LEVELS[name]}" for name in dict.fromkeys(r["level"] for r in rows))
    head = (f"## Perturbed sim2sim (bench/sim2sim.py)\n\n`.venv/bin/python bench/sim2sim.py --episodes "
            f"{args.episodes} --levels {args.levels} --tasks {args.tasks}`. Machine: {os.cpu_count()}-core CPU. "
            f"Model: {bundle_dir.name} ({model_id}). Date: {datetime.date.today().isoformat()}. Levels: {levels}.\n\n")
    table = ["| task | level | return | episode length | falls | pushes |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['task']} | {r['level']} | {r['return']:.1f} ± {r['std']:.1f} | {r['length']:.0f} "
                     f"| {r['falls']:.0%} | {r['pushes']} |")
    return head + "\n".join(table) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="bundle directory (default: the shipped model)")
    parser.add_argument("--tasks", default="stand,walk")
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", type=Path, default=None, help="append the markdown section to this file")
    args = parser.parse_args()
    unknown = [level for level in args.levels.split(",") if level not in LEVELS]
    if unknown:
        parser.error(f"unknown levels {unknown}; known: {', '.join(LEVELS)}")
    bundle_dir = model_path.resolve(args.model)
    rows, model_id = run(bundle_dir, args.tasks.split(","), args.levels.split(","), args.episodes, args.seed)
    section = report(rows, args, bundle_dir, model_id)
    print(section)
    if args.append is not None:
        with open(args.append, "a") as handle:
            handle.write("\n" + section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
