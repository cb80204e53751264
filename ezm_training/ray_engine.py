"""The Ray engine (`ezm-train engine=ray`): the trainer's collectors and reanalysis as Ray actors.

The local engine runs one `Collector` (in the trainer's process, or in a child: collector_process.py) and
calls the `Reanalyzer` inline (trainer.train_step). This engine places the same classes elsewhere and
changes nothing else:

  collector actors   num_actors `CollectorService`s, each stepping envs_per_task x num_tasks envs on seeds
                     of its own (stream k). The actor weights of a round of chunks go through the object
                     store once; the trainer stores whichever chunk is ready first.
  reanalysis actors  reanalyze_workers `Reanalyzer`s, each with a target-model copy and one sampled batch in
                     flight. The learner trains on the oldest batch; its targets are `ray/target_age`
                     updates old (the target weights published when it was sampled).
  replay, learner    in the trainer's process (the driver), as in the local engine; evaluation and
                     checkpoints too.

Pacing is the local engine's: before each update the replay holds the stored steps the replay ratio asks
for (Trainer.collection_target), and the learner waits for chunks while it does not. A reanalysis actor
that has not answered within ray_wait_s is passed over: the learner computes that batch's targets itself
(`ray/reanalysis_stalls`). A dead actor (killed, out of memory, its node lost) is replaced: a collector's
chunk in flight and its episodes are lost and its replacement starts afresh, warm-up included
(`ray/collector_restarts`); a reanalysis actor's batch is computed by the learner (`ray/reanalysis_restarts`).

Checkpoints hold every collector's counts and episodes in flight (`CollectorProcess.state_dict`); a resume
with the same num_actors restores them, batches in reanalysis are sampled again. Chunks are stored in the
order they arrive, so a Ray run is not reproducible bit for bit the way a local one is.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import deque

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from ezm_training import envs
from ezm_training import targets as targets_lib
from ezm_training.collector import SearchStatMeans
from ezm_training.collector_process import (CollectorDied, CollectorProcess, CollectorService, actor_device,
                                            load_model_weights, model_weights, one_collector_state)
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel
from ezm_training.reanalyze import Reanalyzer, batch_to_tensors

log = logging.getLogger(__name__)

# The key under which a reanalysis actor reports its compute seconds with its diagnostics.
_ACTOR_SECONDS = "actor_seconds"
# Seconds a closing actor gets to shut its env workers down before it is killed.
_CLOSE_TIMEOUT_S = 30.0


def connect(cfg: EZMConfig) -> bool:
    """Join cfg.ray_address, or start Ray on this machine's cores. Returns whether this call started it (the
    trainer then shuts it down at the end). Ray's own log lines stay in its session dir, not the run's."""
    if ray.is_initialized():
        return False
    if cfg.ray_address:
        ray.init(address=cfg.ray_address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    log.info("ray: %s", {key: value for key, value in ray.cluster_resources().items()
                         if key in ("CPU", "GPU", "memory", "object_store_memory")})
    return True


class _CollectorActor(CollectorService):
    """A `CollectorService` as a Ray actor: the weights of a collect command come from the object store."""

    def _resolve(self, weights):
        return ray.get(weights) if isinstance(weights, ray.ObjectRef) else weights


class _ActorChannel:
    """The commands of a `CollectorProcess`, as calls of its Ray actor (in order: an actor runs one at a time)."""

    def __init__(self, actor):
        self.actor = actor
        self.replies: deque = deque()

    def send(self, command: str, payload) -> None:
        self.replies.append(self.actor.handle.remote(command, payload))

    def receive(self) -> dict:
        reply = self.replies.popleft()
        try:
            return ray.get(reply)
        except RayTaskError as error:  # before RayActorError: a failure in the actor's code, not its death
            raise RuntimeError(f"the collector actor failed:\n{error}") from None
        except RayActorError as error:
            raise CollectorDied(f"the collector actor died: {error}") from None

    def close(self) -> None:
        try:
            ray.get(self.actor.close.remote(), timeout=_CLOSE_TIMEOUT_S)
        except (RayActorError, RayTaskError, GetTimeoutError):
            pass  # dead, failing or stuck: killed below either way
        ray.kill(self.actor)


class CollectorPool:
    """num_actors collector actors behind the interface the trainer uses of a `CollectorProcess`: submit a
    round of chunks, take them one `result()` at a time, counts summed over the actors."""

    def __init__(self, cfg: EZMConfig, *, num_workers: int | None = None, state: dict | None = None,
                 resume_count: int = 0, restore_episodes: bool = True):
        self.cfg = cfg
        self.num_workers, self.resume_count = num_workers, resume_count
        per_actor = cfg.envs_per_task * cfg.num_tasks
        self.env_ids = [cfg.task_ids[i % cfg.num_tasks] for i in range(per_actor)]
        self.long_episodes = False
        self.restarts = 0
        self._lost = np.zeros(cfg.num_tasks, dtype=np.int64)  # steps counted by actors that died since
        self._round: tuple | None = None  # the weights and chunk length of the last submit
        states = [None] * cfg.num_actors
        if state is not None and "actors" in state and len(state["actors"]) == cfg.num_actors:
            states = list(state["actors"])
            self._lost = np.asarray(state["lost"], dtype=np.int64).copy()
            self.restarts = int(state["restarts"])
        elif state is not None:
            # A local engine's checkpoint (one collector), or another actor count: the first actor continues
            # the counts, every actor starts fresh episodes.
            log.warning("collector state of %d collector(s) resumed on %d actors: fresh episodes start",
                        len(state.get("actors", [state])), cfg.num_actors)
            states[0], restore_episodes = one_collector_state(state), False
        self.channels: list[_ActorChannel] = [None] * cfg.num_actors
        self.clients = [self._start(stream, stream, states[stream], restore_episodes)
                        for stream in range(cfg.num_actors)]
        self.long_episodes = self.clients[0].long_episodes

    def _start(self, index: int, stream: int, state: dict | None, restore_episodes: bool) -> CollectorProcess:
        # A replacement (stream >= num_actors) acts on seeds no actor of this run used.
        options = dict(num_cpus=self.cfg.ray_actor_cpus, num_gpus=self.cfg.ray_actor_gpus, max_restarts=0)

        def channel(args):
            self.channels[index] = _ActorChannel(ray.remote(_CollectorActor).options(**options).remote(*args))
            return self.channels[index]

        return CollectorProcess(self.cfg, self.env_ids, num_workers=self.num_workers, state=state,
                                resume_count=self.resume_count, restore_episodes=restore_episodes,
                                stream=stream, channel=channel)

    def _replace(self, index: int, error: Exception) -> None:
        dead = self.clients[index]
        self._lost += np.asarray(dead.transitions, dtype=np.int64)
        dead.close()
        self.restarts += 1
        stream = self.cfg.num_actors * self.restarts + index
        log.warning("collector actor %d lost (%s); its chunk in flight is gone; a new actor starts fresh "
                    "episodes (restart %d)", index, error, self.restarts)
        self.clients[index] = self._start(index, stream, None, restore_episodes=False)

    @property
    def transitions(self) -> np.ndarray:
        return self._lost + np.sum([client.transitions for client in self.clients], axis=0)

    @property
    def timers(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for client in self.clients:
            for name, seconds in client.timers.items():
                total[name] = total.get(name, 0.0) + seconds
        return total

    @property
    def pending(self) -> bool:
        return any(client.pending for client in self.clients)

    def submit(self, model: torch.nn.Module, num_steps: int) -> None:
        """Every idle actor starts a chunk with `model`'s weights as they are now (one object-store copy)."""
        self._round = (ray.put(model_weights(model)), int(num_steps))
        self._submit_round()

    def _submit_round(self) -> None:
        weights, num_steps = self._round
        for client in self.clients:
            if not client.pending:
                client.long_episodes = self.long_episodes
                client.submit_weights(weights, num_steps)

    def result(self):
        """The first chunk ready (waits for one). A dead actor is replaced and the wait goes on."""
        while True:
            if not self.pending:
                self._submit_round()
            held = [i for i, client in enumerate(self.clients) if client.pending and client.held]
            if held:
                index = held[0]  # a chunk kept across a checkpoint: ready now
            else:
                waiting = {self.channels[i].replies[0]: i for i, client in enumerate(self.clients) if client.pending}
                ready, _ = ray.wait(list(waiting), num_returns=1)
                index = waiting[ready[0]]
            try:
                return self.clients[index].result()
            except CollectorDied as error:
                self._replace(index, error)

    def pop_stats(self) -> dict[str, float]:
        merged = SearchStatMeans()
        for client in self.clients:
            merged.add(*client.search_stats.pop_sums())
        return {**merged.pop(), "ray/collector_restarts": float(self.restarts)}

    def state_dict(self) -> dict:
        states = []
        for index in range(len(self.clients)):
            try:
                states.append(self.clients[index].state_dict())
            except CollectorDied as error:
                self._replace(index, error)
                states.append(self.clients[index].state_dict())
        return {"actors": states, "lost": self._lost.copy(), "restarts": self.restarts,
                "transitions": self.transitions, "seen_transitions": self.transitions}

    def close(self) -> None:
        for client in self.clients:
            client.close()


