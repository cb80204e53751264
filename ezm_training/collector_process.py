"""The collector in a process of its own, so that acting and the learner's updates overlap.

In the serial loop (trainer.py) the learner waits while a chunk is collected (the search on the actor model
and the physics in the env workers), and the env workers wait while the learner trains. With
`collector_process=True` the same `Collector` runs in a spawned child process (its env workers below it) and
the trainer keeps one chunk in flight:

    submit(actor weights, steps)  ->  the child collects while the learner trains on what is stored
    result()                      <-  picked up when the replay needs it; the next chunk is submitted at once

What it costs: the actor acts on weights one chunk older than in the serial loop (a chunk is the trainer's
COLLECT_CHUNK_STEPS env steps per env, i.e. about envs_per_task x 25 updates at one update per stored step),
on top of the actor EMA's own lag. Submissions happen at points fixed by counts (the replay's size), never by
timing, so a run stays reproducible for its seed.

Messages are plain numpy (weights as arrays, the CollectResult's segments), never torch tensors: torch's
pickler would move tensors through shared-memory file descriptors, one per tensor per chunk.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback

import numpy as np
import torch

from ezm_training import envs
from ezm_training.collector import Collector, CollectResult, Episode, SearchStatMeans
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel
from ezm_training.replay import Segment

# Seconds to wait for the child to start (imports, env workers, the first reset) before calling it failed.
_START_TIMEOUT_S = 300.0


class CollectorProcess:
    """A `Collector` in a child process; `collect` (blocking) or `submit` then `result` (overlapped).

    Mirrors the parts of `Collector` the trainer reads: `transitions`, `timers`, `long_episodes`,
    `pop_stats()`, `state_dict()`, `close()`. `channel(args)` places the `CollectorService` elsewhere (a Ray
    actor: ray_engine.py); by default it runs in a spawned child process. `stream` numbers the collectors of
    one run, so that each acts on seeds of its own.
    """

    def __init__(self, cfg: EZMConfig, env_ids: list[str], *, num_workers: int | None = None,
                 state: dict | None = None, resume_count: int = 0, restore_episodes: bool = True, stream: int = 0,
                 channel=None):
        self.cfg = cfg
        self.long_episodes = False
        self.search_stats = SearchStatMeans()  # transitions and timers come with every reply (`_update`)
        self._pending = False
        self._held: dict | None = None  # a chunk's reply taken from the child before a save, not yet result()'d
        if state is not None and not restore_episodes and "seen_transitions" in state:
            # A rebuilt replay drops the chunk that was in flight: the counts go back to those the trainer had seen.
            state = {**state, "transitions": state["seen_transitions"]}
        args = (cfg.to_json(), list(env_ids), num_workers, state, resume_count, restore_episodes, stream)
        self._channel = channel(args) if channel is not None else _PipeChannel(args)
        self._send("hello", None)
        self._update(self._receive())
        if state is not None and "seen_long_episodes" in state:
            self.long_episodes = bool(state["seen_long_episodes"])  # what the next chunk is sent with
        if state is not None and restore_episodes and "held_chunk" in state:
            # Continue exactly where the saving trainer was: the chunk it had in flight is back in flight, and
            # the counts it had seen are those it had not yet been told the chunk's.
            self.transitions = np.asarray(state["seen_transitions"], dtype=np.int64).copy()
            self.search_stats.pop_sums()
            self.search_stats.add(*state["seen_stat_sums"])
            if state["held_chunk"] is not None:
                self._held, self._pending = _reply_from_state(state["held_chunk"]), True

    @property
    def pending(self) -> bool:
        """A chunk is being collected."""
        return self._pending

    @property
    def held(self) -> bool:
        """The chunk in flight is already here (taken from the collector for a checkpoint)."""
        return self._held is not None

    def submit(self, model: torch.nn.Module, num_steps: int) -> None:
        """Start collecting `num_steps` vector steps with a copy of `model`'s weights as they are now."""
        self.submit_weights(model_weights(model), num_steps)

    def submit_weights(self, weights, num_steps: int) -> None:
        """`submit` with the weights already as `model_weights` gives them (or as the channel shares them)."""
        if self._pending:
            raise RuntimeError("a chunk is already in flight; take its result() first")
        self._send("collect", (weights, int(num_steps), self.long_episodes))
        self._pending = True

    def result(self) -> CollectResult:
        """The chunk in flight (waits for it)."""
        if not self._pending:
            raise RuntimeError("no chunk in flight; submit() one first")
        self._pending = False
        reply, self._held = (self._held, None) if self._held is not None else (self._receive(), None)
        self._update(reply)
        return reply["result"]

    def collect(self, model: torch.nn.Module, num_steps: int) -> CollectResult:
        """Blocking, as `Collector.collect`."""
        self.submit(model, num_steps)
        return self.result()

    def pop_stats(self) -> dict[str, float]:
        return self.search_stats.pop()

    def state_dict(self) -> dict:
        """The child's `Collector.state_dict()` (its episodes in flight included), plus what this side holds:
        the chunk in flight (waited for and kept, still to be taken with `result()`, so that saving changes
        nothing in the run) and the counts and diagnostics of the chunks taken so far."""
        if self._pending and self._held is None:
            self._held = self._receive()
        self._send("state", None)
        state = self._receive()["state"]
        state["held_chunk"] = _reply_to_state(self._held) if self._pending else None
        state["seen_transitions"] = np.asarray(self.transitions).copy()
        state["seen_long_episodes"] = self.long_episodes
        state["seen_stat_sums"] = [dict(self.search_stats.sums), self.search_stats.count]
        return state

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __del__(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self.close()

    def _update(self, reply: dict) -> None:
        self.transitions = reply["transitions"]
        self.timers = reply["timers"]
        self.search_stats.add(*reply["stat_sums"])

    def _send(self, command: str, payload) -> None:
        self._channel.send(command, payload)

    def _receive(self) -> dict:
        return self._channel.receive()


def model_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """A model's weights as numpy arrays: what a collector's `collect` command carries."""
    return {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}


def load_model_weights(model: torch.nn.Module, weights: dict[str, np.ndarray]) -> None:
    """The inverse of `model_weights`."""
    model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})


