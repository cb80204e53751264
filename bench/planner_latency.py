"""Control-step latency of the anytime planner (ezm_ros.planner) on onnxruntime, and its search overhead.

For each bundle, precision (float32 graphs, and the int8 graphs of `ezm-export --int8`), simulation
budget and onnxruntime thread count: `--steps` control steps (default 2,000)
on observations from the bundle's parity.npz (recorded from each task's environment, and random), cycling
over its tasks, with the planner's default 12 ms deadline. Reported per configuration: step latency
p50/p99/max, simulations done (mean, min), how often the deadline cut the search, fallbacks, deadline
misses, and in the same steps the time inside the ONNX calls; overhead = step time / ONNX time, over
the steps that searched.

Bundles: the learner's (`--checkpoint RUN_OR_CKPT`, exported here; or `--bundle DIR`; the row is
skipped with a note when there is neither), and synthetic ones with random weights: `default` (EZ-M:
latent 512, 3 blocks) and `wide256` (the same at width 256), over the 9 h1-medium tasks.

    .venv/bin/python bench/planner_latency.py                       # about 10 minutes on 2 cores
    .venv/bin/python bench/planner_latency.py --steps 300 --sims 32 --threads 1 --sizes wide256
    .venv/bin/python bench/planner_latency.py --precisions int8 --deadline-ms 1e9   # the whole int8 search

Prints a markdown table (paste it into BENCHMARKS.md) with the machine load beside the figures.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import time
from pathlib import Path

import numpy as np

from ezm_ros.bundle import RuntimeSettings, load_bundle, read_manifest
from ezm_ros.manifest import MANIFEST_FILE, PARITY_FILE
from ezm_ros.planner import DEFAULT_DEADLINE_MS, Planner, PlannerSettings

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC = {  # MODEL_SIZES["default"] with these overrides
    "default": {},
    "wide256": dict(latent_dim=256, trunk_dim=256, head_dims=(256, 256), task_dim=64),
}
SYNTHETIC_TASKS = "h1-medium"


def synthetic_bundle(name: str, work: Path) -> Path:
    """Export (once; reused from `work`) a WorldModel of size `name` with random weights, int8 graphs too."""
    out = work / f"synthetic-{name}"
    if (out / MANIFEST_FILE).is_file() and read_manifest(out).int8:
        return out
    import torch

    from ezm_training.config import EZMConfig
    from ezm_training.export.bundle import export_bundle
    from ezm_training.networks import WorldModel
    from ezm_training.envs import task_dims

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = EZMConfig.from_preset(size="default", tasks=SYNTHETIC_TASKS, **SYNTHETIC[name])
    model = WorldModel(cfg, *task_dims(cfg.task_ids))
    counts = model.parameter_counts()
    recurrent = counts["dynamics"] + counts["reward"] + counts["value_policy"] + counts["task_embedding"]
    print(f"# exporting synthetic {name}: {counts['total'] / 1e6:.1f}M parameters, {recurrent / 1e6:.1f}M on the "
          "recurrent path", flush=True)
    export_bundle(model, cfg, out, checkpoint=f"synthetic {name} (random weights)", int8=True, overwrite=True)
    return out


def learner_bundle(args, work: Path) -> tuple[Path | None, str]:
    if args.bundle is not None:
        return args.bundle, f"learner ({args.bundle})"
    checkpoint = args.checkpoint
    if checkpoint is None:
        runs = sorted((REPO / "runs").glob("*/checkpoints/ckpt_*"), key=lambda p: p.stat().st_mtime)
        checkpoint = runs[-1] if runs else None
    if checkpoint is None:
        return None, "learner: no checkpoint under runs/ and none given (--checkpoint/--bundle): row skipped"
    from ezm_training.cli import export_main

    out = work / "learner"
    if export_main([str(checkpoint), str(out), "--int8", "--force"]) != 0:
        return None, f"learner: export of {checkpoint} failed: row skipped"
    return out, f"learner ({checkpoint})"


def measure(path: Path, precision: str, sims: int, threads: int, steps: int, deadline_ms: float) -> dict:
    bundle = load_bundle(path, RuntimeSettings(intra_op_threads=threads, precision=precision))
    planner = Planner(bundle, PlannerSettings(num_simulations=sims, deadline_ms=deadline_ms))
    with np.load(path / PARITY_FILE) as data:
        observations, tasks = data["initial.obs"], data["initial.task"].tolist()
    latency, model, simulations = np.empty(steps), np.empty(steps), np.empty(steps, np.int64)
    searched = np.zeros(steps, bool)
    cuts = fallbacks = misses = 0
    load_before = os.getloadavg()[0]
    for i in range(steps):
        row = i % len(tasks)
        result = planner.plan(observations[row], tasks[row])
        latency[i], model[i], simulations[i] = result.latency_ms, result.model_ms, result.simulations
        cuts += result.deadline_cut
        fallbacks += result.fallback != ""
        searched[i] = result.fallback == ""
        misses += result.deadline_missed
    return dict(sims=sims, threads=threads, p50=np.percentile(latency, 50), p99=np.percentile(latency, 99),
                max=latency.max(), sims_mean=simulations.mean(), sims_min=int(simulations.min()),
                cut=cuts / steps, fallbacks=fallbacks, misses=misses, model_ms=model.mean(),
                # search overhead over the steps that searched (a fallback step runs one call or none)
                overhead=latency[searched].sum() / model[searched].sum() if searched.any() else float("nan"),
                load=(load_before + os.getloadavg()[0]) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="learner run/checkpoint to export and time")
    parser.add_argument("--bundle", type=Path, default=None, help="an exported bundle to time as the learner's")
    parser.add_argument("--sizes", nargs="+", default=list(SYNTHETIC), choices=list(SYNTHETIC))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    parser.add_argument("--sims", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--deadline-ms", type=float, default=DEFAULT_DEADLINE_MS,
                        help="per-step deadline; a huge value (1e9) times the full, uncut search")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "bench" / "planner_latency")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    import onnxruntime

    print(f"# {datetime.date.today()} · {platform.machine()} · {os.cpu_count()} CPUs · onnxruntime "
          f"{onnxruntime.__version__} (CPU) · numpy {np.__version__} · load {os.getloadavg()}", flush=True)
    bundles: list[tuple[str, Path | None]] = []
    path, label = learner_bundle(args, args.work)
    bundles.append((label, path))
    bundles += [(f"synthetic {name}", synthetic_bundle(name, args.work)) for name in args.sizes]

    lines = [f"{args.steps} control steps per row, deadline {args.deadline_ms:g} ms; latency in ms; overhead = "
             "step time / time inside the ONNX calls, over the steps that searched; load = 1-min load average "
             "during the row.", "",
             "| bundle | precision | sims | threads | p50 | p99 | max | sims done (mean / min) | cut | fallbacks "
             "| misses | ONNX ms | overhead × | load |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, path in bundles:
        if path is None:
            lines.append(f"| {label} | | | | | | | | | | | | | |")
            print(f"# {label}", flush=True)
            continue
        precisions = [p for p in args.precisions if p in read_manifest(path).precisions]
        for missing in sorted(set(args.precisions) - set(precisions)):
            lines.append(f"| {label} | {missing} | | | | | | | | | | | | |")
            print(f"# {label}: no {missing} graphs (ezm-export --{missing}): rows skipped", flush=True)
        for precision, threads, sims in itertools.product(precisions, args.threads, args.sims):
            start = time.perf_counter()
            r = measure(path, precision, sims, threads, args.steps, args.deadline_ms)
            line = (f"| {label} | {precision} | {sims} | {threads} | {r['p50']:.2f} | {r['p99']:.2f} | "
                    f"{r['max']:.2f} | {r['sims_mean']:.1f} / {r['sims_min']} | {100 * r['cut']:.0f}% | "
                    f"{r['fallbacks']} | {r['misses']} | {r['model_ms']:.2f} | {r['overhead']:.2f} | {r['load']:.2f} |")
            lines.append(line)
            print(line, f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n# load at the end {os.getloadavg()}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