class _ReanalysisActor:
    """A `Reanalyzer` with a target-model copy: a sampled batch in, numpy targets out."""

    def __init__(self, cfg_json: str):
        cfg = EZMConfig.from_json(cfg_json)
        torch.set_num_threads(max(1, cfg.num_threads))
        dims, action_dim = envs.task_dims(cfg.task_ids)
        self.device = actor_device(cfg)
        self.model = WorldModel(cfg, dims, action_dim).to(self.device).eval().requires_grad_(False)
        self.reanalyzer = Reanalyzer(cfg)
        self.version = -1

    def targets(self, batch, weights: dict[str, np.ndarray], version: int, step: int) -> tuple[dict, dict]:
        """`weights` (the target model's, published as `version`) arrive resolved from the object store."""
        start = time.perf_counter()
        if version != self.version:
            load_model_weights(self.model, weights)
            self.version = version
        result = self.reanalyzer(batch_to_tensors(batch, self.device), self.model, step)
        arrays = targets_to_numpy(result)
        return arrays, {**self.reanalyzer.last_stats, _ACTOR_SECONDS: time.perf_counter() - start}


def targets_to_numpy(result: targets_lib.Targets) -> dict[str, np.ndarray]:
    return {field.name: getattr(result, field.name).cpu().numpy() for field in dataclasses.fields(result)}


