"""`ezm-train engine=ray` on a local Ray with this machine's cores: the same parts as the local engine, placed
in actors (ezm_training/ray_engine.py). End to end with the smoke preset, a checkpoint and its resume, a
SIGTERM of the driver, a reanalysis actor's targets against the local engine's, and actors killed mid-run."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="ray is installed by `make setup` (the `ray` extra)")

from ezm_training import checkpoint as ckpt  # noqa: E402
from ezm_training.config import EZMConfig  # noqa: E402
from ezm_training.learner import Learner  # noqa: E402
from ezm_training.reanalyze import Reanalyzer, batch_to_tensors  # noqa: E402

pytestmark = pytest.mark.slow

BUDGET_S = 600  # a hang guard, not a speed test
# Two collector actors and one reanalysis actor share 2 CPUs: Ray reserves half a CPU for each.
RAY_ARGS = dict(engine="ray", num_actors=2, ray_actor_cpus=0.5)


def _smoke(**overrides) -> EZMConfig:
    return EZMConfig.from_preset("smoke", **{**RAY_ARGS, **overrides})


def test_sigterm_of_the_driver_checkpoints_before_it_exits(tmp_path, sigterm_training):
    # First in this file: this run starts and stops a Ray of its own, before the other tests start theirs.
    run_dir = tmp_path / "run"
    args = ["--preset", "smoke", *(f"{key}={value}" for key, value in RAY_ARGS.items()), "training_steps=5000",
            "checkpoint_interval=100000", "eval_interval=100000"]
    stderr = sigterm_training(args, run_dir, BUDGET_S)
    stopped_at = int(stderr.split("stopped on request at update ")[1].split(";")[0])
    checkpoint = run_dir / "checkpoints" / f"ckpt_{stopped_at:09d}"
    state, replay, _ = ckpt.load_checkpoint(checkpoint)
    actors = state["collector"]["actors"]
    assert len(actors) == 2 and all("in_flight" in actor for actor in actors)
    assert replay is not None


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _log(run_dir: Path) -> list[dict]:
    with open(run_dir / "train_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_smoke_preset_trains_on_actors_and_resumes_their_episodes(tmp_path, local_ray):
    from ezm_training.trainer import Trainer

    cfg = _smoke(training_steps=40, checkpoint_interval=20, eval_interval=20, log_interval=10)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.run(until=20)  # stops without a checkpoint of its own at 20: the periodic one is there
    rows = _log(tmp_path / "run")
    assert [int(row["step"]) for row in rows] == [10, 20]
    assert {"ray/target_age", "ray/reanalysis_stalls", "ray/collector_restarts"} <= rows[-1].keys()
    assert float(rows[-1]["ray/target_age"]) < cfg.target_update_interval + cfg.reanalyze_workers
    saved, _, _ = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt_000000020")
    actors = saved["collector"]["actors"]
    # Each actor acts on seeds of its own: their episodes in flight differ.
    assert len(actors) == 2 and actors[0]["seed"] != actors[1]["seed"]
    assert not np.array_equal(actors[0]["in_flight"]["obs"], actors[1]["in_flight"]["obs"])
    saved_steps = saved["collector"]["transitions"]

    resumed = Trainer(cfg, tmp_path / "run", resume=tmp_path / "run" / "checkpoints" / "ckpt_000000020",
                      progress=False)
    assert np.array_equal(resumed.collector.transitions, saved_steps)
    resumed.run()
    assert int(_log(tmp_path / "run")[-1]["step"]) == 40
    assert (tmp_path / "run" / "checkpoints" / "ckpt_000000040").is_dir()


def test_a_reanalysis_actor_computes_the_local_engines_targets(local_ray, random_replay):
    from ezm_training.collector_process import model_weights
    from ezm_training.ray_engine import _ReanalysisActor, targets_to_numpy

    cfg = _smoke(tasks="h1-stand-v0,h1-walk-v0", batch_size=8, block_steps=10)
    learner = Learner(cfg, [51, 51], 19, torch.device("cpu"))
    replay = random_replay(cfg, full_segments=2)
    batch = replay.sample(cfg.batch_size_per_task, np.random.default_rng(3))
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.num_threads))  # as the actor does: the same float order
    reanalyzer = Reanalyzer(cfg)
    try:
        local = reanalyzer(batch_to_tensors(batch, torch.device("cpu")), learner.target_model, 7)
    finally:
        torch.set_num_threads(threads)
    actor = ray.remote(_ReanalysisActor).options(num_cpus=0.5).remote(cfg.to_json())
    remote, stats = ray.get(actor.targets.remote(batch, model_weights(learner.target_model), 5, 7))
    ray.kill(actor)
    expected = targets_to_numpy(local)
    assert remote.keys() == expected.keys() == {f.name for f in dataclasses.fields(local)}
    differ = [name for name in expected if not np.array_equal(remote[name], expected[name])]
    assert not differ, f"targets differ from the local engine's: {differ}"
    # Its diagnostics come back with them, and its own compute time (the bench's per-actor cost).
    assert stats.pop("actor_seconds") > 0
    assert stats == pytest.approx(reanalyzer.last_stats, nan_ok=True)


def test_killed_actors_are_replaced_and_the_run_goes_on(tmp_path, local_ray):
    from ezm_training.trainer import Trainer

    cfg = _smoke(training_steps=40, checkpoint_interval=1000, eval_interval=1000, log_interval=10)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    store = trainer._store
    killed = []

    def store_then_kill(result) -> None:
        store(result)
        if not killed and trainer.learner.step >= 10:
            # The collector actor that would send the next chunk, and the reanalysis actor with a batch in flight.
            ray.kill(trainer.collector.channels[0].actor)
            ray.kill(trainer.reanalyzer.actors[0])
            killed.append(trainer.learner.step)

    trainer._store = store_then_kill
    trainer.run()
    rows = _log(tmp_path / "run")
    assert killed, "the run never reached the kill"
    assert int(rows[-1]["step"]) == 40
    assert float(rows[-1]["ray/collector_restarts"]) == 1.0
    assert float(rows[-1]["ray/reanalysis_restarts"]) == 1.0
    steps = [int(row["env_steps/h1-stand-v0"]) for row in rows]
    assert steps == sorted(steps), "the env-step count went back after the collector was replaced"
