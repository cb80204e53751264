"""Learning curves: one PNG per task, return vs env steps of that task.

Drawn: our training-episode returns (light, smoothed), our evaluation returns (dots), HumanoidBench's
success bar (dashed) and the published EZ-M points (reference_results; error bars where a std exists).
Reads the run's eval.csv and episodes.csv, so it can also be re-run on a finished or running run dir.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ezm_training.reference_results import EZM_SOURCE, TDMPC2_100K, TDMPC2_SOURCE, ezm_points, success_bar

_SMOOTH_EPISODES = 10  # moving-average window of the training returns
_ZOOM_BELOW = 0.5  # zoom to our data while it ends before half the first published point


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def plot_curves(run_dir: Path, task_ids: tuple[str, ...]) -> list[Path]:
    """Write run_dir/curves/<env_id>.png for every task; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = _read(run_dir / "episodes.csv")
    evals = _read(run_dir / "eval_history.csv")
    out_dir = run_dir / "curves"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for env_id in task_ids:
        fig, ax = plt.subplots(figsize=(7, 4))
        train = [(float(r["task_env_steps"]), float(r["return"])) for r in episodes if r["env_id"] == env_id]
        if train:
            steps, returns = map(np.asarray, zip(*train))
            window = min(_SMOOTH_EPISODES, len(returns))
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(steps, returns, color="tab:blue", alpha=0.25, lw=0.8)
            ax.plot(steps[window - 1:], smooth, color="tab:blue", label="train episodes (smoothed)")
        ours = [(float(r["task_env_steps"]), float(r["mean_return"])) for r in evals if r["env_id"] == env_id]
        if ours:
            ax.plot(*zip(*ours), "o-", color="tab:orange", label="eval (ours)")
        ours_max = max([s for s, _ in train] + [s for s, _ in ours] + [1.0])
        points = ezm_points(env_id)
        # Early in a run the published points (0.5M, 0.83M steps) would squeeze our data into the left
        # edge: then the axis follows our data and the points beyond it become dotted levels.
        zoomed = bool(points) and ours_max < _ZOOM_BELOW * min(p.steps for p in points)
        for point in points:
            if zoomed and point.steps > ours_max:
                ax.axhline(point.mean, color="tab:green", ls=":", lw=1)
                ax.annotate(f"EZ-M {point.mean:.0f} @{point.steps / 1e6:.2f}M", (0.99, point.mean),
                            xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7,
                            color="tab:green")
            else:
                ax.errorbar(point.steps, point.mean, yerr=point.std, fmt="s", color="tab:green", capsize=3)
        if points:
            ax.plot([], [], "s", color="tab:green", label=EZM_SOURCE)
        if zoomed:
            ax.set_xlim(0, ours_max * 1.05)
        if np.isfinite(success_bar(env_id)):
            ax.axhline(success_bar(env_id), color="black", ls="--", lw=1, label="HumanoidBench success bar")
        if env_id in TDMPC2_100K:
            anchor = TDMPC2_100K[env_id]
            ax.errorbar(anchor.steps, anchor.mean, yerr=anchor.std, fmt="D", color="tab:red", capsize=3,
                        label=TDMPC2_SOURCE)
        ax.set_xlabel("env steps of this task")
        ax.set_ylabel("episode return")
        ax.set_title(env_id)
        ax.legend(fontsize=7, loc="center right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{env_id.replace(':', '_')}.png"
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(path)  # a reader never sees a half-written PNG
        paths.append(path)
    return paths
