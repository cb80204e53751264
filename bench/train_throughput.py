"""Training throughput: env steps/s and learner updates/s, where the time goes, settings side by side.

    .venv/bin/python bench/train_throughput.py --compare            # cpu-run-1's config against the cpu preset
    .venv/bin/python bench/train_throughput.py --setting A=preset:cpu --setting "B=preset:cpu reanalyze_simulations=8"
    .venv/bin/python bench/train_throughput.py --device cuda --size default --batch-size 504 --tasks h1-medium

A setting is `LABEL=SPEC`, SPEC a preset (`preset:NAME`) or a run's config.json, then key=value overrides.
Without --setting, one setting is built from the flags (--preset, --size, --batch-size, ...), as before.

Each setting is measured three ways, one after the other in this process:
  collection   the collector alone (in this process), `--collect-steps` vector steps: env (physics in the
               worker processes, incl. pipe round trips), search model calls (actor network), search
               bookkeeping (the search's array ops: search total - its model calls), collector bookkeeping;
  updates      the learner alone, `--updates` updates on a filled replay: data loading (sampling, priority
               write-back), host-device copies, reanalysis model calls, reanalysis search bookkeeping, the
               update (forward, backward, Adam, EMA);
  end to end   the trainer itself (`Trainer.run`) for `--end-to-end` updates after as many warm-up ones, with
               the setting's own pacing (stored steps per update), envs and collector placement: the rates
               its train_log.csv reports. This is the number a run gets.
Model-call time is measured by wrapping WorldModel.initial_inference/recurrent_inference (CUDA is
synchronised around each call, so the split is honest there too, at a small cost).

Prints markdown for BENCHMARKS.md: the side-by-side table (ratios to the first setting) and the breakdowns.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ezm_training.collector import Collector
from ezm_training.config import EZMConfig
from ezm_training.envs import make_vector_env, task_dims
from ezm_training.learner import Learner
from ezm_training.networks import WorldModel
from ezm_training.reanalyze import Reanalyzer
from ezm_training.replay import MultiTaskReplay
from ezm_training.trainer import Trainer, train_step

REPO = Path(__file__).resolve().parents[1]
# --compare: the first real CPU run's configuration as it ran (docs/runs/cpu-run-1) against today's preset.
# The preset stores 1 step per task per update where cpu-run-1 stored 3 (a learning choice: 21 samples per
# stored step, not 5.3), so end-to-end env steps/s are also measured at cpu-run-1's ratio.
COMPARE = (("cpu-run-1", str(REPO / "docs/runs/cpu-run-1/config.json")),
           ("cpu", "preset:cpu"),
           ("cpu, 3 stored/task/update", "preset:cpu transitions_per_task=600000"),
           ("cpu, 3 stored, in-process collector", "preset:cpu transitions_per_task=600000 collector_process=false"),
           ("cpu, 16 reanalysis simulations", "preset:cpu reanalyze_simulations=0"))
# --engines: the local engine against the Ray engine (ezm_training/ray_engine.py) on this machine, same config.
# Ray reserves half a CPU per actor so that a collector and a reanalysis actor fit on 2 cores beside the learner.
ENGINES = (("local", "preset:cpu"),
           ("ray", "preset:cpu engine=ray collector_process=false ray_actor_cpus=0.5"),
           ("ray, 2 collectors", "preset:cpu engine=ray collector_process=false ray_actor_cpus=0.5 num_actors=2"))


class _ModelTimer:
    """Accumulates the wall time of WorldModel inference calls while active."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0
        self._originals = {}

    def _wrap(self, name):
        original = getattr(WorldModel, name)
        timer = self

        def timed(model, *args, **kwargs):
            if timer.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = original(model, *args, **kwargs)
            if timer.device.type == "cuda":
                torch.cuda.synchronize()
            timer.seconds += time.perf_counter() - start
            return out

        return original, timed

    def __enter__(self):
        for name in ("initial_inference", "recurrent_inference"):
            self._originals[name], timed = self._wrap(name)
            setattr(WorldModel, name, timed)
        return self

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(WorldModel, name, original)


def load_setting(spec: str) -> EZMConfig:
    """`preset:NAME k=v ...` or `path/config.json k=v ...`."""
    source, *overrides = shlex.split(spec)
    values = dict(item.split("=", 1) for item in overrides)
    if source.startswith("preset:"):
        return EZMConfig.from_preset(source.removeprefix("preset:"), **values)
    return EZMConfig.from_json(Path(source).read_text()).replace(**values)


