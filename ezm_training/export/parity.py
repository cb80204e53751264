"""The parity check: onnxruntime against torch on random and recorded inputs of every task. The inputs and
torch's outputs become parity.npz, so the robot repeats the check at load without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ezm_ros.manifest import (
    INITIAL_FILE,
    INITIAL_INPUTS,
    INITIAL_OUTPUTS,
    PARITY_TOLERANCE,
    RECURRENT_FILE,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
    TaskSpec,
)
from ezm_training.export import ExportError
from ezm_training.export.robot import RECORD_SEED
from ezm_training.networks import WorldModel

RANDOM_ROWS_PER_TASK = 4  # random observations per task in the parity check


def parity_inputs(model: WorldModel, tasks: Sequence[TaskSpec], recorded) -> dict[str, np.ndarray]:
    """Random and recorded inputs for both graphs, every task; the recurrent graph gets the initial
    graph's latents of the same rows (real latents) with random and recorded actions."""
    rng = np.random.default_rng(RECORD_SEED)
    obs_rows, task_rows, action_rows = [], [], []
    for spec in tasks:
        random_obs = np.zeros((RANDOM_ROWS_PER_TASK, model.obs_dim), np.float32)
        random_obs[:, : spec.obs_size] = rng.normal(0.0, 3.0, size=(RANDOM_ROWS_PER_TASK, spec.obs_size))
        recorded_obs, recorded_actions = recorded[spec.env_id]
        padded = np.zeros((len(recorded_obs), model.obs_dim), np.float32)
        padded[:, : spec.obs_size] = recorded_obs
        obs_rows += [random_obs, padded]
        task_rows.append(np.full(len(random_obs) + len(padded), spec.index, np.int64))
        action_rows += [rng.uniform(-1, 1, size=(RANDOM_ROWS_PER_TASK, model.action_dim)).astype(np.float32),
                        recorded_actions]
    obs, task, action = np.concatenate(obs_rows), np.concatenate(task_rows), np.concatenate(action_rows)
    with torch.no_grad():
        latent = model.encode(torch.from_numpy(obs), torch.from_numpy(task)).numpy()
    return {"initial.obs": obs, "initial.task": task, "recurrent.latent": latent, "recurrent.action": action,
            "recurrent.task": task}


def check_parity(directory: Path, modules: dict[str, torch.nn.Module], arrays: dict[str, np.ndarray]) -> dict:
    """Torch outputs into `arrays` (as parity.npz stores them); onnxruntime must match within
    PARITY_TOLERANCE. Returns the max abs error per output."""
    import onnxruntime as ort

    errors = {}
    for prefix, file, input_names, output_names in (("initial", INITIAL_FILE, INITIAL_INPUTS, INITIAL_OUTPUTS),
                                                    ("recurrent", RECURRENT_FILE, RECURRENT_INPUTS, RECURRENT_OUTPUTS)):
        feed = {name: arrays[f"{prefix}.{name}"] for name in input_names}
        with torch.no_grad():
            expected = [x.numpy() for x in modules[prefix](*(torch.from_numpy(v) for v in feed.values()))]
        session = ort.InferenceSession(str(directory / file), providers=["CPUExecutionProvider"])
        got = session.run(list(output_names), feed)
        for name, want, have in zip(output_names, expected, got):
            arrays[f"{prefix}.out.{name}"] = want
            error = np.abs(have - want)
            errors[f"{prefix}.{name}"] = float(error.max())
            if not np.all(error <= PARITY_TOLERANCE * (1.0 + np.abs(want))):
                raise ExportError(f"onnxruntime and torch disagree on {prefix} output {name}: max abs error "
                                  f"{error.max():.3g} > {PARITY_TOLERANCE:g} (rtol and atol)")
    return errors
