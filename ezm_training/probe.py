"""`ezm-probe`: does the search pick better actions than the policy? Checked against the true simulator.

At N real states per task (visited by the search's own chosen actions, every `stride` steps), the probe
copies the simulator state, runs the search once, and rolls every one of the K root candidates out in the
true simulator for H steps (the candidate first, then the model's policy mean), plus the policy mean itself
as a first action. Each rollout's discounted true return is compared with the search:

  rank correlation   Spearman's rho between the search's completed Q of the K candidates and their true
                     returns, per state, then averaged. ~0: the model cannot rank candidates; planning
                     cannot help. The number EZ V2 and EZ-M never report.
  chosen rank        the true rank (0 = best of K) of the candidate the search chose; a random pick
                     averages (K − 1)/2
  chosen − mean gap  paired true-return difference between the chosen candidate and the policy mean,
                     per state; > 0 means searching beats acting on the policy alone

Each comes with a 95 % bootstrap interval over states (seeded). The probe runs on a checkpoint (the torch
model and `model_search.search_batch`, as acting) or on an exported bundle (onnxruntime graphs, the
manifest's search settings, the same `gumbel_search` the planner runs, without its deadline).

Simulator state: MuJoCo envs are copied with mj_getState/mj_setState (the full integration state) plus
the env's own Python state (a task's stage, the last observation, the time limit's step count); other
envs (gymnasium's classic control) by a deep copy of their attributes.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


class ProbeSearch(NamedTuple):
    """One search at one state, as numpy: candidates [K, A], completed Q [K], the chosen index, and the
    policy mean action tanh(mean) [A] at that state."""

    candidates: np.ndarray
    q_values: np.ndarray
    chosen: int
    mean_action: np.ndarray


# search(obs [D] padded float32, task index, step) -> ProbeSearch; mean_action(obs, task) -> [A]
SearchFn = Callable[[np.ndarray, int, int], ProbeSearch]
MeanActionFn = Callable[[np.ndarray, int], np.ndarray]


# --- simulator state ---------------------------------------------------------------------------------------
def _time_limits(env):
    while env is not None:
        if hasattr(env, "_elapsed_steps"):
            yield env
        env = getattr(env, "env", None)


def snapshot(env) -> tuple:
    """Everything a step of `env` depends on, to `restore` later (see the module docstring)."""
    base = env.unwrapped
    limits = [(limit, limit._elapsed_steps) for limit in _time_limits(env)]
    data = getattr(base, "data", None)
    if data is not None and hasattr(base, "model"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(base.model, spec))
        mujoco.mj_getState(base.model, data, state, spec)
        python = {key: copy.deepcopy(value) for key, value in vars(getattr(base, "task", base)).items()
                  if isinstance(value, (int, float, bool, np.ndarray, np.generic))}
        return ("mujoco", state, python, getattr(base, "_last_obs", None), limits)
    attributes = {key: copy.deepcopy(value) for key, value in vars(base).items()
                  if key not in ("screen", "clock", "_np_random", "np_random")}
    return ("python", attributes, None, None, limits)


def restore(env, snap: tuple) -> None:
    kind, state, python, last_obs, limits = snap
    base = env.unwrapped
    if kind == "mujoco":
        import mujoco

        mujoco.mj_setState(base.model, base.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(base.model, base.data)
        target = getattr(base, "task", base)
        for key, value in python.items():
            setattr(target, key, copy.deepcopy(value))
        if last_obs is not None:
            base._last_obs = last_obs.copy()
    else:
        for key, value in state.items():
            setattr(base, key, copy.deepcopy(value))
    for limit, elapsed in limits:
        limit._elapsed_steps = elapsed


# --- searchers -------------------------------------------------------------------------------------------
def torch_searcher(model, cfg, *, widen: bool, device: str = "cpu") -> tuple[SearchFn, MeanActionFn, int, int]:
    """(search, mean_action, padded obs dim, action dim) for a checkpoint's WorldModel."""
    import torch

    from ezm_training.model_search import search_batch, search_keys

    model.eval()

    @torch.no_grad()
    def search(obs, task, step):
        task_t = torch.tensor([task], device=device)
        obs_t = torch.as_tensor(obs[None], dtype=torch.float32, device=device)
        keys = search_keys(cfg.seed + 77_777, 1, step, device=device)
        out = search_batch(model, obs_t, task_t, keys, cfg, widen=widen)
        return ProbeSearch(out.candidate_actions[0].float().cpu().numpy(), out.q_values[0].float().cpu().numpy(),
                           int(out.action_index[0]), mean_action(obs, task))

    @torch.no_grad()
    def mean_action(obs, task):
        initial = model.initial_inference(torch.as_tensor(obs[None], dtype=torch.float32, device=device),
                                          torch.tensor([task], device=device))
        return np.clip(np.tanh(initial.policy_mean[0].float().cpu().numpy()), -cfg.action_clip, cfg.action_clip)

    return search, mean_action, model.obs_dim, model.action_dim