def actor_device(cfg: EZMConfig) -> torch.device:
    """Where a collector or reanalysis copy runs: the CPU, whatever the learner's device, unless the Ray engine
    gave its actors a GPU fraction."""
    gpu = cfg.engine == "ray" and cfg.ray_actor_gpus > 0 and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def one_collector_state(state: dict) -> dict:
    """A Ray run's collector state (one per actor, `actors`) as one collector's: the first actor's, with the
    step counts of all of them, those of actors that died included. Its episodes in flight do not fit other
    envs, so the caller starts fresh ones."""
    actors = state.get("actors", [state])
    total = np.sum([actor.get("seen_transitions", actor["transitions"]) for actor in actors], axis=0)
    total = total + np.asarray(state.get("lost", 0), dtype=np.int64)
    return {**actors[0], "transitions": total, "seen_transitions": total}


class CollectorDied(RuntimeError):
    """The process or actor running a collector is gone (killed, crashed, its node lost)."""


class _PipeChannel:
    """Commands to a `CollectorService` in a spawned child process, over a pipe."""

    def __init__(self, args: tuple):
        context = multiprocessing.get_context("spawn")  # never fork a process that holds torch's threads
        self._connection, child = context.Pipe()
        # Not a daemon: daemonic processes may not start the env workers. The child dies with this process
        # (ezm_ros.process_lifetime.die_with_parent) and `close` ends it.
        self._process = context.Process(target=_serve, args=(child, *args), name="ezm-collector")
        self._process.start()
        child.close()
        self._started = False

    def send(self, command: str, payload) -> None:
        try:
            self._connection.send((command, payload))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died() from None

    def receive(self) -> dict:
        if not self._started:
            if not self._connection.poll(_START_TIMEOUT_S):
                self.close()
                raise RuntimeError(f"the collector process did not start within {_START_TIMEOUT_S:.0f} s")
            self._started = True
        try:
            status, payload = self._connection.recv()
        except (EOFError, ConnectionResetError):
            raise self._died() from None
        if status == "error":
            raise RuntimeError(f"the collector process failed:\n{payload}")
        return payload

    def close(self) -> None:
        if self._process is None:
            return
        try:
            self._connection.send(("close", None))
        except (BrokenPipeError, OSError):
            pass  # the child is gone already
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._connection.close()
        self._process = None

    def _died(self) -> CollectorDied:
        code = None
        if self._process is not None:
            self._process.join(timeout=5)
            code = self._process.exitcode
        return CollectorDied(f"the collector process died (exit code {code})")


