"""Checkpoints: atomic, versioned files in run_dir/checkpoints; the newest complete one is the "last good".

A checkpoint is one directory `ckpt_<step:09d>/` holding
  state.pt     learner (model, optimiser, target and actor models, normaliser buffers, entropy RNG),
               counters, collector counters, numpy/python/torch RNG states
  replay.npz   the replay buffer (every task's segments, priorities and counters)
  config.json  the resolved EZMConfig
  sha256.json  the sha256 of the three, written last
and is written as `ckpt_<step>.tmp-<pid>/`, fsynced, then renamed with os.replace. A rename is atomic,
so a SIGKILL during the write leaves at most a `*.tmp-*` directory, which `latest_checkpoint` ignores and
the next save deletes; the previous checkpoint stays loadable. The newest `keep` complete checkpoints are
kept. Deleting one (pruning) first renames it out of the `ckpt_<step>` pattern, so a deletion cut short
never leaves a half checkpoint that looks complete. Saving a step that exists already moves the old one
aside (`ckpt_<step>.replaced-<pid>`), renames the new one into place, then deletes the old: a kill between
the two renames leaves the old one aside and complete: listing still finds it there, and the next save puts
it back, so no kill loses a step.

Loading trusts nothing: the hashes are checked (a flipped byte in state.pt is refused, not trained on),
and state.pt is unpickled with `weights_only=True` plus the numpy types the RNG states hold, so a pickle
put in its place cannot run code (CheckpointError). Checkpoints written before sha256.json existed load
without the hash check.

A checkpoint without its replay.npz (state.pt, config.json and sha256.json of a ckpt_<step> dir: a few MB
for the tiny model, where the replay is hundreds) can be committed and carried to another machine;
`load_checkpoint(..., without_replay=True)` accepts it, and the trainer then rebuilds the replay by
collecting again (docs/design.md, "Carrying a run between machines").
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

_NAME = re.compile(r"ckpt_(\d{9})")
_REPLACED = ".replaced-"  # a checkpoint moved aside while its step is saved again
FILES = ("state.pt", "replay.npz", "config.json")
REPLAY = "replay.npz"
HASHES = "sha256.json"


class CheckpointError(ValueError):
    """A checkpoint that is corrupt, incomplete or not one this code wrote; the message says which file."""


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


def seed_global_rngs(seed: int) -> None:
    """Seed the process-global RNGs (python, numpy legacy, torch) of a new run, so that a run is a function of
    its seed, and two runs of one seed, one of them stopped and resumed, agree to the last RNG state."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    _restore_replaced(checkpoint_dir)
    for stale in [*checkpoint_dir.glob("ckpt_*.tmp-*"), *checkpoint_dir.glob("ckpt_*.deleting-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed writer or a deletion cut short
    final = checkpoint_dir / f"ckpt_{step:09d}"
    tmp = checkpoint_dir / f"ckpt_{step:09d}.tmp-{os.getpid()}"
    tmp.mkdir()
    _write(tmp / "state.pt", lambda handle: torch.save(state, handle))
    _write(tmp / "replay.npz", lambda handle: np.savez(handle, **replay_state))
    _write(tmp / "config.json", lambda handle: handle.write(config_json.encode()))
    hashes = json.dumps({name: _sha256(tmp / name) for name in FILES}, indent=1)
    _write(tmp / HASHES, lambda handle: handle.write(hashes.encode()))
    _fsync_dir(tmp)
    aside = None
    if final.exists():  # the same step saved twice (e.g. final save right after a periodic one)
        aside = final.with_name(f"{final.name}{_REPLACED}{os.getpid()}")
        os.replace(final, aside)
    os.replace(tmp, final)
    _fsync_dir(checkpoint_dir)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    for old in list_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []:
        _delete(old)
    return final


def _delete(checkpoint: Path) -> None:
    """Rename out of the ckpt_<step> pattern first (atomic), then remove: never a half checkpoint."""
    doomed = checkpoint.with_name(f"{checkpoint.name}.deleting-{os.getpid()}")
    os.replace(checkpoint, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(checkpoint: Path, without_replay: bool = False) -> None:
    """CheckpointError unless every file is there and matches sha256.json (when the checkpoint has one);
    `without_replay`: replay.npz may be absent (a carried checkpoint) and is not checked."""
    files = [name for name in FILES if not (without_replay and name == REPLAY)]
    missing = [name for name in files if not (checkpoint / name).is_file()]
    if missing == [REPLAY]:
        raise CheckpointError(f"{checkpoint} has no {REPLAY}: a checkpoint carried without its replay resumes "
                              "with `ezm-train --resume CHECKPOINT --rebuild-replay out=RUN_DIR`")
    if missing:
        raise CheckpointError(f"{checkpoint} is incomplete: no {', '.join(missing)}")
    if not (checkpoint / HASHES).is_file():
        return  # written before checkpoints carried hashes
    try:
        expected = json.loads((checkpoint / HASHES).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{checkpoint / HASHES} is corrupt ({err})") from None
    for name in files:
        if not isinstance(expected, dict) or _sha256(checkpoint / name) != expected.get(name):
            raise CheckpointError(f"{checkpoint / name} does not match its sha256 in {HASHES}: corrupt or "
                                  "replaced after it was written; resume from an older checkpoint")


def _safe_globals() -> list:
    """What state.pt pickles besides tensors and builtins: numpy arrays and dtypes (the RNG states)."""
    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 renamed it
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def _load_state(path: Path, map_location) -> dict:
    with torch.serialization.safe_globals(_safe_globals()):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path} holds objects a checkpoint never does, refused: loading it could "
                                  f"run code ({first[:200]})") from None
        except (RuntimeError, EOFError) as err:  # not a torch file, truncated
            raise CheckpointError(f"{path} is not a readable checkpoint ({err})") from None


def _restore_replaced(checkpoint_dir: Path) -> None:
    """The writer's repair before a save: a checkpoint moved aside for a re-save of its step is put back if
    the kill came before the new one was renamed into place (the step would be lost otherwise), and deleted
    if the new one made it. Readers never rename (a reader between the writer's two renames would break it):
    `list_checkpoints` lists such a checkpoint where it lies."""
    for aside in checkpoint_dir.glob(f"ckpt_*{_REPLACED}*"):
        final = aside.with_name(aside.name.split(_REPLACED)[0])
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. One moved aside by a re-save of its step whose new copy is not in
    place (the writer was killed between its renames) is listed where it lies; the next save puts it back."""
    if not checkpoint_dir.is_dir():
        return []
    found = {}
    for path in checkpoint_dir.iterdir():
        match = _NAME.fullmatch(path.name) or (_REPLACED in path.name and _NAME.match(path.name))
        if match and path.is_dir() and all((path / name).is_file() for name in FILES):
            step = int(match.group(1))
            if step not in found or _NAME.fullmatch(path.name):  # the one in place wins
                found[step] = path
    return [found[step] for step in sorted(found)]


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


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", without_replay: bool = False,
                    ) -> tuple[dict, dict[str, np.ndarray] | None, str]:
    """(state, replay arrays, config json) of a checkpoint directory. `without_replay`: the replay is not
    read (None), and the checkpoint may lack it."""
    verify(path, without_replay=without_replay)
    state = _load_state(path / "state.pt", map_location)
    if without_replay:
        return state, None, (path / "config.json").read_text()
    with np.load(path / REPLAY, allow_pickle=False) as replay:
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
    if (found / HASHES).exists() or (found / REPLAY).exists():  # evaluation needs the weights, not the replay
        verify(found, without_replay=not (found / REPLAY).exists())
    cfg = EZMConfig.from_json((found / "config.json").read_text())
    state = _load_state(found / "state.pt", "cpu")
    model = WorldModel(cfg, *task_dims(cfg.task_ids))
    model.load_state_dict(state["learner"]["target_model" if weights == "target" else "model"])
    return model.eval(), cfg, found, int(state["learner"]["step"]), int(state.get("env_steps", 0))
