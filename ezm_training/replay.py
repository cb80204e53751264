"""Replay: one prioritised buffer of fixed-length segments per task, sampled equally across tasks.

Storage unit ([EZ2] ez/data/replay_buffer.py and data_worker.py, `trajectory_size` 100): a `Segment` owns
up to `block_steps` start positions of one episode, and carries `pad = unroll_steps + td_steps` more
transitions of the same episode after them, so that the unroll and n-step targets of its last positions
can be formed without looking at another segment. Every block of an episode is stored, the last one
included (pitfall 2 of the reference: [EZM] drops it for HumanoidBench); a segment that reaches the end
of its episode simply has fewer than `block + pad` transitions, and `terminated` says whether that end was
a termination (value 0 beyond it) or a time limit (bootstrap from the final observation).

Sampling ([EZM] `ind_exp_rp`, [EZ2] replay_buffer.py):
- the batch is split evenly over the task buffers (batch_size // T each);
- inside a task buffer, P(i) ∝ priority_i^α over the start positions of the newest
  `recent_window_per_task` transitions; new data enters with the buffer's max priority (1 when empty);
- importance weights w_i = (N·P(i))^−β, divided by the max of the task's sub-batch and clipped to
  [is_weight_min, 1] (N = eligible positions of that task);
- `update_priorities` writes |V̂ − target| + eps back after an update.

Shapes: S segments per task, W = block_steps + pad transitions per segment, D padded obs, A actions,
B batch, U = unroll_steps, n = td_steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ezm_training.config import EZMConfig


@dataclass
class Segment:
    """Transitions of one episode of one task, as a collector emits them.

    obs [n+1, D] (obs[i] is the observation before actions[i]; obs[n] the one after the last transition),
    actions [n, A], rewards [n]; owned = start positions this segment owns (the first `owned`, ≤ block_steps);
    terminated = obs[n] is a terminal state (the episode ended by termination at the last transition).
    """

    task: int
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    owned: int
    terminated: bool

    @property
    def num_transitions(self) -> int:
        return int(self.rewards.shape[0])


@dataclass
class Batch:
    """A sampled batch of unroll windows starting at positions t.

    obs [B, U+n+1, D]: o_t .. o_{t+U+n} (zeros past the end of the data);
    actions [B, U, A]: a_t .. a_{t+U-1} (zeros past the end);
    rewards [B, U+n]: r_t .. r_{t+U+n-1} (zeros past the end);
    available [B]: transitions present from t on (the episode or the segment ends after that many);
    terminated [B]: o_{t+available} is a terminal state;
    task [B]: config task index; weights [B]: IS weights; recent [B]: within the newest
    mixed_value_threshold_per_task transitions of its task (keeps the n-step value target);
    index [B, 3]: (task, segment, position), for update_priorities.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    available: np.ndarray
    terminated: np.ndarray
    task: np.ndarray
    weights: np.ndarray
    recent: np.ndarray
    index: np.ndarray

    @property
    def size(self) -> int:
        return int(self.task.shape[0])


