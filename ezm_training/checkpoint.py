"""Checkpoints: atomic, versioned files in run_dir/checkpoints; the newest complete one is the "last good".

A checkpoint is one directory `ckpt_<step:09d>/` holding
  state.pt     learner (model, optimiser, target and actor models, normaliser buffers, entropy RNG),
               counters, collector counters, numpy/python/torch RNG states
  replay.npz   the replay buffer (every task's segments, priorities and counters)
  config.json  the resolved EZMConfig
and is written as `ckpt_<step>.tmp-<pid>/`, fsynced, then renamed with os.replace. A rename is atomic,
so a SIGKILL during the write leaves at most a `*.tmp-*` directory, which `latest_checkpoint` ignores and
the next save deletes; the previous checkpoint stays loadable. The newest `keep` complete checkpoints are
kept.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

_NAME = re.compile(r"ckpt_(\d{9})")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, write) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def rng_state() -> dict[str, Any]:
    """The process-global RNG states (python, numpy legacy, torch CPU, and CUDA when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # RNG states are CPU byte tensors, even if loaded to a GPU
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(checkpoint_dir: Path, step: int, state: dict[str, Any], replay_state: dict[str, np.ndarray],
                    config_json: str, keep: int = 3) -> Path:
    """Write ckpt_<step>/ atomically and prune old ones. Returns the final directory."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoint_dir.glob("ckpt_*.tmp-*"):  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    final = checkpoint_dir / f"ckpt_{step:09d}"
    tmp = checkpoint_dir / f"ckpt_{step:09d}.tmp-{os.getpid()}"
    tmp.mkdir()
    _write(tmp / "state.pt", lambda handle: torch.save(state, handle))
    _write(tmp / "replay.npz", lambda handle: np.savez(handle, **replay_state))
    _write(tmp / "config.json", lambda handle: handle.write(config_json.encode()))
    _fsync_dir(tmp)
    if final.exists():  # the same step saved twice (e.g. final save right after a periodic one)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(checkpoint_dir)
    for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [path for path in checkpoint_dir.iterdir() if path.is_dir() and _NAME.fullmatch(path.name)]
    return sorted(found, key=lambda path: int(_NAME.fullmatch(path.name).group(1)))


def latest_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint under a run dir, its checkpoints/ dir, or the checkpoint itself."""
    path = Path(path)
    if _NAME.fullmatch(path.name) and (path / "state.pt").exists():
        return path
    for candidate in (path / "checkpoints", path):
        found = list_checkpoints(candidate)
        if found:
            return found[-1]
    return None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict, dict[str, np.ndarray], str]:
    """(state, replay arrays, config json) of a checkpoint directory."""
    state = torch.load(path / "state.pt", map_location=map_location, weights_only=False)
    with np.load(path / "replay.npz") as replay:
        replay_state = {key: replay[key] for key in replay.files}
    return state, replay_state, (path / "config.json").read_text()


def load_model(path: Path, weights: str = "target"):
    """(WorldModel in eval mode, its EZMConfig, the checkpoint dir, learner step, env steps) from a run dir,
    its checkpoints/ dir, one ckpt_* dir, or a weights-only dir with state.pt and config.json (such as
    docs/runs/cpu-run-1/final_checkpoint). weights: "target" (the EMA weights the actors and the evaluation
    use) or "online". FileNotFoundError when there is no checkpoint under `path`."""
    from ezm_training.config import EZMConfig
    from ezm_training.envs import task_dims
    from ezm_training.networks import WorldModel

    path = Path(path)
    found = latest_checkpoint(path)
    if found is None and (path / "state.pt").exists() and (path / "config.json").exists():
        found = path
    if found is None:
        raise FileNotFoundError(f"no complete checkpoint under {path}")
    cfg = EZMConfig.from_json((found / "config.json").read_text())
    state = torch.load(found / "state.pt", map_location="cpu", weights_only=False)
    model = WorldModel(cfg, *task_dims(cfg.task_ids))
    model.load_state_dict(state["learner"]["target_model" if weights == "target" else "model"])
    return model.eval(), cfg, found, int(state["learner"]["step"]), int(state.get("env_steps", 0))