def flags_setting(args) -> EZMConfig:
    """The one setting the flags describe (the script's interface before --setting)."""
    policy = max(1, args.candidates // 4)  # EZ-M's 4 of 16 from π, the rest widened
    settings = dict(tasks=args.tasks, device=args.device, batch_size=args.batch_size, envs_per_task=args.envs_per_task,
                    num_actors=1, num_simulations=args.simulations, num_sampled_actions=args.candidates,
                    num_top_actions=args.candidates, num_policy_actions=policy, transitions_per_task=20_000,
                    start_transitions_per_task=0, precision="bf16" if args.device.startswith("cuda") else "fp32")
    settings.update(item.split("=", 1) for item in args.overrides)  # key=value overrides win
    return EZMConfig.from_preset(args.preset, size=args.size, **settings)


def measure_parts(cfg: EZMConfig, args) -> dict:
    """Collection alone, then updates alone (see the module docstring)."""
    device = torch.device(cfg.device)
    cfg = cfg.replace(start_transitions_per_task=0)  # every collected step searches
    dims, action_dim = task_dims(cfg.task_ids)
    learner = Learner(cfg, dims, action_dim, device)
    replay = MultiTaskReplay(cfg.replace(transitions_per_task=20_000), max(dims), action_dim)
    num_envs = cfg.envs_per_task * cfg.num_tasks
    venv = make_vector_env([cfg.task_ids[i % cfg.num_tasks] for i in range(num_envs)], action_repeat=cfg.action_repeat,
                           num_workers=args.workers)
    collector = Collector(cfg, venv, device)
    try:
        collector.collect(learner.actor_model, 5)  # warm-up (first search call, worker caches)
        collector.timers = {key: 0.0 for key in collector.timers}
        with _ModelTimer(device) as model_timer:
            start = time.perf_counter()
            result = collector.collect(learner.actor_model, args.collect_steps)
            collect_s = time.perf_counter() - start
        collect_model_s = model_timer.seconds
        ct = dict(collector.timers)  # before the top-up below adds to them
        for segment in result.segments:
            replay.add(segment)
        while min(replay.transitions()) < cfg.block_steps:  # enough to sample from
            for segment in collector.collect(learner.actor_model, 20).segments:
                replay.add(segment)
    finally:
        venv.close()

    reanalyzer, rng, timers = Reanalyzer(cfg), np.random.default_rng(0), {}
    train_step(learner, replay, reanalyzer, rng, {})  # warm-up (compiles with compile=true)
    with _ModelTimer(device) as model_timer:
        start = time.perf_counter()
        for _ in range(args.updates):
            train_step(learner, replay, reanalyzer, rng, timers)
        if device.type == "cuda":
            torch.cuda.synchronize()
        update_s = time.perf_counter() - start
    reanalyze_model_s = model_timer.seconds
    return {
        "env_steps_per_s": result.env_steps / collect_s, "updates_per_s": args.updates / update_s,
        "parameters": learner.model.parameter_counts()["total"], "num_envs": num_envs,
        "collection": [("env (workers + pipes)", ct["env"]), ("search: model calls", collect_model_s),
                       ("search: bookkeeping", ct["search"] - collect_model_s),
                       ("collector bookkeeping", ct["bookkeeping"])],
        "collect_s": collect_s,
        "updates": [("data loading (sample, priorities)", timers["data"]), ("host-device copies", timers["copy"]),
                    ("reanalysis: model calls", reanalyze_model_s),
                    ("reanalysis: search bookkeeping", timers["reanalyze"] - reanalyze_model_s),
                    ("update (fwd, bwd, Adam, EMA)", timers["update"])],
        "update_s": update_s,
    }


def measure_end_to_end(cfg: EZMConfig, args) -> dict:
    """`Trainer.run` for warm-up + timed updates; rates over the timed windows of its train_log.csv."""
    window = args.end_to_end
    cfg = cfg.replace(start_transitions_per_task=min(cfg.start_transitions_per_task, args.warmup_transitions),
                      eval_interval=10**9, checkpoint_interval=10**9, log_interval=window, tensorboard=False,
                      save_video=False)
    with tempfile.TemporaryDirectory(prefix="ezm-throughput-") as run_dir:
        trainer = Trainer(cfg, Path(run_dir), num_workers=args.workers, progress=False)
        trainer.run(until=2 * window)
        with open(Path(run_dir) / "train_log.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
    timed = rows[1:]  # the first window holds the random warm-up and the first (compiling) update
    seconds = sum(window / float(row["updates_per_s"]) for row in timed)
    env_steps = int(timed[-1]["env_steps"]) - int(rows[0]["env_steps"])
    result = {"updates_per_s": window * len(timed) / seconds, "env_steps_per_s": env_steps / seconds,
              "stored_per_update": cfg.transitions_per_step * cfg.num_tasks}
    if cfg.engine == "ray":
        result["actors"] = actor_costs(cfg, rows[0], timed[-1], window * len(timed), env_steps)
    return result


def actor_costs(cfg: EZMConfig, first: dict, last: dict, updates: int, env_steps: int) -> dict:
    """What each part of a Ray run costs over the timed window, from the cumulative timers of its train_log.csv:
    ms of a collector actor per env step, ms of a reanalysis actor per batch, ms of the learner per update and
    its waits for chunks and for targets."""

    def spent(key: str) -> float:
        return float(last.get(key) or 0.0) - float(first.get(key) or 0.0)

    collector_s = sum(spent(f"time/collector_{part}") for part in ("env", "search", "bookkeeping"))
    return {"collector_ms_per_env_step": 1000 * collector_s / max(1, env_steps),
            "reanalysis_ms_per_batch": 1000 * spent("time/reanalysis_actors") / updates,
            "update_ms": 1000 * spent("time/update") / updates,
            "wait_collect_ms": 1000 * spent("time/collect") / updates,
            "wait_reanalysis_ms": 1000 * spent("time/reanalyze") / updates,
            "num_actors": cfg.num_actors, "reanalyze_workers": cfg.reanalyze_workers,
            "stored_per_update": cfg.transitions_per_step * cfg.num_tasks}


def describe(cfg: EZMConfig) -> str:
    return (f"batch {cfg.effective_batch_size}, N={cfg.num_simulations}"
            f"{f'/{cfg.reanalyze_simulations} reanalysis' if cfg.reanalyze_simulations else ''} K={cfg.num_sampled_actions}, "
            f"{cfg.envs_per_task * cfg.num_tasks} envs, {cfg.entropy_samples} entropy samples, "
            f"value heads {cfg.value_heads}, compile {cfg.compile}, collector process {cfg.collector_process}, "
            f"{cfg.transitions_per_step * cfg.num_tasks:g} stored steps per update")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", action="append", default=[], metavar="LABEL=SPEC",
                        help="a setting to measure (repeatable); see above")
    parser.add_argument("--compare", action="store_true", help="cpu-run-1's config against the cpu preset and its "
                        "variants (COMPARE)")
    parser.add_argument("--engines", action="store_true", help="the local engine against the Ray engine (ENGINES), "
                        "end to end, with each Ray actor's costs and the cluster estimate")
    parser.add_argument("--tasks", default="h1-locomotion")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--envs-per-task", type=int, default=2)
    parser.add_argument("--simulations", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--collect-steps", type=int, default=100, help="vector-env steps timed")
    parser.add_argument("--updates", type=int, default=30, help="learner updates timed")
    parser.add_argument("--end-to-end", type=int, default=0, metavar="N",
                        help="also time the trainer for N updates after N warm-up ones (default 0: off; "
                             "--compare sets 150)")
    parser.add_argument("--warmup-transitions", type=int, default=300,
                        help="random steps per task before the trainer's first update (end to end)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the env workers use the other cores)")
    parser.add_argument("--workers", type=int, default=None, help="env worker processes (default one per core)")
    parser.add_argument("--preset", default="default", help="EZMConfig preset the flags above override")
    parser.add_argument("overrides", nargs="*", help="further key=value EZMConfig overrides (entropy_samples=64)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    specs = [item.split("=", 1) for item in args.setting]
    if args.compare:  # first, so the ratios are to cpu-run-1's configuration
        specs = list(COMPARE) + specs
        args.end_to_end = args.end_to_end or 150
    if args.engines:
        specs = list(ENGINES) + specs
        args.end_to_end = args.end_to_end or 150
    settings = [(label, load_setting(spec)) for label, spec in specs] or [(args.preset, flags_setting(args))]

    results = []
    for label, cfg in settings:
        print(f"[{label}] {describe(cfg)}", file=sys.stderr, flush=True)
        result = measure_parts(cfg, args)
        if args.end_to_end:
            result["end_to_end"] = measure_end_to_end(cfg, args)
        results.append(result)
    report(settings, results, args)


def report(settings, results, args) -> None:
    device = settings[0][1].device
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") else cpu
    print(f"### bench/train_throughput.py ({datetime.date.today()})\n")
    print(f"`.venv/bin/python bench/train_throughput.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`  ")
    print(f"Device: {device} ({gpu}, {os.cpu_count()} cores), torch {torch.__version__}, {args.threads} torch "
          f"thread(s); load average before: {os.getloadavg()[0]:.2f}.\n")
    for (label, cfg), result in zip(settings, results):
        print(f"- **{label}**: tasks {','.join(cfg.task_ids)}, {result['parameters']:,} parameters, {describe(cfg)}")
    print()
    first = results[0]
    rows = [("collection alone (env steps/s)", lambda r: r["env_steps_per_s"]),
            ("updates alone (updates/s)", lambda r: r["updates_per_s"])]
    if args.end_to_end:
        rows += [("end to end: updates/s", lambda r: r["end_to_end"]["updates_per_s"]),
                 ("end to end: env steps/s", lambda r: r["end_to_end"]["env_steps_per_s"])]
    print("| | " + " | ".join(label for label, _ in settings) + " |")
    print("|---|" + "---:|" * len(settings))
    for name, value in rows:
        cells = [f"{value(r):.2f}" + (f" ({value(r) / value(first):.1f}x)" if r is not first and value(first) else "")
                 for r in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nShare of each phase's wall time (ms per vector step for collection, per update for updates):\n")
    print("| phase | part | " + " | ".join(label for label, _ in settings) + " |")
    print("|---|---|" + "---:|" * len(settings))
    for phase, total in (("collection", "collect_s"), ("updates", "update_s")):
        for index, (part, _) in enumerate(first[phase]):
            per = args.collect_steps if phase == "collection" else args.updates  # per vector step / per update
            cells = [f"{100 * r[phase][index][1] / r[total]:.0f}% ({1000 * r[phase][index][1] / per:.1f} ms)"
                     for r in results]
            print(f"| {phase} | {part} | " + " | ".join(cells) + " |")
    ray_runs = [(label, result["end_to_end"]["actors"]) for (label, _), result in zip(settings, results)
                if "actors" in result.get("end_to_end", {})]
    if ray_runs:
        report_actors(ray_runs)


def report_actors(ray_runs: list[tuple[str, dict]]) -> None:
    """Each Ray actor's cost, and from it how many of each a cluster needs to keep a learner fed."""
    print("\nRay engine, per part (end-to-end window; collector time summed over its actors):\n")
    print("| | " + " | ".join(label for label, _ in ray_runs) + " |")
    print("|---|" + "---:|" * len(ray_runs))
    for name, key in (("collector actor, ms per env step", "collector_ms_per_env_step"),
                      ("reanalysis actor, ms per batch", "reanalysis_ms_per_batch"),
                      ("learner update, ms", "update_ms"), ("learner wait for chunks, ms per update", "wait_collect_ms"),
                      ("learner wait for targets, ms per update", "wait_reanalysis_ms")):
        print(f"| {name} | " + " | ".join(f"{costs[key]:.1f}" for _, costs in ray_runs) + " |")
    _, costs = ray_runs[0]
    # A learner making U updates/s needs U x stored_per_update env steps/s and U reanalysed batches/s.
    per_update_collect = costs["collector_ms_per_env_step"] * costs["stored_per_update"]
    print(f"\nTo keep a learner at U updates/s, measured here: {per_update_collect:.0f} ms of collector actor and "
          f"{costs['reanalysis_ms_per_batch']:.0f} ms of reanalysis actor per update, i.e. "
          f"{per_update_collect / 1000:.2f}·U collector actors and {costs['reanalysis_ms_per_batch'] / 1000:.2f}·U "
          f"reanalysis actors (this machine's cores, this config).")


if __name__ == "__main__":
    main()