class TaskReplay:
    """The segment ring buffer and priorities of one task."""

    def __init__(self, cfg: EZMConfig, obs_dim: int, action_dim: int):
        self.cfg = cfg
        self.block = cfg.block_steps
        self.pad = cfg.unroll_steps + cfg.td_steps
        width = self.block + self.pad
        self.capacity = max(1, -(-cfg.transitions_per_task // self.block))  # segments, rounded up
        self.obs = np.zeros((self.capacity, width + 1, obs_dim), dtype=np.float32)
        self.actions = np.zeros((self.capacity, width, action_dim), dtype=np.float32)
        self.rewards = np.zeros((self.capacity, width), dtype=np.float32)
        self.available = np.zeros(self.capacity, dtype=np.int64)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self.first_index = np.zeros(self.capacity, dtype=np.int64)  # task transition count at position 0
        self.priorities = np.zeros((self.capacity, self.block), dtype=np.float64)  # 0 = not sampleable
        self.num_segments = 0  # segments ever added; the ring slot is num_segments % capacity
        self.num_transitions = 0  # owned transitions ever added (the task's stored env steps)

    # --- writing ---
    def add(self, segment: Segment) -> None:
        n, owned = segment.num_transitions, segment.owned
        if not 0 < owned <= min(n, self.block) or n > self.block + self.pad:
            raise ValueError(f"segment with {n} transitions cannot own {owned} (block {self.block}, pad {self.pad})")
        slot = self.num_segments % self.capacity
        self.obs[slot] = 0.0
        self.actions[slot] = 0.0
        self.rewards[slot] = 0.0
        self.obs[slot, : n + 1] = segment.obs
        self.actions[slot, :n] = segment.actions
        self.rewards[slot, :n] = segment.rewards
        self.available[slot] = n
        self.terminated[slot] = segment.terminated
        self.first_index[slot] = self.num_transitions
        live = self.priorities[: min(self.num_segments, self.capacity)]
        max_priority = live.max() if live.size and live.max() > 0 else 1.0  # [EZ2]: new data gets the max
        self.priorities[slot] = 0.0
        self.priorities[slot, :owned] = max_priority
        self.num_segments += 1
        self.num_transitions += owned

    def update_priorities(self, segments: np.ndarray, positions: np.ndarray, priorities: np.ndarray) -> None:
        """Write new priorities, skipping positions whose segment was overwritten since sampling."""
        still_there = self.priorities[segments, positions] > 0
        self.priorities[segments[still_there], positions[still_there]] = priorities[still_there]

    # --- reading ---
    def eligible_priorities(self) -> np.ndarray:
        """[S, block] priorities, zeroed outside the newest recent_window_per_task transitions."""
        window_start = self.num_transitions - self.cfg.recent_window_per_task
        position_index = self.first_index[:, None] + np.arange(self.block)[None, :]
        return np.where(position_index >= window_start, self.priorities, 0.0)

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(segments [count], positions [count], IS weights [count], recent [count]) by priority."""
        prio = self.eligible_priorities().reshape(-1)
        eligible = int((prio > 0).sum())
        if eligible == 0:
            raise RuntimeError("cannot sample from an empty task buffer")
        probs = prio ** self.cfg.priority_alpha
        probs = probs / probs.sum()
        flat = rng.choice(probs.size, size=count, p=probs)
        weights = (eligible * probs[flat]) ** (-self.cfg.priority_beta)
        weights = np.clip(weights / weights.max(), self.cfg.is_weight_min, 1.0)
        segments, positions = np.divmod(flat, self.block)
        age = self.num_transitions - (self.first_index[segments] + positions)  # 1 = newest
        recent = age <= self.cfg.mixed_value_threshold_per_task
        return segments, positions, weights, recent

    # --- persistence ---
    def state_dict(self) -> dict[str, np.ndarray]:
        used = min(self.num_segments, self.capacity)
        arrays = {name: getattr(self, name)[:used] for name in _ARRAYS}
        return {**arrays, "num_segments": np.int64(self.num_segments), "num_transitions": np.int64(self.num_transitions)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        used = state["available"].shape[0]
        if used > self.capacity:
            raise ValueError(f"saved buffer has {used} segments, capacity is {self.capacity}")
        for name in _ARRAYS:
            getattr(self, name)[:used] = state[name]
        self.num_segments = int(state["num_segments"])
        self.num_transitions = int(state["num_transitions"])


_ARRAYS = ("obs", "actions", "rewards", "available", "terminated", "first_index", "priorities")


class MultiTaskReplay:
    """One `TaskReplay` per task ([EZM] ind_exp_rp); batches split evenly across tasks."""

    def __init__(self, cfg: EZMConfig, obs_dim: int, action_dim: int):
        self.cfg = cfg
        self.tasks = [TaskReplay(cfg, obs_dim, action_dim) for _ in range(cfg.num_tasks)]

    def add(self, segment: Segment) -> None:
        self.tasks[segment.task].add(segment)

    def transitions(self) -> list[int]:
        """Stored env steps per task."""
        return [buffer.num_transitions for buffer in self.tasks]

    def ready(self, min_per_task: int) -> bool:
        return all(count >= max(1, min_per_task) for count in self.transitions())

    def sample(self, batch_per_task: int, rng: np.random.Generator) -> Batch:
        """batch_per_task windows from every task buffer, tasks in order."""
        unroll, td = self.cfg.unroll_steps, self.cfg.td_steps
        parts = []
        for task, buffer in enumerate(self.tasks):
            segments, positions, weights, recent = buffer.sample(batch_per_task, rng)
            steps = np.arange(unroll + td + 1)
            obs_rows = positions[:, None] + steps[None, :]  # within the segment's W+1 observations
            parts.append(dict(
                obs=buffer.obs[segments[:, None], obs_rows],
                actions=buffer.actions[segments[:, None], obs_rows[:, :unroll]],
                rewards=buffer.rewards[segments[:, None], obs_rows[:, :-1]],
                available=buffer.available[segments] - positions,
                terminated=buffer.terminated[segments],
                task=np.full(batch_per_task, task, dtype=np.int64),
                weights=weights.astype(np.float32),
                recent=recent,
                index=np.stack([np.full_like(segments, task), segments, positions], axis=1),
            ))
        return Batch(**{key: np.concatenate([part[key] for part in parts]) for key in parts[0]})

    def update_priorities(self, index: np.ndarray, priorities: np.ndarray) -> None:
        for task, buffer in enumerate(self.tasks):
            rows = index[:, 0] == task
            if rows.any():
                buffer.update_priorities(index[rows, 1], index[rows, 2], priorities[rows])

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat {"task{i}/{name}": array} for np.savez."""
        return {f"task{i}/{key}": value for i, buffer in enumerate(self.tasks)
                for key, value in buffer.state_dict().items()}

    def load_state_dict(self, state) -> None:
        for i, buffer in enumerate(self.tasks):
            buffer.load_state_dict({key: state[f"task{i}/{key}"] for key in (*_ARRAYS, "num_segments",
                                                                                 "num_transitions")})