def bundle_searcher(bundle, *, widen: bool | None = None, seed: int = 0) -> tuple[SearchFn, MeanActionFn, int, int]:
    """The same for an exported bundle: its graphs on onnxruntime and its manifest's search settings."""
    from ezm_training.search import fold_in, gumbel_search, root_keys

    manifest = bundle.manifest
    kwargs = manifest.search_kwargs()
    widen = bool(manifest.search["widen_at_eval"]) if widen is None else widen
    clip = float(kwargs["action_clip"])

    def search(obs, task, step):
        root = bundle.initial(obs[None].astype(np.float32), np.array([task], np.int64))
        keys = fold_in(root_keys(seed, 1, like=root.value), step)
        out = gumbel_search(root, bundle.recurrent_fn(task), keys, widen=widen, **kwargs)
        mean = np.clip(np.tanh(root.policy_mean[0]), -clip, clip)
        return ProbeSearch(np.asarray(out.candidate_actions[0]), np.asarray(out.q_values[0]),
                           int(out.action_index[0]), mean)

    def mean_action(obs, task):
        root = bundle.initial(obs[None].astype(np.float32), np.array([task], np.int64))
        return np.clip(np.tanh(root.policy_mean[0]), -clip, clip)

    return search, mean_action, manifest.obs_dim, manifest.action_dim


# --- the probe -------------------------------------------------------------------------------------------
@dataclass
class StateRecord:
    env_id: str
    state: int
    episode_step: int
    rank_correlation: float  # NaN when the true returns or the Q values are all equal
    chosen_rank: int  # 0 = the best true return of the K
    chosen_return: float
    mean_return: float  # the policy mean as the first action
    best_return: float
    worst_return: float


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (0-based) with ties sharing the mean rank, as Spearman's rho needs."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equal-length vectors; NaN if either is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _rollout(env, snap, first_action: np.ndarray, mean_action: MeanActionFn, task: int, horizon: int,
             discount: float, obs_dim: int, env_action_dim: int) -> float:
    """Discounted true return of `first_action`, then the policy mean, for `horizon` steps from `snap`."""
    restore(env, snap)
    total, weight, action = 0.0, 1.0, first_action
    padded = np.zeros(obs_dim, np.float32)
    for _ in range(horizon):
        obs, reward, terminated, truncated, _ = env.step(action[:env_action_dim])
        total += weight * float(reward)
        weight *= discount
        if terminated or truncated:
            break
        padded[: obs.shape[0]] = obs
        action = mean_action(padded, task)
    return total


def probe_task(env, env_id: str, task: int, search: SearchFn, mean_action: MeanActionFn, *, obs_dim: int,
               num_states: int, horizon: int, stride: int, discount: float, seed: int,
               max_episode_steps: int = 1000, progress=None) -> list[StateRecord]:
    """`num_states` probed states of one task (see the module docstring)."""
    env_action_dim = env.action_space.shape[0]
    records: list[StateRecord] = []
    padded = np.zeros(obs_dim, np.float32)
    episode = 0
    while len(records) < num_states:
        obs, _ = env.reset(seed=seed + episode)
        episode += 1
        for step in range(max_episode_steps):
            padded[:] = 0.0
            padded[: obs.shape[0]] = obs
            found = search(padded.copy(), task, len(records) * 1_000 + step)
            if step % stride == stride - 1 and len(records) < num_states:
                snap = snapshot(env)
                returns = np.array([_rollout(env, snap, candidate, mean_action, task, horizon, discount, obs_dim,
                                             env_action_dim) for candidate in found.candidates])
                mean_return = _rollout(env, snap, found.mean_action, mean_action, task, horizon, discount, obs_dim,
                                       env_action_dim)
                restore(env, snap)
                order = np.argsort(-returns, kind="stable")
                records.append(StateRecord(
                    env_id, len(records), step, spearman(found.q_values, returns),
                    int(np.flatnonzero(order == found.chosen)[0]), float(returns[found.chosen]), mean_return,
                    float(returns.max()), float(returns.min())))
                if progress is not None:
                    progress(env_id, len(records), num_states)
            obs, _, terminated, truncated, _ = env.step(found.candidates[found.chosen][:env_action_dim])
            if terminated or truncated:
                break
    return records


