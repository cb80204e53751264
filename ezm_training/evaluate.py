"""Evaluation: episodes per task with the search (no widening), returns vs HumanoidBench's success bars,
and rollout videos. `actor="policy_mean"` runs the same episodes on tanh of the policy's mean with no
search: the returns-level check of whether the search helps (same seeds, same model).

[EZM] ez/worker/eval_worker.py: 1000-step episodes, the executed action is the search's chosen action,
and (because of pitfall 4) widened candidates are still sampled; here widening is off at eval unless
cfg.widen_at_eval (docs/design.md).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ezm_training.config import EZMConfig
from ezm_training.diagnostics import SATURATED_ABS_ACTION
from ezm_training.model_search import search_batch, search_from_root, search_keys
from ezm_training.networks import WorldModel
from ezm_training.reference_results import success_bar

_EVAL_KEY_OFFSET = 1 << 41  # keeps eval search keys apart from collection and reanalysis
# Videos: MuJoCo's software EGL renders a 128 px frame in ~70 ms on this 2-core CPU (256 px: several
# times more), so videos are small and capped at 10 s of the 50 Hz episode.
VIDEO_SIZE_PX = 160
VIDEO_MAX_STEPS = 500
#: Who acts in evaluate(): the search (as deployed), or the policy's mean alone (does the search help?).
ACTORS = ("search", "policy_mean")


@dataclass
class TaskResult:
    env_id: str
    episodes: int
    mean_return: float
    std_return: float
    mean_length: float
    success_bar: float
    success_rate: float  # fraction of episodes with return ≥ the bar
    policy_std: float  # mean pre-tanh std of the policy at the visited states (diagnostics.py)
    saturated: float  # fraction of the executed action dims with |a| > diagnostics.SATURATED_ABS_ACTION


@torch.no_grad()
def evaluate(cfg: EZMConfig, model: WorldModel, episodes_per_task: int, *, seed: int, num_workers: int | None = None,
             device: torch.device | str = "cpu", actor: str = "search") -> list[TaskResult]:
    """Run episodes_per_task episodes of every task at once (one env each), eval_episode_steps long at most.

    actor: "search" (the search's chosen action, as the planner acts) or "policy_mean" (tanh of the policy's
    mean, clipped as the search clips its candidates; no search)."""
    from ezm_training.envs import make_vector_env

    if actor not in ACTORS:
        raise ValueError(f"actor must be one of {ACTORS}, got {actor!r}")

    env_ids = [env_id for env_id in cfg.task_ids for _ in range(episodes_per_task)]
    env_task = np.repeat(np.arange(cfg.num_tasks), episodes_per_task)
    model.eval()
    returns = np.zeros(len(env_ids))
    lengths = np.zeros(len(env_ids), dtype=np.int64)
    done = np.zeros(len(env_ids), dtype=bool)
    std_sum, saturated_sum = np.zeros(len(env_ids)), np.zeros(len(env_ids))
    with make_vector_env(env_ids, action_repeat=cfg.action_repeat, num_workers=num_workers) as venv:
        obs = venv.reset(seed=seed)
        task = torch.as_tensor(env_task, device=device)
        for step in range(cfg.eval_episode_steps):
            keys = search_keys(seed + _EVAL_KEY_OFFSET, len(env_ids), step, device=device)
            initial = model.initial_inference(torch.as_tensor(obs, dtype=torch.float32, device=device), task)
            if actor == "search":
                action = search_from_root(model, initial, task, keys, cfg, widen=cfg.widen_at_eval).action
            else:
                action = torch.tanh(initial.policy_mean).clamp(-cfg.action_clip, cfg.action_clip)
            live = torch.as_tensor(~done, device=device)
            std_sum += (initial.policy_std.float().mean(-1) * live).cpu().numpy()
            saturated_sum += ((action.abs() > SATURATED_ABS_ACTION).float().mean(-1) * live).cpu().numpy()
            obs, rewards, terminated, truncated, _ = venv.step(action.float().cpu().numpy())
            returns += np.where(done, 0.0, rewards)
            lengths += ~done
            done |= terminated | truncated
            if done.all():
                break
    results = []
    for index, env_id in enumerate(cfg.task_ids):
        rows = env_task == index
        bar = success_bar(env_id)
        results.append(TaskResult(env_id, int(rows.sum()), float(returns[rows].mean()), float(returns[rows].std()),
                                  float(lengths[rows].mean()), bar, float((returns[rows] >= bar).mean()),
                                  float(std_sum[rows].sum() / lengths[rows].sum()),
                                  float(saturated_sum[rows].sum() / lengths[rows].sum())))
    return results


def write_results(results: list[TaskResult], out_dir: Path, stem: str = "eval") -> None:
    """eval.csv and eval.json in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [asdict(result) for result in results]
    with open(out_dir / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / f"{stem}.json").write_text(json.dumps(rows, indent=2))


def format_table(results: list[TaskResult]) -> str:
    lines = [f"{'task':<22}{'episodes':>9}{'return':>10}{'± std':>9}{'length':>8}{'bar':>7}{'success':>9}"
             f"{'π std':>8}{'saturated':>10}"]
    for r in results:
        lines.append(f"{r.env_id:<22}{r.episodes:>9d}{r.mean_return:>10.1f}{r.std_return:>9.1f}"
                     f"{r.mean_length:>8.0f}{r.success_bar:>7.0f}{r.success_rate:>9.2f}"
                     f"{r.policy_std:>8.3f}{r.saturated:>10.1%}")
    return "\n".join(lines)


@torch.no_grad()
def record_video(cfg: EZMConfig, model: WorldModel, env_id: str, path: Path, *, seed: int,
                 device: torch.device | str = "cpu") -> str | None:
    """One eval episode of env_id rendered to an mp4. Returns None, or the reason it was skipped."""
    import imageio.v2 as imageio

    from ezm_training.envs import make_env

    task = torch.tensor([cfg.task_ids.index(env_id)], device=device)
    try:
        env = make_env(env_id, cfg.action_repeat, render_mode="rgb_array", width=VIDEO_SIZE_PX,
                       height=VIDEO_SIZE_PX)
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
    except RuntimeError as error:  # no OpenGL context (sim_bridge.rendering explains the fix)
        return f"no rendering: {error}"
    padded = np.zeros(model.obs_dim, dtype=np.float32)
    try:
        for step in range(min(cfg.eval_episode_steps, VIDEO_MAX_STEPS)):
            padded[: obs.shape[0]] = obs
            out = search_batch(model, torch.as_tensor(padded[None], device=device), task,
                               search_keys(seed + _EVAL_KEY_OFFSET, 1, step, device=device), cfg,
                               widen=cfg.widen_at_eval)
            own_action = out.action[0, : env.action_space.shape[0]]  # the task's own dims of the padded action
            obs, _, terminated, truncated, _ = env.step(own_action.float().cpu().numpy())
            frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / env.unwrapped.dt if hasattr(env.unwrapped, "dt") else env.metadata.get("render_fps", 30)
    imageio.mimsave(path, frames, fps=int(round(fps * (1.0 / cfg.action_repeat if cfg.action_repeat > 1 else 1.0))))
    return None
