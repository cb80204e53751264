"""`ezm-export CHECKPOINT OUT`: a trained WorldModel as a model bundle (ONNX graphs + manifest; see
`ezm_ros.manifest` for the format, `ezm_ros.bundle` for the loader the robot runs).

    ezm-export runs/<hash> models/ezm-h1                 # newest checkpoint of a run, EMA (target) weights
    ezm-export runs/<hash>/checkpoints/ckpt_000600000 models/ezm-h1 --weights online --force
    ezm-export --untrained out/untrained [--tasks h1-locomotion]   # random weights, labelled untrained

From Python (tests, synthetic bundles for benchmarks):

    export_bundle(model, cfg, "out/bundle", env_steps=0)

What it does, in order: read each task's observation layout and the robot's joints, ctrl ranges and hold
pose from sim_bridge (the compiled MuJoCo model, the one source of those); export `initial_inference` and
`recurrent_inference` with a dynamic batch axis; check onnxruntime against torch within 1e-5 on random
observations and on observations recorded from each task's environment, for every task (the export
fails otherwise); write parity.npz so the robot can repeat that check without torch; hash every file and
write manifest.json last. The bundle is written to a temporary directory and renamed into place, so an
interrupted export never leaves something that looks like a bundle.

Exporter: torch's TorchScript-based exporter (`dynamo=False`) by default. It takes about 1 s for the tiny
model against 5–13 s for the dynamo exporter, both give graphs of the same speed on onnxruntime (256-wide
recurrent graph, one thread: 0.27 vs 0.27 ms at batch 1, 1.10 vs 1.07 ms at batch 16), and the tests export
many bundles; `--dynamo` selects the other.
The observation normaliser is inside initial.onnx (one source of truth: the model's own buffers); the
manifest documents it and copies its statistics for inspection.

`--int8` adds int8 versions of both graphs (onnxruntime dynamic quantization: every MatMul/Gemm weight
int8, symmetric, per output channel; activations quantized per call), for a full-size model on a CPU
without the time for float32 (BENCHMARKS.md, planner latency). They approximate the float32 model, so the
export measures that and writes it into the manifest's `int8` object: the max abs error of every output
against torch on the parity inputs, and the search's agreement with the float32 graphs (same candidate
chosen, action and root value differences) on the parity observations with the same search keys.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ezm_ros.manifest import (
    FORMAT_VERSION,
    GRAPH_FILES,
    INITIAL_FILE,
    INITIAL_INPUTS,
    INITIAL_OUTPUTS,
    INT8_GRAPH_FILES,
    MANIFEST_FILE,
    PARITY_FILE,
    PARITY_TOLERANCE,
    RECURRENT_FILE,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
    BundleError,
    FileEntry,
    Manifest,
    RobotSpec,
    file_sha256,
)
from ezm_training.config import EZMConfig
from ezm_training.export import ExportError
from ezm_training.export.graphs import DEFAULT_OPSET, InitialGraph, RecurrentGraph, export_graph
from ezm_training.export.int8 import int8_search_agreement, quantize_int8
from ezm_training.export.parity import check_parity, parity_inputs
from ezm_training.export.robot import robot_and_tasks
from ezm_training.networks import OBS_NORM_EPS, WorldModel
from ezm_training.value_transform import EPSILON


def search_settings(cfg: EZMConfig) -> dict:
    """The config's search knobs for the manifest (ezm_ros.manifest.SEARCH_KEYS): what search_batch passes
    to the search, plus whether evaluation widens; tests/ezm_training/test_export_bundle.py checks that the
    planner and search_batch choose the same action."""
    return {**cfg.search_kwargs, "widen_at_eval": cfg.widen_at_eval}


def export_bundle(model: WorldModel, cfg: EZMConfig, out_dir: str | Path, *, tasks: Sequence[str] | None = None,
                  env_steps: int = 0, training_steps: int = 0, checkpoint: str = "", weights: str = "",
                  opset: int = DEFAULT_OPSET, dynamo: bool = False, int8: bool = False,
                  overwrite: bool = False) -> Manifest:
    """Write the bundle of `model` to `out_dir` and return its manifest.

    tasks: env ids to include (default: all of cfg.task_ids); each keeps its cfg index as its task input.
    env_steps, training_steps, checkpoint, weights: the training run, recorded in the manifest.
    int8: also write int8 graphs, with their error and search agreement in the manifest (module docstring).
    overwrite: replace an existing out_dir (otherwise ExportError).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ExportError(f"{out_dir} exists; pass overwrite=True (--force) to replace it")
    env_ids = tuple(cfg.task_ids if tasks is None else tasks)
    unknown = [env_id for env_id in env_ids if env_id not in cfg.task_ids]
    if unknown or not env_ids:
        raise ExportError(f"tasks {unknown or '[]'} are not among the model's {list(cfg.task_ids)}")
    indices = [cfg.task_ids.index(env_id) for env_id in env_ids]
    robot, task_specs, recorded = robot_and_tasks(env_ids, indices)
    for spec in task_specs:
        if spec.obs_size != model.obs_dims[spec.index]:
            raise ExportError(f"{spec.env_id}: the model was built for {model.obs_dims[spec.index]} observations, "
                              f"sim_bridge's task has {spec.obs_size}")
    if len(robot.joint_names) != model.action_dim:
        raise ExportError(f"the model acts on {model.action_dim} dims, the robot has {len(robot.joint_names)} actuators")

    model = model.to("cpu", torch.float32).eval()
    modules = {"initial": InitialGraph(model), "recurrent": RecurrentGraph(model)}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f"{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = parity_inputs(model, task_specs, recorded)
        for prefix, file, names, output_names in (("initial", INITIAL_FILE, INITIAL_INPUTS, INITIAL_OUTPUTS),
                                                  ("recurrent", RECURRENT_FILE, RECURRENT_INPUTS, RECURRENT_OUTPUTS)):
            example = {name: torch.from_numpy(arrays[f"{prefix}.{name}"][:2]) for name in names}
            export_graph(modules[prefix], example, output_names, tmp / file, opset=opset, dynamo=dynamo)
        errors = check_parity(tmp, modules, arrays)
        int8_info = quantize_int8(tmp, arrays) if int8 else {}
        np.savez(tmp / PARITY_FILE, **arrays)
        manifest = _manifest(model, cfg, tmp, robot, task_specs, errors, int8_info, env_steps=env_steps,
                             training_steps=training_steps, checkpoint=checkpoint, weights=weights, opset=opset,
                             dynamo=dynamo)
        try:  # the robot's loader parses and checks it; an export it would refuse fails here instead
            Manifest.from_json(manifest.to_json())
        except BundleError as err:
            raise ExportError(f"the planner would refuse this bundle: {err}") from None
        (tmp / MANIFEST_FILE).write_text(manifest.to_json())
        if int8:  # needs the finished bundle: it runs the search on both precisions through the loader
            manifest = dataclasses.replace(manifest, int8={**int8_info, "search_agreement": int8_search_agreement(tmp)})
            (tmp / MANIFEST_FILE).write_text(manifest.to_json())
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _manifest(model: WorldModel, cfg: EZMConfig, directory: Path, robot: RobotSpec, tasks, errors, int8_info, *,
              env_steps, training_steps, checkpoint, weights, opset, dynamo) -> Manifest:
    names = (*GRAPH_FILES, *(INT8_GRAPH_FILES if int8_info else ()), PARITY_FILE)
    files = {name: FileEntry(size=(directory / name).stat().st_size, sha256=file_sha256(directory / name))
             for name in names}
    graphs_digest = hashlib.sha256("".join(files[name].sha256 for name in GRAPH_FILES).encode()).hexdigest()
    normalizer = model._representation.normalizer
    support = lambda spec: {"min": spec.min, "max": spec.max, "bins": spec.bins,  # noqa: E731
                            "spacing": "even in h-space (ezm_training/support.py)"}
    return Manifest(
        format_version=FORMAT_VERSION,
        model_id=f"ezm-{cfg.hash()}-{graphs_digest[:12]}",
        created_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        obs_dim=model.obs_dim, latent_dim=cfg.latent_dim, action_dim=model.action_dim,
        tasks=tasks, robot=robot,
        obs_normalisation={
            "applied_in": INITIAL_FILE,
            "formula": "(obs - mean) / sqrt(var + eps) * mask[task]; feed raw observations zero-padded to obs_dim",
            "eps": OBS_NORM_EPS,
            "mean": normalizer.mean.tolist(), "var": normalizer.var.tolist(), "count": normalizer.count.tolist(),
        },
        discount=cfg.discount,
        value_support=support(cfg.value_support), reward_support=support(cfg.reward_support),
        value_transform=f"h(x) = sign(x)(sqrt(|x| + 1) - 1) + {EPSILON:g} x; graphs output h^-1 of the expected "
                        "atom (values: the expected min of two of the value heads, docs/design.md)",
        search=search_settings(cfg),
        training={"config": _config_dict(cfg), "config_hash": cfg.hash(), "env_steps": int(env_steps),
                  "training_steps": int(training_steps), "checkpoint": str(checkpoint), "weights": weights},
        export={"exporter": "torch.onnx dynamo" if dynamo else "torch.onnx torchscript", "opset": opset,
                "torch": torch.__version__, "parity_tolerance": PARITY_TOLERANCE, "parity_max_abs_error": errors},
        files=files,
        int8=int8_info,
    )


def _config_dict(cfg: EZMConfig) -> dict:
    return json.loads(cfg.to_json())
