"""Learning on fast benchmarks: EZ-M's learner on DMC cartpole-swingup and walker-walk, beside TD-MPC2 at 100k.

    python3 bench/learning.py setup                      # the benchmark's own venv, .venv-dmc/ (once)
    python3 bench/learning.py run --tasks cartpole-swingup --seeds 1     # train (resumes what exists)
    python3 bench/learning.py report                     # table (markdown) + curves PNG from the runs

Why its own environment: dm_control 1.0.50 (the newest) builds its named-index tables from MuJoCo
attributes that MuJoCo 4.0 removed (`MjModel has no attribute 'flex_vertedge'`), and runs on MuJoCo 3.17.
The product pins MuJoCo 4.0 for HumanoidBench parity (sim_bridge), so the benchmark gets `.venv-dmc/` with
MuJoCo 3.17 and dm_control beside the same torch, and this checkout installed without its dependencies. The
learner itself is the product's code path: `ezm-train` with `tasks=dmc:<domain>-<task>` (ezm_training.envs).

Protocol (as TD-MPC2 counts, [tdmpc2] results/*.csv): action repeat 2, so 100k env steps are 50k agent
steps; 1 update per stored agent step after 1000 random ones; evaluation episodes without widening, 1000
env steps (500 agent steps). Runs live in runs/learning/<task>-seed<N>/ and resume from their newest
checkpoint, so a long benchmark spans sessions (`run` again continues it).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-dmc"
RUNS = REPO / "runs" / "learning"
# The benchmark environment: MuJoCo 3.17 for dm_control, the product's torch pin and the learner's imports.
PACKAGES = ("torch==2.13.0", "mujoco==3.17.0", "dm_control==1.0.50", "gymnasium==1.4.0", "array-api-compat>=1.11",
            "numpy>=1.26", "tqdm>=4.66", "matplotlib>=3.8", "tensorboard>=2.16", "imageio>=2.34")
TASKS = ("cartpole-swingup", "walker-walk")
ENV_STEPS = 100_000
ACTION_REPEAT = 2
# The `fast` preset (ezm_training/config.py) at the benchmark's budget; 16 simulations over 8 candidates
# (EZ V2 uses 32 over 16 on DMC; half of it keeps a CPU run near an hour).
OVERRIDES = (f"action_repeat={ACTION_REPEAT}", f"training_steps={ENV_STEPS // ACTION_REPEAT}",
             f"transitions_per_task={ENV_STEPS // ACTION_REPEAT}", f"recent_window_per_task={ENV_STEPS // ACTION_REPEAT}",
             "start_transitions_per_task=1000", "num_simulations=16", "num_sampled_actions=8", "num_policy_actions=2",
             "num_top_actions=8", "batch_size=64", "lr=3e-4", "eval_interval=2500", "eval_episodes_per_task=2",
             "checkpoint_interval=2500", "log_interval=250", "eval_episode_steps=500")


def setup() -> None:
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + list(PACKAGES), check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(REPO)], check=True)
    print(f"{VENV} ready: MuJoCo 3.17 + dm_control 1.0.50 + this checkout")


def run(tasks: list[str], seeds: list[int], nice: int) -> None:
    train = VENV / "bin" / "ezm-train"
    if not train.exists():
        sys.exit(f"{train} is missing: run `python3 bench/learning.py setup` first")
    for task in tasks:
        for seed in seeds:
            out = RUNS / f"{task}-seed{seed}"
            resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("ckpt_*"))
            command = [str(train), "--resume", str(out)] if resume else [
                str(train), "--preset", "fast", "--workers", "0", f"tasks=dmc:{task}", f"seed={seed}", f"out={out}",
                *OVERRIDES]
            print(("resuming " if resume else "starting ") + " ".join(command), flush=True)
            subprocess.run(["nice", "-n", str(nice), *command], check=True)


def _evals(out: Path) -> list[tuple[int, float]]:
    path = out / "eval_history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [(int(row["task_env_steps"]), float(row["mean_return"])) for row in csv.DictReader(handle)]


def report(out_png: Path) -> None:
    sys.path.insert(0, str(REPO))
    from ezm_training.reference_results import TDMPC2_100K, TDMPC2_SOURCE

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(6 * len(TASKS), 4))
    lines = ["| task | seeds | env steps reached | ours: last eval (mean over seeds) | ours: best eval | "
             "TD-MPC2 @100k |", "|---|---:|---:|---:|---:|---:|"]
    for ax, task in zip(axes, TASKS):
        runs = sorted(RUNS.glob(f"{task}-seed*"))
        finals, bests, reached = [], [], []
        for out in runs:
            points = _evals(out)
            if points:
                ax.plot(*zip(*points), "o-", label=out.name)
                finals.append(points[-1][1])
                bests.append(max(r for _, r in points))
                reached.append(points[-1][0])
        anchor = TDMPC2_100K[f"dmc:{task}"]
        ax.errorbar(anchor.steps, anchor.mean, yerr=anchor.std, fmt="D", color="tab:red", capsize=3,
                    label=TDMPC2_SOURCE)
        ax.set_title(f"dmc:{task}")
        ax.set_xlabel("env steps (action repeat 2)")
        ax.set_ylabel("eval return")
        ax.set_xlim(0, ENV_STEPS * 1.05)
        ax.set_ylim(0, 1000)  # DMC returns lie in [0, 1000]
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if finals:
            lines.append(f"| {task} | {len(finals)} | {min(reached):,} | {sum(finals) / len(finals):.0f} | "
                         f"{max(bests):.0f} | {anchor.mean:.0f} |")
        else:
            lines.append(f"| {task} | 0 | 0 | not run | not run | {anchor.mean:.0f} |")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("\n".join(lines))
    print(f"\ncurves: {out_png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="create .venv-dmc/")
    runner = sub.add_parser("run", help="train (or resume) the benchmark runs")
    runner.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    runner.add_argument("--seeds", nargs="*", type=int, default=[1])
    runner.add_argument("--nice", type=int, default=19, help="scheduling niceness of the runs")
    reporter = sub.add_parser("report", help="print the table and draw the curves")
    reporter.add_argument("--png", type=Path, default=REPO / "docs" / "img" / "learning_dmc.png")
    args = parser.parse_args()
    if args.command == "setup":
        setup()
    elif args.command == "run":
        run(args.tasks, args.seeds, args.nice)
    else:
        report(args.png)


if __name__ == "__main__":
    main()
