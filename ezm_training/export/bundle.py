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
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ezm_ros.manifest import (
    BATCH_AXIS,
    BundleError,
    FORMAT_VERSION,
    GRAPH_FILES,
    INITIAL_FILE,
    INT8_GRAPH_FILES,
    INITIAL_INPUTS,
    INITIAL_OUTPUTS,
    MANIFEST_FILE,
    PARITY_FILE,
    PARITY_TOLERANCE,
    RECURRENT_FILE,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
    FileEntry,
    Manifest,
    ObsSegment,
    RobotSpec,
    TaskSpec,
    file_sha256,
)
from ezm_training.config import EZMConfig
from ezm_training.networks import OBS_NORM_EPS, WorldModel
from ezm_training.value_transform import EPSILON

DEFAULT_OPSET = 17  # LayerNormalization is a single op from opset 17 on
RANDOM_ROWS_PER_TASK = 4  # random observations per task in the parity check
RECORDED_STEPS_PER_TASK = 4  # env steps recorded per task (reset, then random actions)
_RECORD_SEED = 0
_INT8_METHOD = ("onnxruntime.quantization.quantize_dynamic: MatMul/Gemm weights int8 (symmetric, per output "
                "channel), activations uint8 quantized per call")


class ExportError(RuntimeError):
    """The model cannot be exported as asked; the message says why."""


# ---------------------------------------------------------------------------------------------- sim side


def robot_and_tasks(env_ids: Sequence[str], task_indices: Sequence[int]):
    """(RobotSpec, TaskSpecs, recorded observations and actions per task) from sim_bridge's compiled models.

    Recorded: RECORDED_STEPS_PER_TASK observations of each task's env after reset(seed 0) under random
    actions, and those actions, as real inputs for the parity check.
    """
    import mujoco

    from sim_bridge import registry
    from sim_bridge.env import HumanoidEnv

    robot, tasks, recorded = None, [], {}
    for env_id, index in zip(env_ids, task_indices):
        env = HumanoidEnv(task=registry.parse_env_id(env_id)[1])
        try:
            spec = _robot_spec(env, mujoco)
            if robot is not None and spec != robot:
                raise ExportError(f"{env_id} has a different robot than {env_ids[0]}: one bundle drives one robot")
            robot = spec
            obs_size = int(env.observation_space.shape[0])
            tasks.append(TaskSpec(env_id, index, obs_size, _obs_layout(env.model, obs_size, mujoco)))
            recorded[env_id] = _record(env, obs_size)
        finally:
            env.close()
    return robot, tuple(tasks), recorded


def _robot_spec(env, mujoco) -> RobotSpec:
    model, action_map = env.model, env.action_map
    names = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(action_map.size))
    # The hold pose is the robot's reset keyframe, mapped back through the one action map.
    joint_qpos = [env.robot.keyframe_qpos[model.jnt_qposadr[model.actuator_trnid[i, 0]]] for i in range(action_map.size)]
    hold = action_map.to_action(np.asarray(joint_qpos, np.float32))
    return RobotSpec(name=env.robot.name, joint_names=names, ctrl_low=_float32s(action_map.low),
                     ctrl_high=_float32s(action_map.high), hold_action=_float32s(hold), control_dt_s=float(env.dt))


def _float32s(values) -> tuple[float, ...]:
    """float32 numbers by their shortest decimal (-0.43, not -0.4300000071525574): the same float32 back."""
    return tuple(float(str(np.float32(v))) for v in values)


def _obs_layout(model, obs_size: int, mujoco) -> tuple[ObsSegment, ...]:
    """qpos then qvel of every joint in MuJoCo order (robot first, then scene objects), then any extras the
    task appends (reach: left hand and goal positions), as HumanoidBench and sim_bridge observe."""
    joint = mujoco.mjtJoint
    sizes = {int(joint.mjJNT_FREE): (7, 6), int(joint.mjJNT_BALL): (4, 3), int(joint.mjJNT_SLIDE): (1, 1),
             int(joint.mjJNT_HINGE): (1, 1)}  # (qpos, qvel) entries per joint type
    joints = sorted(range(model.njnt), key=lambda j: model.jnt_qposadr[j])
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}" for j in joints]
    segments = [ObsSegment(f"qpos.{name}", int(model.jnt_qposadr[j]), sizes[int(model.jnt_type[j])][0])
                for j, name in zip(joints, names)]
    segments += [ObsSegment(f"qvel.{name}", model.nq + int(model.jnt_dofadr[j]), sizes[int(model.jnt_type[j])][1])
                 for j, name in zip(joints, names)]
    if obs_size < model.nq + model.nv:
        return (ObsSegment("obs", 0, obs_size),)  # a task observing less than qpos, qvel: layout unknown here
    if obs_size > model.nq + model.nv:
        segments.append(ObsSegment("extra", model.nq + model.nv, obs_size - model.nq - model.nv))
    return tuple(segments)


