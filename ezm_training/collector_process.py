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

import torch

from ezm_training import envs
from ezm_training.collector import Collector, CollectResult, SearchStatMeans
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel

# Seconds to wait for the child to start (imports, env workers, the first reset) before calling it failed.
_START_TIMEOUT_S = 300.0


class CollectorProcess:
    """A `Collector` in a child process; `collect` (blocking) or `submit` then `result` (overlapped).

    Mirrors the parts of `Collector` the trainer reads: `transitions`, `timers`, `long_episodes`,
    `pop_stats()`, `state_dict()`, `close()`.
    """

    def __init__(self, cfg: EZMConfig, env_ids: list[str], *, num_workers: int | None = None,
                 state: dict | None = None):
        self.cfg = cfg
        self.long_episodes = False
        self.search_stats = SearchStatMeans()  # transitions and timers come with every reply (`_update`)
        self._pending = False
        context = multiprocessing.get_context("spawn")  # never fork a process that holds torch's threads
        self._connection, child = context.Pipe()
        # Not a daemon: daemonic processes may not start the env workers. The child dies with this process
        # (ezm_ros.process_lifetime.die_with_parent) and `close` ends it.
        self._process = context.Process(target=_serve, args=(child, cfg.to_json(), list(env_ids), num_workers, state),
                                        name="ezm-collector")
        self._process.start()
        child.close()
        if not self._connection.poll(_START_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the collector process did not start within {_START_TIMEOUT_S:.0f} s")
        self._update(self._receive())

    @property
    def pending(self) -> bool:
        """A chunk is being collected."""
        return self._pending

    def submit(self, model: torch.nn.Module, num_steps: int) -> None:
        """Start collecting `num_steps` vector steps with a copy of `model`'s weights as they are now."""
        if self._pending:
            raise RuntimeError("a chunk is already in flight; take its result() first")
        weights = {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}
        self._send("collect", (weights, int(num_steps), self.long_episodes))
        self._pending = True

    def result(self) -> CollectResult:
        """The chunk in flight (waits for it)."""
        if not self._pending:
            raise RuntimeError("no chunk in flight; submit() one first")
        self._pending = False
        reply = self._receive()
        self._update(reply)
        return reply["result"]

    def collect(self, model: torch.nn.Module, num_steps: int) -> CollectResult:
        """Blocking, as `Collector.collect`."""
        self.submit(model, num_steps)
        return self.result()

    def pop_stats(self) -> dict[str, float]:
        return self.search_stats.pop()

    def state_dict(self) -> dict:
        """The child's `Collector.state_dict()`; a chunk in flight must be taken first (its steps count)."""
        if self._pending:
            raise RuntimeError("take the chunk in flight (result()) before saving the collector's state")
        self._send("state", None)
        return self._receive()["state"]

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

    def __del__(self) -> None:
        if getattr(self, "_process", None) is not None:
            self.close()

    def _update(self, reply: dict) -> None:
        self.transitions = reply["transitions"]
        self.timers = reply["timers"]
        self.search_stats.add(*reply["stat_sums"])

    def _died(self) -> RuntimeError:
        if self._process is not None:
            self._process.join(timeout=5)
        code = self._process.exitcode if self._process is not None else None
        return RuntimeError(f"the collector process died (exit code {code})")

    def _send(self, command: str, payload) -> None:
        try:
            self._connection.send((command, payload))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died() from None

    def _receive(self) -> dict:
        try:
            status, payload = self._connection.recv()
        except (EOFError, ConnectionResetError):
            raise self._died() from None
        if status == "error":
            raise RuntimeError(f"the collector process failed:\n{payload}")
        return payload


def _serve(connection, cfg_json: str, env_ids: list[str], num_workers: int | None, state: dict | None) -> None:
    """The child: build the env and the collector, then serve collect / state / close until told to stop."""
    from ezm_ros.process_lifetime import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's: it checkpoints, then closes us
    collector = None
    try:
        cfg = EZMConfig.from_json(cfg_json)
        torch.set_num_threads(max(1, cfg.num_threads))
        dims, action_dim = envs.task_dims(cfg.task_ids)
        model = WorldModel(cfg, dims, action_dim).eval().requires_grad_(False)
        venv = envs.make_vector_env(env_ids, action_repeat=cfg.action_repeat, num_workers=num_workers)
        collector = Collector(cfg, venv)  # acting runs on the CPU here, whatever the learner's device
        if state is not None:
            collector.load_state_dict(state)

        def reply(**extra):
            connection.send(("ok", {"transitions": collector.transitions.copy(), "timers": dict(collector.timers),
                                    "stat_sums": collector.search_stats.pop_sums(), **extra}))

        reply()
        while True:
            command, payload = connection.recv()
            if command == "close":
                break
            if command == "collect":
                weights, num_steps, collector.long_episodes = payload
                model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
                reply(result=collector.collect(model, num_steps))
            elif command == "state":
                reply(state=collector.state_dict())
            else:
                raise ValueError(f"unknown command {command!r}")
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:  # the trainer raises it with this traceback instead of waiting on a dead pipe
        try:
            connection.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if collector is not None:
            collector.close()
        connection.close()