def targets_from_numpy(arrays: dict[str, np.ndarray], device: torch.device) -> targets_lib.Targets:
    return targets_lib.Targets(**{name: torch.tensor(array, device=device) for name, array in arrays.items()})


class ReanalysisPipeline:
    """reanalyze_workers reanalysis actors, one sampled batch in flight each; `prepare` gives the oldest
    batch with its targets (trainer.train_step)."""

    def __init__(self, cfg: EZMConfig):
        self.cfg = cfg
        self.local = Reanalyzer(cfg)  # the learner's own, for a batch an actor did not answer in time
        self.actors = [self._start() for _ in range(cfg.reanalyze_workers)]
        self.in_flight: deque = deque()  # (actor index, batch, reply, version)
        self.stalls = self.restarts = 0
        self.actor_seconds = 0.0  # the actors' own compute time, summed (the learner's wait is time/reanalyze)
        self.last_stats: dict[str, float] = {}
        self._published: tuple[int, ray.ObjectRef] | None = None
        self._next_actor = 0

    def _start(self):
        return ray.remote(_ReanalysisActor).options(
            num_cpus=self.cfg.ray_actor_cpus, num_gpus=self.cfg.ray_actor_gpus, max_restarts=0).remote(
            self.cfg.to_json())

    def _weights(self, learner) -> tuple[int, ray.ObjectRef]:
        """The target weights in the object store, put once per EMA update of the target model."""
        version = learner.step - learner.step % self.cfg.target_update_interval
        if self._published is None or self._published[0] != version:
            self._published = (version, ray.put(model_weights(learner.target_model)))
        return self._published

    def prepare(self, learner, replay, rng: np.random.Generator, timers: dict[str, float]):
        """(batch, its tensors on the learner's device, targets) for the next update."""
        start = time.perf_counter()
        while len(self.in_flight) < len(self.actors):
            batch = replay.sample(self.cfg.batch_size_per_task, rng)
            version, weights = self._weights(learner)
            index = self._next_actor
            self._next_actor = (self._next_actor + 1) % len(self.actors)
            reply = self.actors[index].targets.remote(batch, weights, version, learner.step)
            self.in_flight.append((index, batch, reply, version))
        sampled = time.perf_counter()
        index, batch, reply, version = self.in_flight.popleft()
        data = batch_to_tensors(batch, learner.device)
        copied = time.perf_counter()
        arrays = None
        try:
            arrays, self.last_stats = ray.get(reply, timeout=self.cfg.ray_wait_s)
            self.actor_seconds += self.last_stats.pop(_ACTOR_SECONDS)
        except GetTimeoutError:
            self.stalls += 1
            log.warning("reanalysis actor %d did not answer within %.0f s; the learner computes the targets",
                        index, self.cfg.ray_wait_s)
        except RayTaskError:
            raise  # a failure in the actor's code: the run stops with it instead of computing around it
        except RayActorError as error:
            self.restarts += 1
            log.warning("reanalysis actor %d lost (%s); restarted; the learner computes its batch", index, error)
            self.actors[index] = self._start()
        if arrays is None:
            targets = self.local(data, learner.target_model, learner.step)
            self.last_stats = dict(self.local.last_stats)
            version = learner.step
        else:
            targets = targets_from_numpy(arrays, learner.device)
        self.last_stats = {**self.last_stats, "ray/target_age": float(learner.step - version),
                           "time/reanalysis_actors": round(self.actor_seconds, 3),
                           "ray/reanalysis_stalls": float(self.stalls),
                           "ray/reanalysis_restarts": float(self.restarts)}
        # "data": sampling ahead; "copy": the batch to the learner's device; "reanalyze": the wait for targets.
        for name, seconds in (("data", sampled - start), ("copy", copied - sampled),
                              ("reanalyze", time.perf_counter() - copied)):
            timers[name] = timers.get(name, 0.0) + seconds
        return batch, data, targets

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.in_flight.clear()
