"""Collector: vectorised env workers + one batched search per env step -> replay `Segment`s.

Env i of the vector env runs task i mod T ([EZM] data_worker: env index mod num_tasks). Each env step
makes ONE `search_batch` call over all N envs with the actor model, so the search is batched across
workers; the physics runs in the env's worker processes (sim_bridge.MultiTaskVectorEnv).

Episodes ([EZM] ez/worker/data_worker.py):
- a task collects with uniform random actions until it has `start_transitions_per_task` steps;
- training episodes end at the collector's own limit (`train_episode_steps`, then `long_episode_steps` once
  training passes `long_episodes_after` of training_steps or the task is "saturated"), at the env's
  1000-step TimeLimit, or at a termination. The own limit and the TimeLimit are truncations (values
  bootstrap from the final observation); a termination stores `terminated` when respect_terminations.
- every block of an episode is emitted, the last included (`_EpisodeBlocks`).

The interface to the rest is narrow: `collect(model, num_steps) -> CollectResult` (segments and finished
episodes), so the same class can run inside a Ray actor later, writing into a remote replay.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from ezm_training.config import EZMConfig
from ezm_training import diagnostics
from ezm_training.model_search import search_from_root, search_keys
from ezm_training.networks import WorldModel
from ezm_training.replay import Segment


# Seed distance between the collectors of one run: far beyond the 1,000 a resume adds.
_STREAM_SEED_STRIDE = 1_000_003


@dataclass
class Episode:
    task: int
    ret: float
    length: int
    terminated: bool


@dataclass
class CollectResult:
    segments: list[Segment] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    env_steps: int = 0


class _EpisodeBlocks:
    """The current episode of one env, cut into segments of `block` owned steps plus `pad` look-ahead."""

    def __init__(self, task: int, block: int, pad: int):
        self.task, self.block, self.pad = task, block, pad
        self.obs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []

    def start(self, obs: np.ndarray) -> None:
        self.obs, self.actions, self.rewards = [obs], [], []

    def append(self, action: np.ndarray, reward: float, next_obs: np.ndarray) -> Segment | None:
        """Add a transition; returns a full segment once a block has its whole look-ahead."""
        self.actions.append(action)
        self.rewards.append(reward)
        self.obs.append(next_obs)
        if len(self.actions) < self.block + self.pad:
            return None
        segment = self._segment(self.block, len(self.actions), terminated=False)
        self._drop(self.block)
        return segment

    def finish(self, terminated: bool) -> list[Segment]:
        """The episode ended: every remaining block, each with whatever look-ahead is left (pitfall 2)."""
        segments = []
        while self.actions:
            owned = min(self.block, len(self.actions))
            segments.append(self._segment(owned, len(self.actions), terminated))
            self._drop(owned)
        return segments

    def _segment(self, owned: int, count: int, terminated: bool) -> Segment:
        return Segment(task=self.task, obs=np.stack(self.obs[: count + 1]).astype(np.float32),
                       actions=np.stack(self.actions[:count]).astype(np.float32),
                       rewards=np.asarray(self.rewards[:count], dtype=np.float32), owned=owned,
                       terminated=terminated)

    def _drop(self, count: int) -> None:
        self.obs, self.actions, self.rewards = self.obs[count:], self.actions[count:], self.rewards[count:]

    def state_dict(self) -> dict[str, np.ndarray | list]:
        """The unfinished blocks as arrays: obs (k+1, D), actions (k, A), rewards (k,); with k = 0 the last two
        are empty lists (an empty numpy array pickles through a global that checkpoint loading refuses)."""
        if not self.actions:
            return {"obs": np.stack(self.obs), "actions": [], "rewards": []}
        return {"obs": np.stack(self.obs), "actions": np.stack(self.actions),
                "rewards": np.asarray(self.rewards, dtype=np.float64)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        obs, actions, rewards = (np.asarray(state[key]) for key in ("obs", "actions", "rewards"))
        if len(obs) != len(actions) + 1 or len(rewards) != len(actions):
            raise ValueError(f"unfinished blocks with {len(obs)} observations, {len(actions)} actions and "
                             f"{len(rewards)} rewards: they must be n + 1, n and n")
        self.obs, self.actions, self.rewards = list(obs), list(actions), [float(r) for r in rewards]


class SearchStatMeans:
    """Sums of the acting searches' diagnostics (diagnostics.search_stats); `pop` gives their means since the
    last pop. A collector in another process sends its sums (`pop_sums`) with each chunk, and the trainer's
    side adds them up the same way."""

    NAMES = ("act/chosen_widened", "act/saturated", "act/policy_std")

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, sums: dict[str, float], count: int = 1) -> None:
        for name, value in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += count

    def pop_sums(self) -> tuple[dict[str, float], int]:
        sums, count = self.sums, self.count
        self.sums, self.count = {}, 0
        return sums, count

    def pop(self) -> dict[str, float]:
        """Means since the last pop (NaN before the first search)."""
        sums, count = self.pop_sums()
        return {name: sums.get(name, 0.0) / count if count else float("nan") for name in self.NAMES}


class Collector:
    """Steps a MultiTaskVectorEnv-like `venv` (reset, step, reset_envs; same-step autoreset with
    infos[i]["final_obs"]) whose env i runs config task i mod T."""

    def __init__(self, cfg: EZMConfig, venv, device: torch.device | str = "cpu", resume_count: int = 0,
                 stream: int = 0):
        self.cfg = cfg
        self.venv = venv
        self.device = torch.device(device)
        self.num_envs = venv.num_envs
        self.env_task = np.arange(self.num_envs) % cfg.num_tasks
        # stream: the collector's number among a run's collectors (the Ray engine runs several); 0 alone.
        self.rng = np.random.default_rng([cfg.seed + 7_919, stream] if stream else cfg.seed + 7_919)  # warm-up
        self.calls = 0  # search calls made; folds into the search keys
        self.transitions = np.zeros(cfg.num_tasks, dtype=np.int64)  # env steps taken per task
        self.long_episodes = False  # set by the trainer once training passes long_episodes_after
        self.recent_returns = [deque(maxlen=cfg.saturation_window) for _ in range(cfg.num_tasks)]
        self.timers = {"env": 0.0, "search": 0.0, "bookkeeping": 0.0}
        self.search_stats = SearchStatMeans()
        self._blocks = [_EpisodeBlocks(int(t), cfg.block_steps, cfg.unroll_steps + cfg.td_steps)
                        for t in self.env_task]
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        # Seeds the env resets and the search keys. A resumed run whose episodes in flight cannot be restored
        # (an old checkpoint, an env without snapshots) starts fresh ones with new seeds, never replaying the
        # first run's; restored episodes bring their own seed back (load_state_dict).
        self.seed = cfg.seed + 1_000 * resume_count + _STREAM_SEED_STRIDE * stream
        obs = venv.reset(seed=self.seed)
        self._obs = obs
        for blocks, row in zip(self._blocks, obs):
            blocks.start(row)

    def episode_limit(self, task: int) -> int:
        """The collector's own episode length for a task now ([EZM] data_worker curriculum)."""
        if self.long_episodes or self._saturated(task):
            return self.cfg.long_episode_steps
        return self.cfg.train_episode_steps

    def _saturated(self, task: int) -> bool:
        """Last returns spread < saturation_spread of their max and min > saturation_min_return ([EZM])."""
        returns = self.recent_returns[task]
        if len(returns) < self.cfg.saturation_window:
            return False
        low, high = min(returns), max(returns)
        return low > self.cfg.saturation_min_return and (high - low) < self.cfg.saturation_spread * high

    @torch.no_grad()
    def collect(self, model: WorldModel, num_steps: int) -> CollectResult:
        """Step every env `num_steps` times. Tasks still in their warm-up act uniformly at random."""
        cfg, result = self.cfg, CollectResult()
        for _ in range(num_steps):
            start = time.perf_counter()
            warm = self.transitions[self.env_task] < cfg.start_transitions_per_task
            actions = self.rng.uniform(-1.0, 1.0, size=(self.num_envs, self.venv.single_action_space.shape[0]))
            if not warm.all():
                obs = torch.as_tensor(self._obs, dtype=torch.float32, device=self.device)
                task = torch.as_tensor(self.env_task, device=self.device)
                keys = search_keys(self.seed, self.num_envs, self.calls, device=self.device)
                initial = model.initial_inference(obs, task)
                out = search_from_root(model, initial, task, keys, cfg, widen=True)
                searched = out.action.float().cpu().numpy()
                self.search_stats.add(diagnostics.search_stats(out, initial.policy_std, prefix="act", widened=True,
                                                               num_policy_actions=cfg.num_policy_actions))
                actions = np.where(warm[:, None], actions, searched)
            self.calls += 1
            actions = actions.astype(np.float32)
            searched_at = time.perf_counter()
            next_obs, rewards, terminated, truncated, infos = self.venv.step(actions)
            stepped_at = time.perf_counter()
            self._record(actions, next_obs, rewards, terminated, truncated, infos, result)
            result.env_steps += self.num_envs
            self.timers["search"] += searched_at - start
            self.timers["env"] += stepped_at - searched_at
            self.timers["bookkeeping"] += time.perf_counter() - stepped_at
        return result

    def pop_stats(self) -> dict[str, float]:
        """Means of the acting searches' diagnostics since the last call (NaN before the first search)."""
        return self.search_stats.pop()

    def close(self) -> None:
        """Close the env workers."""
        self.venv.close()

    def _record(self, actions, next_obs, rewards, terminated, truncated, infos, result: CollectResult) -> None:
        to_reset = np.zeros(self.num_envs, dtype=bool)
        for i in range(self.num_envs):
            task = int(self.env_task[i])
            ended = bool(terminated[i] or truncated[i])
            final = infos[i]["final_obs"] if ended else next_obs[i]
            segment = self._blocks[i].append(actions[i], float(rewards[i]), final)
            if segment is not None:
                result.segments.append(segment)
            self.transitions[task] += 1
            self._returns[i] += rewards[i]
            self._lengths[i] += 1
            at_limit = not ended and self._lengths[i] >= self.episode_limit(task)
            if ended or at_limit:
                is_terminal = bool(terminated[i]) and self.cfg.respect_terminations
                result.segments.extend(self._blocks[i].finish(is_terminal))
                result.episodes.append(Episode(task, float(self._returns[i]), int(self._lengths[i]),
                                               bool(terminated[i])))
                self.recent_returns[task].append(float(self._returns[i]))
                self._returns[i], self._lengths[i] = 0.0, 0
                if at_limit:
                    to_reset[i] = True
                else:
                    self._blocks[i].start(next_obs[i])  # already the next episode's first obs (autoreset)
        self._obs = next_obs.copy()
        if to_reset.any():
            first = self.venv.reset_envs(to_reset)
            for row, i in zip(first, np.flatnonzero(to_reset)):
                self._obs[i] = row
                self._blocks[i].start(row)

    def state_dict(self) -> dict:
        """Counters, the warm-up RNG, the acting diagnostics not yet logged, and the episodes in flight (each
        env's physics and RNG, its unfinished blocks, return and length: `in_flight`), so that a resumed
        collector continues bit for bit. `in_flight` is left out where the vector env cannot snapshot its
        envs (`MultiTaskVectorEnv.snapshot`); a resume then starts fresh episodes."""
        state = {"calls": self.calls, "transitions": self.transitions.copy(), "rng": self.rng.bit_generator.state,
                 "long_episodes": self.long_episodes, "recent_returns": [list(r) for r in self.recent_returns],
                 "seed": self.seed, "search_stat_sums": [dict(self.search_stats.sums), self.search_stats.count]}
        snapshots = self.venv.snapshot() if hasattr(self.venv, "snapshot") else [None]
        if all(snapshot is not None for snapshot in snapshots):
            state["in_flight"] = {"envs": snapshots, "obs": self._obs.copy(), "returns": self._returns.copy(),
                                  "lengths": self._lengths.copy(), "blocks": [b.state_dict() for b in self._blocks]}
        return state

    def load_state_dict(self, state: dict, episodes: bool = True) -> bool:
        """Counters and RNGs; with `episodes`, also the episodes in flight when the state has them. Returns
        whether they were restored (else the episodes started at construction go on). ValueError if they do
        not fit this collector's envs (checked before anything is changed, but for the envs' own check)."""
        flight = state.get("in_flight") if episodes else None
        if flight is not None:
            obs = np.asarray(flight["obs"])
            if obs.shape != self._obs.shape or len(flight["blocks"]) != self.num_envs:
                raise ValueError(f"the episodes in flight were collected on {len(flight['blocks'])} envs with "
                                 f"observations {obs.shape}; this collector has {self._obs.shape}")
            blocks = [_EpisodeBlocks(b.task, b.block, b.pad) for b in self._blocks]
            for block, block_state in zip(blocks, flight["blocks"]):
                block.load_state_dict(block_state)
        self.calls = int(state["calls"])
        self.transitions = np.asarray(state["transitions"], dtype=np.int64).copy()
        self.rng.bit_generator.state = state["rng"]
        self.long_episodes = bool(state["long_episodes"])
        for queue, values in zip(self.recent_returns, state["recent_returns"]):
            queue.clear()
            queue.extend(values)
        if "search_stat_sums" in state:
            self.search_stats.pop_sums()
            self.search_stats.add(*state["search_stat_sums"])
        if flight is None:
            return False
        self.venv.restore(flight["envs"])
        self._blocks = blocks
        self._obs = obs.copy()
        self._returns = np.asarray(flight["returns"], dtype=np.float64).copy()
        self._lengths = np.asarray(flight["lengths"], dtype=np.int64).copy()
        self.seed = int(state["seed"])
        return True
