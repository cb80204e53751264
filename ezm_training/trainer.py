"""Trainer: schedules collection, reanalysis, updates, evaluation, logging and checkpoints of one run.

One process, synchronous, in the order EZ V2's workers would interleave them:
  1. collect until every task holds start_transitions_per_task + step·transitions_per_step stored env steps
     ([EZ2] pacing: an actor waits while collected/total_transitions > trained/training_steps), while
     step < training_steps; the offline_training_steps after that only train;
  2. `train_step`: sample (replay) -> reanalyse with the target model (reanalyze) -> update (learner)
     -> new priorities (replay);
  3. every log_interval: CSV + TensorBoard + progress bar; eval_interval: evaluation, curves, video;
     checkpoint_interval: checkpoint.

The parts talk through narrow calls (collect -> segments; sample -> Batch; reanalyse -> Targets;
update -> stats), so a later change can run collectors and reanalysers as Ray actors.

Resume (`Trainer(cfg, run_dir, resume=checkpoint)`): model, optimiser, target/actor models, replay,
counters, every RNG and the episodes in flight (each env's physics and RNG, the collector's unfinished
blocks, a chunk the collector process had in flight) come back, so the resumed run is the uninterrupted one,
bit for bit on a CPU (tests/ezm_training/test_train_smoke.py). Saving changes nothing in the run: a chunk in
flight is waited for and kept in flight, not stored early. A checkpoint without episodes (written before they
were saved, or of envs that cannot be captured) resumes with fresh episodes, seeded from (seed, resume
count). The CSV logs are cut back to the rows the checkpoint had seen, so rows written after it are not
there twice.
`rebuild_replay=True` resumes a checkpoint without its replay (carried from another machine): the replay
starts empty and is refilled from start_transitions_per_task at the run's replay ratio, counted from the
resumed update (docs/design.md, "Carrying a run between machines").
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ezm_training import checkpoint as ckpt
from ezm_training import envs
from ezm_training.collector import Collector
from ezm_training.collector_process import CollectorProcess, one_collector_state
from ezm_training.config import EZMConfig
from ezm_training.curves import plot_curves
from ezm_training.evaluate import evaluate, record_video
from ezm_training.learner import Learner
from ezm_training.reanalyze import Reanalyzer, batch_to_tensors
from ezm_training.replay import MultiTaskReplay

log = logging.getLogger(__name__)

# Vector-env steps per collect call while topping up: amortises the call overhead; small next to a block
# (100) so pacing overshoots by at most this many steps per env.
COLLECT_CHUNK_STEPS = 25
VIDEO_EVERY_EVALS = 5  # rendering is slow on a CPU (evaluate.VIDEO_SIZE_PX); the final eval always records


def train_step(learner: Learner, replay: MultiTaskReplay, reanalyzer, rng: np.random.Generator,
               timers: dict[str, float] | None = None) -> dict:
    """sample -> reanalyse (target model) -> update -> priorities. Returns the learner's stats.

    `reanalyzer`: a `Reanalyzer`, called here on a batch sampled now; or the Ray engine's
    `ReanalysisPipeline`, whose `prepare` hands over a batch its actors reanalysed while earlier updates ran."""
    timers = timers if timers is not None else {}
    if isinstance(reanalyzer, Reanalyzer):
        start = time.perf_counter()
        batch = replay.sample(learner.cfg.batch_size_per_task, rng)
        sampled = time.perf_counter()
        data = batch_to_tensors(batch, learner.device)
        copied = time.perf_counter()
        targets = reanalyzer(data, learner.target_model, learner.step)
        # "data" = replay sampling plus the priority write-back; "copy" = host-to-device transfer of the batch.
        for name, seconds in (("data", sampled - start), ("copy", copied - sampled),
                              ("reanalyze", time.perf_counter() - copied)):
            timers[name] = timers.get(name, 0.0) + seconds
    else:
        batch, data, targets = reanalyzer.prepare(learner, replay, rng, timers)
    start = time.perf_counter()
    stats = learner.update(data, targets)
    updated = time.perf_counter()
    if stats["priorities"] is not None:
        replay.update_priorities(batch.index, stats["priorities"])
    for name, seconds in (("update", updated - start), ("data", time.perf_counter() - updated)):
        timers[name] = timers.get(name, 0.0) + seconds
    return stats


_LOGS = ("train_log.csv", "episodes.csv", "eval_history.csv")


class _CsvLog:
    """Append rows to a CSV, writing the header once; fields fixed by the first row.

    `keep_rows` (a resume): the file is cut back to its header and that many rows, the count the
    checkpoint saved, so rows written after that checkpoint, before the run was stopped, are not doubled.
    """

    def __init__(self, path: Path, keep_rows: int | None = None):
        self.path = path
        self.fields: list[str] | None = None
        rows: list[list[str]] = []
        if path.exists() and path.stat().st_size:
            with open(path, newline="") as handle:
                reader = csv.reader(handle)
                self.fields = next(reader, None)
                rows = list(reader)
        if keep_rows is not None and len(rows) > keep_rows:
            log.info("%s: dropping %d rows written after the checkpoint", path.name, len(rows) - keep_rows)
            rows = rows[:keep_rows]
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle).writerows([self.fields, *rows])
            os.replace(tmp, path)
        self.rows = len(rows)

    def write(self, row: dict) -> None:
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.fields)
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore").writerow(row)
        self.rows += 1


class Trainer:
    def __init__(self, cfg: EZMConfig, run_dir: Path, resume: Path | None = None, num_workers: int | None = None,
                 progress: bool = True, rebuild_replay: bool = False):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(cfg.to_json())
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        self.device = torch.device(cfg.device if cfg.device != "cuda" or torch.cuda.is_available() else "cpu")
        if self.device.type != torch.device(cfg.device).type:
            log.warning("device %s is not available; training on %s", cfg.device, self.device)
        self.num_workers = num_workers
        self.progress = progress
        dims, action_dim = envs.task_dims(cfg.task_ids)
        self.learner = Learner(cfg, dims, action_dim, self.device)
        self.replay = MultiTaskReplay(cfg, max(dims), action_dim)
        self.owns_ray = False
        if cfg.engine == "ray":
            from ezm_training import ray_engine

            self.owns_ray = ray_engine.connect(cfg)
            self.reanalyzer = ray_engine.ReanalysisPipeline(cfg)
        else:
            self.reanalyzer = Reanalyzer(cfg)
        self.rng = np.random.default_rng(cfg.seed)
        self.timers: dict[str, float] = {}
        self.env_steps = 0
        self.resume_count = 0
        self.last_eval_step = -1
        self.num_evals = 0
        self.last_returns: dict[str, float] = {}
        self.replay_from_step = 0  # the update the replay was (re)started at; pacing counts from it
        state = None
        if resume is None:
            ckpt.seed_global_rngs(cfg.seed)  # a resume restores them instead
        else:
            state, replay_state, _ = ckpt.load_checkpoint(resume, map_location=self.device,
                                                          without_replay=rebuild_replay)
            self.learner.load_state_dict(state["learner"])
            if replay_state is None:
                self.replay_from_step = self.learner.step
                log.warning("replay rebuilt: %s is resumed without its replay; updates wait for %d new "
                            "transitions per task, then follow the replay ratio from update %d",
                            resume, cfg.start_transitions_per_task, self.learner.step)
            else:
                self.replay.load_state_dict(replay_state)
                self.replay_from_step = int(state.get("replay_from_step", 0))
            self.rng.bit_generator.state = state["rng"]
            ckpt.set_rng_state(state["global_rng"])
            self.env_steps, self.last_eval_step = int(state["env_steps"]), int(state["last_eval_step"])
            self.resume_count = int(state["resume_count"]) + 1
            self.num_evals = int(state.get("num_evals", 0))
            self.last_returns = dict(state["last_returns"])
            log.info("resumed from %s at step %d (%d env steps)", resume, self.learner.step, self.env_steps)
        self.collector = self._make_collector(state["collector"] if state else None, episodes=not rebuild_replay)
        rows = state.get("log_rows", {}) if state else {}
        self.train_log, self.episode_log, self.eval_log = (
            _CsvLog(self.run_dir / name, keep_rows=rows.get(name)) for name in _LOGS)
        self.writer = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _make_collector(self, state: dict | None, episodes: bool) -> Collector | CollectorProcess:
        """The collector, with the checkpoint's episodes in flight when it has them and `episodes` (a rebuilt
        replay starts fresh episodes: the blocks before them are gone with the replay)."""
        cfg = self.cfg
        num_envs = cfg.num_actors * cfg.envs_per_task * cfg.num_tasks
        env_ids = [cfg.task_ids[i % cfg.num_tasks] for i in range(num_envs)]
        restored = state is not None and episodes and "in_flight" in state
        if state is not None:
            log.info("episodes in flight: %s", "restored, the run continues bit for bit" if restored else
                     "not restored (not in the checkpoint, or the replay is rebuilt); fresh episodes start")
        if cfg.engine == "ray":
            from ezm_training.ray_engine import CollectorPool

            return CollectorPool(cfg, num_workers=self.num_workers, state=state, resume_count=self.resume_count,
                                 restore_episodes=episodes)
        if state is not None and "actors" in state:  # a Ray run's checkpoint: one collector continues its counts
            log.warning("a Ray run's %d collectors continue as one; fresh episodes start", len(state["actors"]))
            state, episodes = one_collector_state(state), False
        if cfg.collector_process:
            return CollectorProcess(cfg, env_ids, num_workers=self.num_workers, state=state,
                                    resume_count=self.resume_count, restore_episodes=episodes)
        venv = envs.make_vector_env(env_ids, action_repeat=cfg.action_repeat, num_workers=self.num_workers)
        collector = Collector(cfg, venv, self.device, resume_count=self.resume_count)
        if state is not None:
            collector.load_state_dict(state, episodes=episodes)
        return collector

    @property
    def total_steps(self) -> int:
        return self.cfg.training_steps + self.cfg.offline_training_steps

    def collection_target(self, step: int) -> int:
        """Stored env steps every task should have before update `step` ([EZ2] pacing)."""
        cfg = self.cfg
        since = step - self.replay_from_step
        return min(cfg.transitions_per_task, cfg.start_transitions_per_task + math.ceil(since * cfg.transitions_per_step))

    # --- the loop ---
    def request_stop(self, signum: int | None = None, frame=None) -> None:
        """Ask the loop to stop after the current update, with a checkpoint (SIGINT/SIGTERM handler).

        A second request while the first is pending stops at once, without the checkpoint.
        """
        if getattr(self, "_stop_requested", False):
            raise KeyboardInterrupt
        self._stop_requested = True

    def run(self, until: int | None = None) -> None:
        """Train until `total_steps`, or until `request_stop()`; either way the last step is checkpointed.
        `until` stops earlier, at that update, without a checkpoint (bench/train_throughput.py times a window).

        A stop request (Ctrl-C, SIGTERM from a scheduler or a spot-instance reclaim) finishes the update in
        flight and saves, so nothing is lost; `ezm-train --resume` continues from there. SIGKILL loses at
        most one checkpoint interval (checkpoints are written to a temp dir, then renamed).
        """
        from tqdm import tqdm

        self._stop_requested = False

        cfg = self.cfg
        bar = tqdm(total=self.total_steps, initial=self.learner.step, desc="ezm-train", dynamic_ncols=True,
                   disable=not self.progress, mininterval=2.0, file=sys.stderr)
        window_start, window_steps, window_env = time.perf_counter(), self.learner.step, self.env_steps
        try:
            last = self.total_steps if until is None else min(until, self.total_steps)
            while self.learner.step < last:
                step = self.learner.step
                if step < cfg.training_steps:
                    self._collect_until(self.collection_target(step))
                self.collector.long_episodes = step >= cfg.long_episodes_step
                stats = train_step(self.learner, self.replay, self.reanalyzer, self.rng, self.timers)
                bar.update(1)
                step = self.learner.step
                if step % cfg.log_interval == 0 or step == self.total_steps:
                    now = time.perf_counter()
                    rates = {"updates_per_s": (step - window_steps) / (now - window_start),
                             "env_steps_per_s": (self.env_steps - window_env) / (now - window_start)}
                    window_start, window_steps, window_env = now, step, self.env_steps
                    self._log(stats, rates)
                    bar.set_postfix_str(self._postfix(rates), refresh=False)
                if step % cfg.eval_interval == 0 or step == self.total_steps:
                    self.evaluate_and_plot()
                if step % cfg.checkpoint_interval == 0 or step == self.total_steps:
                    self.save()
                elif self._stop_requested:
                    self.save()
                if self._stop_requested:
                    print(f"ezm-train: stopped on request at update {step}; resume with "
                          f"`ezm-train --resume {self.run_dir}`", file=sys.stderr, flush=True)
                    break
        finally:
            bar.close()
            self.collector.close()
            if self.cfg.engine == "ray":
                self.reanalyzer.close()
                if self.owns_ray:
                    import ray

                    ray.shutdown()
            if self.writer is not None:
                self.writer.close()

    def _collect_until(self, target: int) -> None:
        """Collect until every task has `target` stored steps. With a collector process, the next chunk is
        submitted as soon as one is taken, so it is collected while the learner trains; "time/collect" is then
        the learner's wait for it."""
        start = time.perf_counter()
        steps_per_call = max(1, min(self.cfg.block_steps, COLLECT_CHUNK_STEPS))
        overlapped = not isinstance(self.collector, Collector)  # a collector process or the Ray engine's actors
        while min(self.replay.transitions()) < target:
            if not overlapped:
                self._store(self.collector.collect(self.learner.actor_model, steps_per_call))
                continue
            if not self.collector.pending:
                self.collector.submit(self.learner.actor_model, steps_per_call)
            self._store(self.collector.result())
            self.collector.submit(self.learner.actor_model, steps_per_call)
        self.timers["collect"] = self.timers.get("collect", 0.0) + time.perf_counter() - start

    def _store(self, result) -> None:
        """A collected chunk into the replay, the counters and the episode log."""
        for segment in result.segments:
            self.replay.add(segment)
        self.env_steps += result.env_steps
        for episode in result.episodes:
            env_id = self.cfg.task_ids[episode.task]
            self.last_returns[env_id] = episode.ret
            self.episode_log.write({"step": self.learner.step, "env_id": env_id,
                                    "task_env_steps": self.task_env_steps(episode.task),
                                    "return": round(episode.ret, 3), "length": episode.length,
                                    "terminated": int(episode.terminated)})
            if self.writer is not None:
                self.writer.add_scalar(f"train_return/{env_id}", episode.ret, self.task_env_steps(episode.task))

    def task_env_steps(self, task: int) -> int:
        """Env steps of a task so far: agent steps × action_repeat (the x-axis of TD-MPC2's and EZ's curves)."""
        return int(self.collector.transitions[task]) * self.cfg.action_repeat

    def _log(self, stats: dict, rates: dict) -> None:
        # The replay ratio as it is (the config sets it: transitions_per_step stored steps per task per update).
        row = {"step": self.learner.step, "env_steps": self.env_steps, **rates,
               "updates_per_env_step": round(self.learner.step / max(1, self.env_steps), 4),
               **{k: v for k, v in stats.items() if k != "priorities"},
               **self.reanalyzer.last_stats, **self.collector.pop_stats(),
               **{f"time/{k}": round(v, 3) for k, v in sorted(self.timers.items())},
               **{f"time/collector_{k}": round(v, 3) for k, v in sorted(self.collector.timers.items())},
               **{f"env_steps/{env_id}": int(n) for env_id, n in zip(self.cfg.task_ids, self.collector.transitions)}}
        self.train_log.write(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, self.learner.step)

    def _postfix(self, rates: dict) -> str:
        returns = " ".join(f"{envs.short_name(env_id)}={ret:.0f}" for env_id, ret in self.last_returns.items())
        return f"env {rates['env_steps_per_s']:.0f}/s upd {rates['updates_per_s']:.2f}/s | {returns}"

    # --- evaluation, curves, checkpoints ---
    def evaluate_and_plot(self) -> None:
        cfg, step = self.cfg, self.learner.step
        if step == self.last_eval_step:
            return
        self.last_eval_step = step
        start = time.perf_counter()
        model = self.learner.target_model  # the EMA weights, as the actors use ([EZM] evaluates a hard copy)
        results = evaluate(cfg, model, cfg.eval_episodes_per_task, seed=cfg.seed + 10_000 + step,
                           num_workers=self.num_workers, device=self.device)
        for result in results:
            task_steps = self.task_env_steps(cfg.task_ids.index(result.env_id))
            self.eval_log.write({"step": step, "task_env_steps": task_steps, **asdict(result)})
            if self.writer is not None:
                self.writer.add_scalar(f"eval_return/{result.env_id}", result.mean_return, task_steps)
        log.info("eval at step %d: %s", step, ", ".join(f"{r.env_id} {r.mean_return:.1f}" for r in results))
        plot_curves(self.run_dir, cfg.task_ids)
        self.num_evals += 1
        if cfg.save_video and (self.num_evals % VIDEO_EVERY_EVALS == 1 or step == self.total_steps):
            for env_id in cfg.task_ids:
                reason = record_video(cfg, model, env_id, self.run_dir / "videos" / f"{env_id}_step{step:09d}.mp4",
                                      seed=cfg.seed + step, device=self.device)
                if reason:
                    log.warning("video of %s skipped: %s", env_id, reason)
                    break
        self.timers["eval"] = self.timers.get("eval", 0.0) + time.perf_counter() - start

    def state_dict(self) -> dict:
        return {"learner": self.learner.state_dict(), "collector": self.collector.state_dict(),
                "rng": self.rng.bit_generator.state, "global_rng": ckpt.rng_state(), "env_steps": self.env_steps,
                "last_eval_step": self.last_eval_step, "resume_count": self.resume_count, "num_evals": self.num_evals,
                "last_returns": self.last_returns, "replay_from_step": self.replay_from_step,
                "log_rows": {csv_log.path.name: csv_log.rows
                             for csv_log in (self.train_log, self.episode_log, self.eval_log)}}

    def save(self) -> Path:
        start = time.perf_counter()
        path = ckpt.save_checkpoint(self.run_dir / "checkpoints", self.learner.step, self.state_dict(),
                                    self.replay.state_dict(), self.cfg.to_json(), keep=self.cfg.keep_checkpoints)
        self.timers["checkpoint"] = self.timers.get("checkpoint", 0.0) + time.perf_counter() - start
        log.info("checkpoint %s", path)
        return path