def _reply_to_state(reply: dict) -> dict:
    """A chunk's reply as arrays and plain values (a checkpoint's state.pt unpickles nothing else)."""
    result = reply["result"]
    return {"transitions": np.asarray(reply["transitions"]).copy(), "timers": dict(reply["timers"]),
            "stat_sums": [dict(reply["stat_sums"][0]), int(reply["stat_sums"][1])], "env_steps": result.env_steps,
            "segments": [{"task": seg.task, "obs": seg.obs, "actions": seg.actions, "rewards": seg.rewards,
                          "owned": seg.owned, "terminated": seg.terminated} for seg in result.segments],
            "episodes": [[ep.task, ep.ret, ep.length, ep.terminated] for ep in result.episodes]}


def _reply_from_state(state: dict) -> dict:
    result = CollectResult(segments=[Segment(**segment) for segment in state["segments"]],
                           episodes=[Episode(int(task), float(ret), int(length), bool(terminated))
                                     for task, ret, length, terminated in state["episodes"]],
                           env_steps=int(state["env_steps"]))
    return {"transitions": np.asarray(state["transitions"], dtype=np.int64), "timers": dict(state["timers"]),
            "stat_sums": tuple(state["stat_sums"]), "result": result}


class CollectorService:
    """The collector's side: its envs, a `Collector` and an actor-model copy; answers the commands of a
    `CollectorProcess` (hello, collect, state). Runs in a child process (`_serve`) or as a Ray actor."""

    def __init__(self, cfg_json: str, env_ids: list[str], num_workers: int | None, state: dict | None,
                 resume_count: int, restore_episodes: bool, stream: int = 0):
        cfg = EZMConfig.from_json(cfg_json)
        torch.set_num_threads(max(1, cfg.num_threads))
        dims, action_dim = envs.task_dims(cfg.task_ids)
        device = actor_device(cfg)
        self.model = WorldModel(cfg, dims, action_dim).to(device).eval().requires_grad_(False)
        venv = envs.make_vector_env(env_ids, action_repeat=cfg.action_repeat, num_workers=num_workers)
        self.collector = Collector(cfg, venv, device=device, resume_count=resume_count, stream=stream)
        try:
            if state is not None:
                self.collector.load_state_dict(state, episodes=restore_episodes)
        except BaseException:
            self.collector.close()
            raise

    def handle(self, command: str, payload) -> dict:
        collector = self.collector
        extra = {}
        if command == "collect":
            weights, num_steps, collector.long_episodes = payload
            load_model_weights(self.model, self._resolve(weights))
            extra["result"] = collector.collect(self.model, num_steps)
        elif command == "state":
            extra["state"] = collector.state_dict()
        elif command != "hello":
            raise ValueError(f"unknown command {command!r}")
        return {"transitions": collector.transitions.copy(), "timers": dict(collector.timers),
                "stat_sums": collector.search_stats.pop_sums(), **extra}

    def close(self) -> None:
        self.collector.close()

    def _resolve(self, weights):
        """The weights a collect command carries (a Ray actor fetches them from the object store here)."""
        return weights


def _serve(connection, cfg_json: str, env_ids: list[str], num_workers: int | None, state: dict | None,
           resume_count: int, restore_episodes: bool, stream: int) -> None:
    """The child: build the service, then answer commands until told to close."""
    from ezm_ros.process_lifetime import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's: it checkpoints, then closes us
    service = None
    try:
        service = CollectorService(cfg_json, env_ids, num_workers, state, resume_count, restore_episodes, stream)
        while True:
            command, payload = connection.recv()
            if command == "close":
                break
            connection.send(("ok", service.handle(command, payload)))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:  # the trainer raises it with this traceback instead of waiting on a dead pipe
        try:
            connection.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if service is not None:
            service.close()
        connection.close()
