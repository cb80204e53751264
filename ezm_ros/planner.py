"""The anytime latent planner: one sampled Gumbel search per control step over a model bundle, on time.

    planner = Planner(load_bundle("models/ezm-h1"))          # warms up, learns how long each phase takes
    result = planner.plan(obs, task_index)                    # never raises
    result.action              # [A] float32 in [-1, 1]: map with the bundle's ctrl ranges (RobotSpec)
    result.simulations, result.root_value, result.latency_ms, result.deadline_cut, result.fallback

It runs the training search itself (`ezm_training.search.gumbel_search`, numpy, no torch) on the bundle's
onnxruntime sessions, with the search settings the model was trained with (the manifest's), candidates
drawn as at evaluation (`widen_at_eval`), and the search keys of the learner (`fold_in(root_keys(seed, 1),
step)`, as `ezm_training.model_search.search_keys`), so for the same seed and step it picks the
learner's action.

Deadline. A control step has `deadline_ms` (default 12 of the 20 ms period; the rest is for reading state
and publishing). The search runs the phase steps of sequential halving (16, 8, 4, 4 simulations for the
defaults, one batched model call each; docs/search.md says how that differs from strictly sequential
order). Between steps it asks `should_stop`: the planner stops BEFORE a step whose estimated cost would
overrun the deadline, so the result is always on time unless a single model call blows far past its
history. Each step's cost (model call plus bookkeeping) is estimated as TCP estimates round-trip times
(RFC 6298: smoothed mean + 4 × mean deviation), learned in a warm-up at construction and updated on every
step it runs.

Fallbacks (flagged in `result.fallback`, explained in `result.detail`; the search result is not used):
- "policy_mean": there is no time for even the first phase step after the initial inference. Action =
  tanh(policy mean) of the network's prior at this observation, clipped like every search action.
- "hold": the observation is unusable (NaN/inf, wrong size, unknown task), the model returned non-finite
  numbers, there is no time even for the initial inference, or anything raised. Action = the previous
  step's action, so the position servos keep their targets (hold position); before the first good step,
  the bundle's `hold_action` (the robot's keyframe pose).

Hot path: the observation goes into a preallocated, zero-padded float32 buffer; the graphs write into
preallocated output buffers (ezm_ros.bundle); the search allocates its fixed-size tree once per step.
numpy and onnxruntime only: nothing here imports torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ezm_ros.manifest import Manifest
from ezm_training.search import RecurrentFn, RecurrentOutput, RootOutput, fold_in, gumbel_search, phase_schedule, root_keys

HOLD = "hold"
POLICY_MEAN = "policy_mean"
DEFAULT_DEADLINE_MS = 12.0  # of the 20 ms step: the rest reads the state and publishes the command
_FORCED_STOP_WARMUPS = 3  # warm-up searches stopped after their first step, to time the read-out alone


class PlannerModel(Protocol):
    """What the planner needs from a model: `ezm_ros.bundle.Bundle` is one (tests pass slow fakes)."""

    manifest: Manifest

    def initial_into_buffers(self, obs: np.ndarray, task: np.ndarray) -> RootOutput: ...

    def recurrent_fn(self, task: int) -> RecurrentFn: ...


@dataclass(frozen=True)
class PlannerSettings:
    deadline_ms: float = DEFAULT_DEADLINE_MS  # from `start_time` (the step's start) to the returned action
    num_simulations: int | None = None  # None: the bundle's training setting (32 for EZ-M)
    seed: int = 0  # search keys: fold_in(root_keys(seed, 1), step), as the learner's search_keys
    widen: bool | None = None  # None: the bundle's widen_at_eval (False: all K candidates from π)
    warmup_searches: int = 10  # full searches at construction to learn phase-step costs


@dataclass(frozen=True)
class PlanResult:
    """One control step's command and statistics (the fields of ezm_msgs/PlannerStatus)."""

    action: np.ndarray  # [A] float32 normalised action in [-1, 1], read-only (hold repeats it)
    simulations: int  # simulations done (0 when a fallback acted)
    root_value: float  # the search's root value; the network value for policy_mean; NaN for hold
    latency_ms: float  # from the step's start to this result
    model_ms: float  # of which inside the model's graphs (onnxruntime)
    deadline_cut: bool  # the deadline stopped the search early, or forced the fallback
    deadline_missed: bool  # latency_ms exceeded the deadline (a model call ran far over its history)
    fallback: str  # "" (search result), POLICY_MEAN or HOLD
    detail: str  # why the fallback acted, or ""
    step: int  # the planner's step counter (the search key's counter)