def bootstrap_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % percentile-bootstrap interval over the entries (NaN dropped)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))].mean(1)
    tail = (1.0 - CONFIDENCE) / 2.0
    return float(values.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass
class ProbeSummary:
    env_id: str
    states: int
    candidates: int
    horizon: int
    rank_correlation: float
    rank_correlation_low: float
    rank_correlation_high: float
    chosen_rank: float
    chosen_rank_low: float
    chosen_rank_high: float
    random_rank: float  # what a uniformly random pick averages: (K − 1) / 2
    gap_chosen_minus_mean: float
    gap_low: float
    gap_high: float
    chosen_return: float
    mean_return: float
    best_return: float


def summarise(records: list[StateRecord], num_candidates: int, horizon: int, seed: int = 0) -> ProbeSummary:
    rho = bootstrap_interval([r.rank_correlation for r in records], seed)
    rank = bootstrap_interval([r.chosen_rank for r in records], seed + 1)
    gap = bootstrap_interval([r.chosen_return - r.mean_return for r in records], seed + 2)
    return ProbeSummary(
        records[0].env_id, len(records), num_candidates, horizon, *rho, *rank, (num_candidates - 1) / 2.0, *gap,
        float(np.mean([r.chosen_return for r in records])), float(np.mean([r.mean_return for r in records])),
        float(np.mean([r.best_return for r in records])))


def format_table(summaries: list[ProbeSummary]) -> str:
    lines = ["| task | states | rank corr. Q vs true (95 % CI) | chosen rank of K (random) | "
             "chosen − policy mean (95 % CI) |",
             "|---|---:|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.env_id} | {s.states} | {s.rank_correlation:+.2f} [{s.rank_correlation_low:+.2f}, "
                     f"{s.rank_correlation_high:+.2f}] | {s.chosen_rank:.1f} [{s.chosen_rank_low:.1f}, "
                     f"{s.chosen_rank_high:.1f}] of 0-{s.candidates - 1} ({s.random_rank:.1f}) | "
                     f"{s.gap_chosen_minus_mean:+.3f} [{s.gap_low:+.3f}, {s.gap_high:+.3f}] |")
    return "\n".join(lines)


def write_results(summaries: list[ProbeSummary], records: list[StateRecord], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "probe.json").write_text(json.dumps([asdict(s) for s in summaries], indent=2))
    with open(out_dir / "probe_states.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(records[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)


# --- CLI ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="a run dir, a checkpoint dir, or (with --bundle) a bundle dir")
    parser.add_argument("--bundle", action="store_true", help="probe an exported bundle through onnxruntime")
    parser.add_argument("--tasks", nargs="*", default=None, help="env ids (default: every task of the model)")
    parser.add_argument("--states", type=int, default=32, help="probed states per task")
    parser.add_argument("--horizon", type=int, default=10, help="true-simulator steps per rollout")
    parser.add_argument("--stride", type=int, default=5, help="env steps between probed states")
    parser.add_argument("--no-widen", action="store_true",
                        help="all K candidates from π (evaluation); default: widened, as acting and reanalysis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write probe.json and probe_states.csv here")
    args = parser.parse_args(argv)
    if args.states < 1 or args.horizon < 1 or args.stride < 1:
        parser.error("--states, --horizon and --stride must be >= 1")

    from ezm_training.envs import make_env

    if args.bundle:
        from ezm_ros.bundle import BundleError, load_bundle

        try:
            bundle = load_bundle(args.path)
        except BundleError as error:
            parser.error(str(error))
        search, mean_action, obs_dim, _ = bundle_searcher(bundle, widen=not args.no_widen, seed=args.seed)
        task_ids = [task.env_id for task in bundle.manifest.tasks]
        discount = float(bundle.manifest.search["discount"])
        num_candidates = int(bundle.manifest.search["num_candidates"])
        action_repeat = 1
    else:
        from ezm_training.checkpoint import load_model

        try:
            model, cfg, _, _, _ = load_model(args.path)
        except (FileNotFoundError, ValueError) as error:  # ValueError: CheckpointError
            parser.error(str(error))
        search, mean_action, obs_dim, _ = torch_searcher(model, cfg, widen=not args.no_widen)
        task_ids, discount, num_candidates = list(cfg.task_ids), cfg.discount, cfg.num_sampled_actions
        action_repeat = cfg.action_repeat
    tasks = args.tasks or task_ids
    unknown = [t for t in tasks if t not in task_ids]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; the model has {task_ids}")

    def progress(env_id, done, total):
        print(f"\rezm-probe {env_id}: {done}/{total} states", end="", file=sys.stderr, flush=True)

    summaries, records = [], []
    for env_id in tasks:
        env = make_env(env_id, action_repeat)
        try:
            task_records = probe_task(env, env_id, task_ids.index(env_id), search, mean_action, obs_dim=obs_dim,
                                      num_states=args.states, horizon=args.horizon, stride=args.stride,
                                      discount=discount, seed=args.seed, progress=progress)
        finally:
            env.close()
        print(file=sys.stderr)
        records += task_records
        summaries.append(summarise(task_records, num_candidates, args.horizon, args.seed))
    print(format_table(summaries))
    if args.out is not None:
        write_results(summaries, records, args.out)
        print(f"wrote {args.out}/probe.json and probe_states.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
