"""`ezm-bundle-eval`: returns of a model bundle as the robot would run it: the torch-free planner in the loop
with the simulator, per task and precision, with or without the control deadline.

    ezm-bundle-eval                                         # the shipped model, every task, 5 episodes
    ezm-bundle-eval models/ezm-h1 --precision fp32 int8     # does int8 cost return? side by side
    ezm-bundle-eval models/ezm-h1 --deadline-ms 12          # with the deployed deadline (anytime search)
    ezm-bundle-eval models/ezm-h1 --tasks walk --episodes 10 --out out/bundle-eval

`ezm-eval` evaluates a training checkpoint in torch with the learner's search; this evaluates the exported
bundle through `ezm_ros.planner.Planner` on onnxruntime, the code path of the planner node, minus DDS: what
the robot gets. Episodes run one after another in this process (real time is not simulated; `--deadline-ms`
applies the planner's deadline to each step's own planning time, so cut searches show up in the returns).

Episode k of a task resets the simulator with seed `seed + k` and restarts the planner's step counter, so
two precisions meet the same initial states, and a run without a deadline is reproducible (with one, where
the search stops depends on the machine's timing).
Prints a table (return mean ± std, success against HumanoidBench's bar, simulations, cuts, fallbacks,
planning latency p50/p99) and, with `--out`, writes it as CSV and JSON.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ezm_ros import model_path
from ezm_ros.bundle import Bundle, BundleError, RuntimeSettings, load_bundle, read_manifest
from ezm_ros.manifest import Manifest
from ezm_ros.planner import Planner, PlannerSettings

EPISODE_STEPS = 1000  # HumanoidBench's time limit (sim_bridge.make's TimeLimit)


@dataclass(frozen=True)
class EpisodeStats:
    env_return: float
    length: int
    simulations: int  # over the episode
    cut_steps: int  # steps whose search the deadline stopped (fallbacks included)
    fallbacks: int
    latency_ms: np.ndarray  # per step


@dataclass(frozen=True)
class BundleEvalResult:
    env_id: str
    precision: str
    episodes: int
    mean_return: float
    std_return: float
    mean_length: float
    success_bar: float
    success_rate: float
    mean_simulations: float
    cut_fraction: float
    fallbacks: int
    latency_p50_ms: float
    latency_p99_ms: float


def run_episode(env, planner: Planner, task_index: int, seed: int, max_steps: int = EPISODE_STEPS) -> EpisodeStats:
    """One episode of `env` (a sim_bridge env) with `planner` choosing every action."""
    obs, _ = env.reset(seed=seed)
    planner.reset()
    total, simulations, cuts, fallbacks = 0.0, 0, 0, 0
    latency = []
    for step in range(max_steps):
        result = planner.plan(obs, task_index)
        latency.append(result.latency_ms)
        simulations += result.simulations
        cuts += result.deadline_cut
        fallbacks += result.fallback != ""
        obs, reward, terminated, truncated, _ = env.step(result.action)
        total += float(reward)
        if terminated or truncated:
            break
    length = step + 1
    return EpisodeStats(total, length, simulations, cuts, fallbacks, np.asarray(latency))


def evaluate_bundle(bundle: Bundle, env_ids: list[str], *, episodes: int, seed: int, settings: PlannerSettings,
                    max_steps: int = EPISODE_STEPS, progress=None) -> list[BundleEvalResult]:
    """`episodes` episodes per task in `env_ids` (ids the bundle knows) with one planner over `bundle`."""
    import sim_bridge
    from sim_bridge import registry

    planner = Planner(bundle, settings)
    results = []
    for env_id in env_ids:
        task_index = bundle.manifest.task(env_id).index
        env = sim_bridge.make(env_id)
        try:
            stats = []
            for episode in range(episodes):
                stats.append(run_episode(env, planner, task_index, seed + episode, max_steps))
                if progress is not None:
                    progress(env_id, episode + 1, stats[-1])
        finally:
            env.close()
        returns = np.array([s.env_return for s in stats])
        steps = sum(s.length for s in stats)
        latency = np.concatenate([s.latency_ms for s in stats])
        bar = float(registry.make_task(env_id).success_bar)  # HumanoidBench's, from the task definition
        results.append(BundleEvalResult(
            env_id=env_id, precision=bundle.settings.precision, episodes=episodes,
            mean_return=float(returns.mean()), std_return=float(returns.std()),
            mean_length=steps / episodes, success_bar=bar, success_rate=float(np.mean(returns >= bar)),
            mean_simulations=sum(s.simulations for s in stats) / steps,
            cut_fraction=sum(s.cut_steps for s in stats) / steps, fallbacks=sum(s.fallbacks for s in stats),
            latency_p50_ms=float(np.percentile(latency, 50)), latency_p99_ms=float(np.percentile(latency, 99))))
    return results


def format_table(results: list[BundleEvalResult]) -> str:
    lines = ["| task | precision | return | success (bar) | length | sims/step | cut | fallbacks | latency p50 / p99 ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.env_id} | {r.precision} | {r.mean_return:.1f} ± {r.std_return:.1f} | "
                     f"{100 * r.success_rate:.0f}% ({r.success_bar:g}) | {r.mean_length:.0f} | {r.mean_simulations:.1f} | "
                     f"{100 * r.cut_fraction:.0f}% | {r.fallbacks} | {r.latency_p50_ms:.2f} / {r.latency_p99_ms:.2f} |")
    return "\n".join(lines)


def write_results(results: list[BundleEvalResult], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in results]
    with open(out_dir / "bundle_eval.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "bundle_eval.json").write_text(json.dumps(rows, indent=2) + "\n")


def _env_ids(manifest: Manifest, tasks: list[str] | None) -> list[str]:
    known = [spec.env_id for spec in manifest.tasks]
    if not tasks:
        return known
    chosen = []
    for name in tasks:
        env_id = name if name in known else f"h1-{name}-v0"
        if env_id not in known:
            raise BundleError(f"task {name!r} is not in this bundle; it knows {', '.join(known)}")
        chosen.append(env_id)
    return chosen


def _print_progress(label: str, total: int, done: itertools.count, start: float, env_id: str, episode: int,
                    stats: EpisodeStats) -> None:
    print(f"\r{label}: {next(done)}/{total} episodes, {env_id} #{episode} return {stats.env_return:.1f} "
          f"({stats.length} steps), {time.perf_counter() - start:.0f} s   ", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-bundle-eval", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", nargs="?", default="", help="model bundle directory (default: the shipped model)")
    parser.add_argument("--tasks", nargs="+", default=None, help="short names or env ids (default: all)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "int8"])
    parser.add_argument("--deadline-ms", type=float, default=math.inf,
                        help="planning deadline per step (default: none, the full search; the planner node uses 12)")
    parser.add_argument("--simulations", type=int, default=None, help="default: the bundle's training setting")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=EPISODE_STEPS)
    parser.add_argument("--out", type=Path, default=None, help="directory for bundle_eval.csv and .json")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.max_steps < 1:
        parser.error("--episodes and --max-steps must be at least 1")

    settings = PlannerSettings(deadline_ms=args.deadline_ms, num_simulations=args.simulations, seed=args.seed)
    results = []
    try:
        path = model_path.resolve(args.bundle)
        manifest = read_manifest(path)
        for precision in args.precision:  # refuse now, not after hours of the first precision's episodes
            manifest.graph_files(precision)
        env_ids = _env_ids(manifest, args.tasks)
        for precision in args.precision:
            bundle = load_bundle(path, RuntimeSettings(intra_op_threads=args.threads, precision=precision))
            progress = functools.partial(_print_progress, f"{path.name} {precision}", len(env_ids) * args.episodes,
                                         itertools.count(1), time.perf_counter())
            results += evaluate_bundle(bundle, env_ids, episodes=args.episodes, seed=args.seed, settings=settings,
                                       max_steps=args.max_steps, progress=progress)
            print(file=sys.stderr)
    except (BundleError, FileNotFoundError) as error:
        print(f"ezm-bundle-eval: {error}", file=sys.stderr)
        return 1
    deadline = "none (full search)" if math.isinf(args.deadline_ms) else f"{args.deadline_ms:g} ms"
    print(f"{path}: {bundle.manifest.model_id}, {args.episodes} episodes per task, seed {args.seed}, "
          f"deadline {deadline}\n")
    print(format_table(results))
    if args.out is not None:
        write_results(results, args.out)
        print(f"\nwritten to {args.out}/bundle_eval.csv and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