class _Duration:
    """Running estimate of how long a piece of work takes (seconds): RFC 6298's smoothed mean and mean
    deviation (gains 1/8, 1/4); `bound` = mean + 4 · deviation is what the planner budgets for it (0 before
    the first sample; warm_up provides them).

    Two additions for a shared machine, where another process can stall us for tens of ms: a sample counts
    as at most STALL_CLAMP × the current bound, so one stall cannot push the estimate past the deadline for
    good; and work skipped for lack of time decays (`skipped`), so an estimate a burst of load inflated comes
    back down although the work is not being timed. The price of the decay is a rare probe: work that really
    does not fit is tried again once its estimate has decayed below the time left (about every 300 skips
    for an estimate 1.8 times too long), and that step can run late.
    """

    STALL_CLAMP = 2.0
    SKIP_MEAN_DECAY = 0.998
    SKIP_DEVIATION_DECAY = 0.9

    __slots__ = ("mean", "deviation", "samples")

    def __init__(self):
        self.mean, self.deviation, self.samples = 0.0, 0.0, 0

    def update(self, seconds: float) -> None:
        if self.samples == 0:
            self.mean, self.deviation = seconds, seconds / 2.0
        else:
            seconds = min(seconds, self.STALL_CLAMP * self.bound())
            self.deviation += 0.25 * (abs(seconds - self.mean) - self.deviation)
            self.mean += 0.125 * (seconds - self.mean)
        self.samples += 1

    def skipped(self) -> None:
        self.mean *= self.SKIP_MEAN_DECAY
        self.deviation *= self.SKIP_DEVIATION_DECAY

    def bound(self) -> float:
        return self.mean + 4.0 * self.deviation


