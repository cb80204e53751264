"""Training throughput: env steps/s of collection and learner updates/s, with a breakdown of where time goes.

    .venv/bin/python bench/train_throughput.py                          # CPU, tiny model, h1-stand,walk,run
    .venv/bin/python bench/train_throughput.py --device cuda --size default --batch-size 504 --tasks h1-medium

Parts timed (seconds per phase, then shares):
  collection   env (physics in the worker processes, incl. pipe round trips), search model calls (actor
               network), search bookkeeping (the search's array ops: search total − its model calls),
               collector bookkeeping (segments, episode records);
  updates      data loading (replay sampling, priority write-back), host-device copies (batch to tensors),
               reanalysis model calls, reanalysis search bookkeeping, the update (forward, backward, Adam,
               EMA).
Model-call time is measured by wrapping WorldModel.initial_inference/recurrent_inference (CUDA is
synchronised around each call, so the split is honest there too, at a small cost).

Prints a markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np
import torch

from ezm_training.collector import Collector
from ezm_training.config import EZMConfig
from ezm_training.learner import Learner
from ezm_training.networks import WorldModel
from ezm_training.reanalyze import Reanalyzer
from ezm_training.replay import MultiTaskReplay
from ezm_training.envs import make_vector_env, task_dims
from ezm_training.trainer import train_step


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="h1-locomotion")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--envs-per-task", type=int, default=2)
    parser.add_argument("--simulations", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--collect-steps", type=int, default=100, help="vector-env steps timed")
    parser.add_argument("--updates", type=int, default=30, help="learner updates timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the env workers use the other cores)")
    parser.add_argument("--workers", type=int, default=None, help="env worker processes (default one per core)")
    parser.add_argument("--preset", default="default", help="EZMConfig preset the flags above override")
    parser.add_argument("overrides", nargs="*", help="further key=value EZMConfig overrides (entropy_samples=64)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    policy = max(1, args.candidates // 4)  # EZ-M's 4 of 16 from π, the rest widened
    settings = dict(tasks=args.tasks, device=args.device, batch_size=args.batch_size, envs_per_task=args.envs_per_task,
                    num_actors=1, num_simulations=args.simulations, num_sampled_actions=args.candidates,
                    num_top_actions=args.candidates, num_policy_actions=policy, transitions_per_task=20_000,
                    start_transitions_per_task=0, precision="bf16" if device.type == "cuda" else "fp32")
    settings.update(item.split("=", 1) for item in args.overrides)  # key=value overrides win
    cfg = EZMConfig.from_preset(args.preset, size=args.size, **settings)
    dims, action_dim = task_dims(cfg.task_ids)
    learner = Learner(cfg, dims, action_dim, device)
    replay = MultiTaskReplay(cfg, max(dims), action_dim)
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
        collect_timers = dict(collector.timers)  # before the top-up below adds to them
        for segment in result.segments:
            replay.add(segment)
        while min(replay.transitions()) < cfg.block_steps:  # enough to sample from
            for segment in collector.collect(learner.actor_model, 20).segments:
                replay.add(segment)
    finally:
        venv.close()

    reanalyzer, rng, timers = Reanalyzer(cfg), np.random.default_rng(0), {}
    train_step(learner, replay, reanalyzer, rng, {})  # warm-up
    with _ModelTimer(device) as model_timer:
        start = time.perf_counter()
        for _ in range(args.updates):
            train_step(learner, replay, reanalyzer, rng, timers)
        if device.type == "cuda":
            torch.cuda.synchronize()
        update_s = time.perf_counter() - start
    reanalyze_model_s = model_timer.seconds

    env_steps_per_s = result.env_steps / collect_s
    updates_per_s = args.updates / update_s
    ct = collect_timers
    rows_collect = [("env (workers + pipes)", ct["env"]), ("search: model calls", collect_model_s),
                    ("search: bookkeeping", ct["search"] - collect_model_s),
                    ("collector bookkeeping", ct["bookkeeping"])]
    rows_update = [("data loading (sample, priorities)", timers["data"]), ("host-device copies", timers["copy"]),
                   ("reanalysis: model calls", reanalyze_model_s),
                   ("reanalysis: search bookkeeping", timers["reanalyze"] - reanalyze_model_s),
                   ("update (fwd, bwd, Adam, EMA)", timers["update"])]
    paced = EZMConfig().transitions_per_step  # EZ-M's default: 1e6 per task over 6e5 updates
    seconds_per_update = 1 / updates_per_s + paced * cfg.num_tasks / env_steps_per_s
    cpu = platform.processor() or platform.machine()
    print(f"### bench/train_throughput.py ({datetime.date.today()})\n")
    print(f"`.venv/bin/python bench/train_throughput.py {' '.join(_argv())}`  ")
    print(f"Device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else cpu}, "
          f"{os.cpu_count()} cores), torch {torch.__version__}, {args.threads} torch thread(s). "
          f"Tasks {cfg.task_ids}, model `{args.size}` ({learner.model.parameter_counts()['total']:,} parameters), "
          f"{num_envs} envs, search N={cfg.num_simulations} K={cfg.num_sampled_actions}, "
          f"batch {cfg.effective_batch_size} × {cfg.unroll_steps + 1} reanalysed states.\n")
    print(f"- collection: **{env_steps_per_s:.0f} env steps/s** ({result.env_steps} steps in {collect_s:.1f} s)")
    print(f"- learner: **{updates_per_s:.2f} updates/s** ({args.updates} updates in {update_s:.1f} s)")
    print(f"- paced at EZ-M's {paced:.2f} transitions per task per update: ≈{1 / seconds_per_update:.2f} "
          f"updates/s, {paced * cfg.num_tasks / seconds_per_update:.0f} env steps/s overall (sequential)\n")
    print("| phase | part | seconds | share |\n|---|---|---:|---:|")
    for phase, rows, total in (("collection", rows_collect, collect_s), ("updates", rows_update, update_s)):
        for name, seconds in rows:
            print(f"| {phase} | {name} | {seconds:.2f} | {100 * seconds / total:.0f}% |")


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