def _record(env, obs_size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_RECORD_SEED)
    obs, _ = env.reset(seed=_RECORD_SEED)
    observations, actions = [], []
    for _ in range(RECORDED_STEPS_PER_TASK):
        action = rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32)
        observations.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(observations, np.float32).reshape(-1, obs_size), np.asarray(actions, np.float32)


# ---------------------------------------------------------------------------------------------- graphs


class _Initial(torch.nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, obs, task):
        return tuple(self.model.initial_inference(obs, task)[: len(INITIAL_OUTPUTS)])


class _Recurrent(torch.nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, latent, action, task):
        out = self.model.recurrent_inference(latent, action, task)
        reward = out.reward
        if self.model.task_embedding(task) is None:
            # A single-task model ignores `task` here, and the exporter would drop an unused input; adding
            # an exact 0 keeps every bundle's recurrent graph on the same three inputs.
            reward = reward + 0.0 * task.to(reward.dtype)
        return (out.latent, reward, *out[2: len(RECURRENT_OUTPUTS)])


def _export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], output_names: Sequence[str],
                  path: Path, *, opset: int, dynamo: bool) -> None:
    """torch.onnx.export with one dynamic axis (batch), then every other dim written into the graph as a
    number, so the loader can check widths against the manifest (the exporters leave some symbolic)."""
    import onnx

    with torch.no_grad():
        example_outputs = module(*inputs.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        if dynamo:
            batch = torch.export.Dim(BATCH_AXIS, min=1)
            torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                              output_names=list(output_names), dynamic_shapes={k: {0: batch} for k in inputs},
                              opset_version=max(opset, 18), dynamo=True, external_data=False, verbose=False)
        else:
            torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                              output_names=list(output_names), opset_version=opset, dynamo=False,
                              dynamic_axes={name: {0: BATCH_AXIS} for name in (*inputs, *output_names)})
    graph_model = onnx.load(str(path))
    shapes = {**{k: v.shape for k, v in inputs.items()}, **{k: v.shape for k, v in zip(output_names, example_outputs)}}
    for value in (*graph_model.graph.input, *graph_model.graph.output):
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for axis, size in enumerate(shapes[value.name]):
            dim = dims.add()
            if axis == 0:
                dim.dim_param = BATCH_AXIS
            else:
                dim.dim_value = int(size)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))


# ---------------------------------------------------------------------------------------------- parity


def _parity_inputs(model: WorldModel, tasks: Sequence[TaskSpec], recorded) -> dict[str, np.ndarray]:
    """Random and recorded inputs for both graphs, every task; the recurrent graph gets the initial
    graph's latents of the same rows (real latents) with random and recorded actions."""
    rng = np.random.default_rng(_RECORD_SEED)
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