class Planner:
    """Anytime search over a model, one observation per control step (module docstring)."""

    def __init__(self, model: PlannerModel, settings: PlannerSettings = PlannerSettings()):
        manifest = model.manifest
        self.model, self.manifest, self.settings = model, manifest, settings
        self._search_kwargs = manifest.search_kwargs()
        if settings.num_simulations is not None:
            self._search_kwargs["num_simulations"] = settings.num_simulations
        self._widen = bool(manifest.search["widen_at_eval"]) if settings.widen is None else settings.widen
        schedule = phase_schedule(self._search_kwargs["num_simulations"], self._search_kwargs["num_top_actions"])
        # simulations done before each phase step -> that step's index, for should_stop(simulations_done)
        done, self._step_at = 0, {}
        for index, step in enumerate(schedule):
            self._step_at[done] = index
            done += step.num_visited
        self._costs = [_Duration() for _ in schedule]  # each phase step, as timed between should_stop calls
        self._readout = _Duration()  # from the last should_stop to the search's return
        self._initial = _Duration()
        self._deadline_s = settings.deadline_ms / 1e3
        self._task_sizes = {spec.index: (spec.obs_size, spec.env_id) for spec in manifest.tasks}
        self._obs = np.zeros((1, manifest.obs_dim), np.float32)
        self._task = np.zeros(1, np.int64)
        self._base_keys = root_keys(settings.seed, 1, like=self._obs)
        self._hold_action = _frozen(manifest.robot.hold_action)
        self._last_action = self._hold_action
        self._bound_task: int | None = None
        self._recurrent: RecurrentFn | None = None
        self._model_s = 0.0
        self._deadline = self._t_last = 0.0
        self._cut = self._stop_after_first = False
        self.steps = 0  # plan() calls so far; the next call's search key counter
        self.warm_up(settings.warmup_searches)

    # --- control loop -----------------------------------------------------------------------------------
    def plan(self, obs: np.ndarray, task: int, *, start_time: float | None = None) -> PlanResult:
        """The action for observation `obs` (the task's own size, or padded to the bundle's obs_dim) of task
        index `task`. start_time: `time.perf_counter()` at the start of the control step (default: now).
        Never raises: any failure gives the hold fallback with the reason in `detail`."""
        start = time.perf_counter() if start_time is None else start_time
        self._deadline = start + self._deadline_s
        step, self.steps = self.steps, self.steps + 1
        self._model_s = 0.0
        try:
            return self._plan(obs, task, start, step)
        except Exception as error:  # the control loop needs an action whatever went wrong; detail says what
            return self._fallback(HOLD, start, step, f"planner error: {type(error).__name__}: {error}")

    def reset(self, step: int = 0) -> None:
        """Start a new episode: the step counter restarts and hold falls back to the keyframe pose."""
        self.steps = step
        self._last_action = self._hold_action

    def warm_up(self, searches: int) -> None:
        """Run searches on a zero observation to warm the sessions and time every phase step and the
        read-out. The first (cold) search is not timed: onnxruntime allocates on its first call per batch
        size. Then a few searches stop after their first step, to time the read-out alone. Does not
        advance the step counter. searches=0: no estimates until steps have run (no deadline protection)."""
        if searches <= 0:
            return
        task = self.manifest.tasks[0].index
        self._bind(task)
        self._obs[:] = 0.0
        self._task[0] = task
        cold = [_Duration() for _ in self._costs], _Duration(), _Duration()
        for index in range(1 + _FORCED_STOP_WARMUPS + searches):
            if index == 1:  # forget the cold search
                self._costs, self._readout, self._initial = cold
            self._deadline = float("inf")
            start = time.perf_counter()
            root = self._run_initial()
            self._initial.update(time.perf_counter() - start)
            self._search(root, self._base_keys, stop_after_first=1 <= index <= _FORCED_STOP_WARMUPS)

    # --- internals --------------------------------------------------------------------------------------
    def _plan(self, obs, task, start: float, step: int) -> PlanResult:
        problem = self._read_observation(obs, task)
        if problem:
            return self._fallback(HOLD, start, step, problem)
        now = time.perf_counter()
        # Without the initial inference there is no action but the previous one, so this budgets its mean,
        # not its bound: only a step that starts (nearly) too late holds. Its estimate stays fresh that way.
        if now + self._initial.mean > self._deadline:
            return self._fallback(HOLD, start, step, "no time left for the initial inference", cut=True)
        root = self._run_initial()
        self._initial.update(time.perf_counter() - now)
        if not (np.isfinite(root.value).all() and np.isfinite(root.policy_mean).all()
                and np.isfinite(root.policy_std).all() and np.isfinite(root.latent).all()):
            return self._fallback(HOLD, start, step, "the model's initial inference is not finite")
        if time.perf_counter() + self._costs[0].bound() + self._readout.bound() > self._deadline:
            self._costs[0].skipped()
            clip = self._search_kwargs["action_clip"]
            action = _frozen(np.clip(np.tanh(root.policy_mean[0]), -clip, clip))
            return self._fallback(POLICY_MEAN, start, step, "no time for one phase step of the search",
                                  cut=True, action=action, root_value=float(root.value[0]))
        self._bind(task)
        out = self._search(root, fold_in(self._base_keys, step))
        action = _frozen(out.action[0])
        self._last_action = action
        latency = time.perf_counter() - start
        return PlanResult(action=action, simulations=out.simulations_done, root_value=float(out.root_value[0]),
                          latency_ms=1e3 * latency, model_ms=1e3 * self._model_s, deadline_cut=self._cut,
                          deadline_missed=latency > self._deadline_s, fallback="", detail="", step=step)

    def _search(self, root: RootOutput, keys: np.ndarray, *, stop_after_first: bool = False):
        self._cut, self._stop_after_first = False, stop_after_first
        self._t_last = time.perf_counter()
        out = gumbel_search(root, self._recurrent, keys, widen=self._widen, should_stop=self._should_stop,
                            **self._search_kwargs)
        elapsed = time.perf_counter() - self._t_last
        if self._cut or out.simulations_done < self._search_kwargs["num_simulations"]:
            self._readout.update(elapsed)
        else:  # the last interval holds the last phase step and the read-out
            self._costs[-1].update(max(elapsed - self._readout.mean, 0.0))
        return out

    def _should_stop(self, simulations_done: int) -> bool:
        """Called by the search between phase steps: time the step that ended, and stop before the next one
        if it (plus the read-out) would not finish by the deadline."""
        now = time.perf_counter()
        index = self._step_at[simulations_done]
        self._costs[index - 1].update(now - self._t_last)
        self._t_last = now
        if self._stop_after_first:
            return True
        if now + self._costs[index].bound() + self._readout.bound() > self._deadline:
            self._costs[index].skipped()
            self._cut = True
            return True
        return False

    def _read_observation(self, obs, task) -> str:
        """Copy obs into the padded float32 buffer; '' if usable, else why not."""
        if task not in self._task_sizes:
            return f"unknown task {task!r}; the bundle knows {sorted(self._task_sizes)}"
        size, env_id = self._task_sizes[task]
        obs = np.asarray(obs)
        if obs.ndim != 1 or obs.shape[0] not in (size, self._obs.shape[1]):
            return f"observation of shape {obs.shape}; {env_id} needs ({size},), or ({self._obs.shape[1]},) padded"
        buffer = self._obs[0]
        with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32's range becomes inf: caught below
            buffer[: obs.shape[0]] = obs
        buffer[obs.shape[0]:] = 0.0
        if not np.isfinite(buffer).all():
            bad = np.flatnonzero(~np.isfinite(buffer))
            return f"observation has NaN/inf (or beyond float32) at entries {bad[:8].tolist()}"
        self._task[0] = task
        return ""

    def _run_initial(self) -> RootOutput:
        start = time.perf_counter()
        root = self.model.initial_into_buffers(self._obs, self._task)
        self._model_s += time.perf_counter() - start
        return root

    def _bind(self, task: int) -> None:
        """Bind the recurrent model to `task`, timing its calls into the step's model time."""
        if task == self._bound_task:
            return
        recurrent = self.model.recurrent_fn(task)

        def timed(latent: np.ndarray, action: np.ndarray) -> RecurrentOutput:
            start = time.perf_counter()
            out = recurrent(latent, action)
            self._model_s += time.perf_counter() - start
            return out

        self._recurrent, self._bound_task = timed, task

    def _fallback(self, kind: str, start: float, step: int, detail: str, *, cut: bool = False,
                  action: np.ndarray | None = None, root_value: float = float("nan")) -> PlanResult:
        if action is None:
            action = self._last_action
        else:
            self._last_action = action
        latency = time.perf_counter() - start
        return PlanResult(action=action, simulations=0, root_value=root_value, latency_ms=1e3 * latency,
                          model_ms=1e3 * self._model_s, deadline_cut=cut, deadline_missed=latency > self._deadline_s,
                          fallback=kind, detail=detail, step=step)


def _frozen(values) -> np.ndarray:
    """A read-only float32 copy: results share their action with the planner's hold memory."""
    array = np.array(values, dtype=np.float32)
    array.setflags(write=False)
    return array