def _check_parity(directory: Path, modules: dict[str, torch.nn.Module], arrays: dict[str, np.ndarray]) -> dict:
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


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _quantize_int8(directory: Path, arrays: dict[str, np.ndarray]) -> dict:
    """Write INT8_GRAPH_FILES next to the float32 graphs; return the manifest's `int8` object with their
    max abs error against the torch outputs already in `arrays` (the loader's self-test allows a multiple)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    errors = {}
    root_logger = logging.getLogger()
    hint = _DropMessage("Please consider to run pre-processing")  # quantize_dynamic's hint for conv nets
    root_logger.addFilter(hint)
    try:
        for prefix, source, target, input_names, output_names in (
                ("initial", INITIAL_FILE, INT8_GRAPH_FILES[0], INITIAL_INPUTS, INITIAL_OUTPUTS),
                ("recurrent", RECURRENT_FILE, INT8_GRAPH_FILES[1], RECURRENT_INPUTS, RECURRENT_OUTPUTS)):
            quantize_dynamic(directory / source, directory / target, weight_type=QuantType.QInt8, per_channel=True)
            session = ort.InferenceSession(str(directory / target), providers=["CPUExecutionProvider"])
            got = session.run(list(output_names), {name: arrays[f"{prefix}.{name}"] for name in input_names})
            for name, have in zip(output_names, got):
                error = np.abs(have - arrays[f"{prefix}.out.{name}"])
                if not np.isfinite(error).all():
                    raise ExportError(f"the int8 {prefix} graph gives non-finite {name}: export without --int8")
                errors[f"{prefix}.{name}"] = float(error.max())
    finally:
        root_logger.removeFilter(hint)
    return {"method": _INT8_METHOD, "onnxruntime": ort.__version__, "parity_max_abs_error": errors}


def int8_search_agreement(directory: Path, seed: int = 0) -> dict:
    """How the search with a bundle's int8 graphs compares with its float32 graphs, on the observations of
    parity.npz (random and recorded, every task), one root per search as the planner runs it, with the
    same search keys: the fraction of roots where both choose the same candidate, and the mean/max abs
    difference of the actions and root values.

    One root at a time matters for int8: dynamic quantization scales a call's activations by their range
    over the whole call, so a row's rounding depends on the other rows of the call (float32 rows do not).
    """
    from ezm_ros.bundle import RuntimeSettings, load_bundle
    from ezm_training.search import fold_in, gumbel_search, root_keys

    bundles = {precision: load_bundle(directory, RuntimeSettings(precision=precision), self_test=False)
               for precision in ("fp32", "int8")}
    manifest = bundles["fp32"].manifest
    widen = bool(manifest.search["widen_at_eval"])
    with np.load(directory / PARITY_FILE) as data:
        obs, task = data["initial.obs"], data["initial.task"]
    base_keys = root_keys(seed, 1, like=obs)
    chosen = {precision: ([], [], []) for precision in bundles}
    for row in range(len(obs)):
        keys = fold_in(base_keys, row)
        for precision, bundle in bundles.items():
            root = bundle.initial(obs[row: row + 1], task[row: row + 1])
            out = gumbel_search(root, bundle.recurrent_fn(int(task[row])), keys, widen=widen,
                                **manifest.search_kwargs())
            for part, value in zip(chosen[precision], (out.action_index, out.action, out.root_value)):
                part.append(np.asarray(value)[0])
    (fp32_index, fp32_action, fp32_value), (int8_index, int8_action, int8_value) = (
        [np.asarray(part) for part in chosen[precision]] for precision in ("fp32", "int8"))
    action_diff, value_diff = np.abs(fp32_action - int8_action), np.abs(fp32_value - int8_value)
    return {"roots": len(obs), "same_candidate": float(np.mean(fp32_index == int8_index)),
            "action_abs_diff_mean": float(action_diff.mean()), "action_abs_diff_max": float(action_diff.max()),
            "root_value_abs_diff_mean": float(value_diff.mean()), "root_value_abs_diff_max": float(value_diff.max())}


# ---------------------------------------------------------------------------------------------- bundle


def search_settings(cfg: EZMConfig) -> dict:
    """The config's search knobs for the manifest (ezm_ros.manifest.SEARCH_KEYS): what search_batch passes
    to the search, plus whether evaluation widens; tests/ezm_training/test_export_onnx.py checks that the
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
    modules = {"initial": _Initial(model), "recurrent": _Recurrent(model)}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f"{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = _parity_inputs(model, task_specs, recorded)
        for prefix, file, names, output_names in (("initial", INITIAL_FILE, INITIAL_INPUTS, INITIAL_OUTPUTS),
                                                  ("recurrent", RECURRENT_FILE, RECURRENT_INPUTS, RECURRENT_OUTPUTS)):
            example = {name: torch.from_numpy(arrays[f"{prefix}.{name}"][:2]) for name in names}
            _export_graph(modules[prefix], example, output_names, tmp / file, opset=opset, dynamo=dynamo)
        errors = _check_parity(tmp, modules, arrays)
        int8_info = _quantize_int8(tmp, arrays) if int8 else {}
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
    import json

    return json.loads(cfg.to_json())
