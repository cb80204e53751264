"""The model bundle's manifest: the deployment contract that `ezm-export` writes and the planner checks.

A bundle is one directory:

    manifest.json    this contract (format version, model id, tasks and their observation layouts, robot
                     joints and ctrl ranges, normalisation, supports, search settings, training run, file
                     sizes and sha256)
    initial.onnx     (obs [B, D] float32, task [B] int64) -> latent [B, L], value [B], policy_mean [B, A],
                     policy_std [B, A]
    recurrent.onnx   (latent [B, L], action [B, A], task [B]) -> next_latent [B, L], reward [B], value [B],
                     policy_mean [B, A], policy_std [B, A]
    parity.npz       inputs and the exporter's torch outputs, so a robot without torch can check its
                     onnxruntime against them at load time
    initial.int8.onnx, recurrent.int8.onnx
                     optional (`ezm-export --int8`): the same graphs with int8 weights (dynamic
                     quantization); the manifest's `int8` object says how they were made and how far they
                     are from the float32 graphs

The output names are the fields of `ezm_training.search.RootOutput` / `RecurrentOutput`, except that the
recurrent graph's next latent is `next_latent` (ONNX names must be unique and `latent` is its input).
Values and rewards come out decoded (the graphs hold the support decoding), so the search sees scalars.
EZ-M predicts the reward from (s, a) directly, not a value prefix, so there is no recurrent reward state.

This module is the only definition of that contract: the exporter (torch side) builds a `Manifest` and
the loader (`ezm_ros.bundle`, no torch) parses one. It imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ezm_training.search import settings as search_settings

FORMAT_VERSION = 1  # bump on any change a planner of the previous version would misread
MANIFEST_FILE = "manifest.json"
INITIAL_FILE = "initial.onnx"
RECURRENT_FILE = "recurrent.onnx"
PARITY_FILE = "parity.npz"
#: rtol and atol of the torch-vs-onnxruntime check on CPU (float32; design.md measured about 1e-6): the
#: exporter refuses a bundle beyond it and the loader repeats the check against parity.npz with it.
PARITY_TOLERANCE = 1e-5
#: Sizes of a free joint's coordinates (a floating base): position + quaternion, linear + angular velocity.
FREE_QPOS = 7
FREE_QVEL = 6
#: The manifest's own checksum: sha256 of its canonical JSON without this key. Every other file is hashed in
#: `files`; this covers the manifest itself, so a flipped bit in a hold action or a search setting is refused
#: instead of loading as a different, still plausible value. (Corruption, not tampering: it is unkeyed.)
CHECKSUM_KEY = "manifest_sha256"
GRAPH_FILES = (INITIAL_FILE, RECURRENT_FILE)
INT8_GRAPH_FILES = ("initial.int8.onnx", "recurrent.int8.onnx")
BUNDLE_FILES = GRAPH_FILES + INT8_GRAPH_FILES + (PARITY_FILE,)  # every file a manifest may list
PRECISIONS = {"fp32": GRAPH_FILES, "int8": INT8_GRAPH_FILES}  # precision -> (initial, recurrent) files

INITIAL_INPUTS = ("obs", "task")
INITIAL_OUTPUTS = ("latent", "value", "policy_mean", "policy_std")
RECURRENT_INPUTS = ("latent", "action", "task")
RECURRENT_OUTPUTS = ("next_latent", "reward", "value", "policy_mean", "policy_std")
BATCH_AXIS = "batch"  # the one dynamic axis of every graph input and output

# Search knobs a bundle records: `ezm_training.search.gumbel_search` keyword arguments, so a planner passes
# them through unchanged. `widen_at_eval` (not a search argument) says whether deployment widens candidates.
SEARCH_KEYS = ("num_simulations", "num_candidates", "num_policy_actions", "widen_std_factor", "num_top_actions",
               "children_per_node", "discount", "c_visit", "c_scale", "value_minmax_delta", "action_clip")
# Knobs added later, with the value every bundle written before them used.
OPTIONAL_SEARCH_KEYS = {"root_prior": "uniform"}


class BundleError(ValueError):
    """A bundle that cannot be used as it is; the message names the file or field and what is wrong."""


@dataclass(frozen=True)
class ObsSegment:
    """Entries [start, start + size) of a task's observation; e.g. `qpos.left_knee`, `qvel.free_base`."""

    name: str
    start: int
    size: int


@dataclass(frozen=True)
class TaskSpec:
    """A task the model knows. Its observation is zero-padded to the bundle's `obs_dim` before the graph."""

    env_id: str  # e.g. "h1-walk-v0"
    index: int  # the value of the graphs' `task` input
    obs_size: int  # the task's own observation size, before padding
    layout: tuple[ObsSegment, ...]  # covers [0, obs_size) in order

    @property
    def name(self) -> str:
        """The short name users type: "walk" for HumanoidBench's `<robot>-<task>-v<N>`; other ids as they are."""
        robot, sep, rest = self.env_id.partition("-")
        task, sep2, version = rest.rpartition("-")
        return task if sep and sep2 and version.startswith("v") and task else self.env_id


@dataclass(frozen=True)
class RobotSpec:
    """What the action means on the robot. Action a in [-1, 1] -> ctrl = (a + 1) / 2 · (high − low) + low."""

    name: str
    joint_names: tuple[str, ...]  # actuators in action order
    ctrl_low: tuple[float, ...]  # rad, position-servo targets
    ctrl_high: tuple[float, ...]
    hold_action: tuple[float, ...]  # the normalised action of the robot's keyframe pose (safe hold target)
    control_dt_s: float  # one action per this many seconds
    # The position-servo gains the model was trained with, per joint (N·m/rad, N·m·s/rad): what the
    # pre-flight check compares with the robot's and the safety node's stand-up ramps to. Empty in bundles
    # exported before they were recorded (the pre-flight check then refuses: it cannot compare them).
    kp: tuple[float, ...] = ()
    kd: tuple[float, ...] = ()

    @property
    def coordinates_size(self) -> int:
        """Observation entries of the robot's own coordinates, which every task's observation starts with
        (HumanoidBench: qpos then qvel): a free-floating base (7 qpos, 6 qvel) and one qpos and one qvel per
        joint. A task observing more (scene objects, points) needs the simulator's task_state."""
        return FREE_QPOS + FREE_QVEL + 2 * len(self.joint_names)

    def to_ctrl(self, action: np.ndarray) -> np.ndarray:
        """Normalised action(s) (..., A) in [-1, 1] -> joint targets (..., A), rad.

        The simulator's map (sim_bridge.h1.actuators.ActionMap, HumanoidBench's `unnormalize_action`) with
        the same float32 bounds, so a planner on the robot computer, which has no MuJoCo, sends what the
        model was trained to send (tests/ezm_ros/test_bundle.py holds the two equal)."""
        low, span = self._ctrl_bounds
        return (action + 1) / 2 * span + low

    @functools.cached_property
    def _ctrl_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high - low) as float32 arrays, built once: `to_ctrl` runs in the 50 Hz control step."""
        low = np.asarray(self.ctrl_low, dtype=np.float32)
        return low, np.asarray(self.ctrl_high, dtype=np.float32) - low


@dataclass(frozen=True)
class FileEntry:
    size: int  # bytes
    sha256: str  # hex digest


@dataclass(frozen=True)
class Manifest:
    """Everything a planner needs to know about a bundle, besides the graphs themselves.

    obs_normalisation documents the normaliser inside initial.onnx (the planner feeds raw observations);
    its statistics are copied here for inspection only. value_support / reward_support and
    value_transform document the decoding inside the graphs. `training` holds the resolved EZMConfig as a
    dict, its hash, env steps and the checkpoint; `export` holds exporter versions and the parity errors.
    """

    format_version: int
    model_id: str
    created_utc: str
    obs_dim: int  # D, padded observation width of the graphs
    latent_dim: int  # L
    action_dim: int  # A
    tasks: tuple[TaskSpec, ...]
    robot: RobotSpec
    obs_normalisation: Mapping[str, Any]
    discount: float
    value_support: Mapping[str, Any]
    reward_support: Mapping[str, Any]
    value_transform: str
    search: Mapping[str, Any]
    training: Mapping[str, Any]
    export: Mapping[str, Any]
    files: Mapping[str, FileEntry]
    int8: Mapping[str, Any] = field(default_factory=dict)

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions whose graphs this bundle holds: ("fp32",) or ("fp32", "int8")."""
        return ("fp32", "int8") if self.int8 else ("fp32",)

    def graph_files(self, precision: str) -> tuple[str, str]:
        """(initial, recurrent) graph files of `precision`; BundleError if the bundle has none."""
        if precision not in PRECISIONS:
            raise BundleError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        if precision not in self.precisions:
            raise BundleError(f"this bundle has no {precision} graphs (it has {', '.join(self.precisions)}); "
                              f"export it again with `ezm-export --{precision}`")
        return PRECISIONS[precision]

    def task(self, task: int | str) -> TaskSpec:
        """The task by index or env id; BundleError listing the known ones otherwise."""
        for spec in self.tasks:
            if task in (spec.index, spec.env_id):
                return spec
        raise BundleError(f"task {task!r} is not in this bundle; it knows "
                          + ", ".join(f"{spec.index}: {spec.env_id}" for spec in self.tasks))

    def to_json(self) -> str:
        return _pretty_json(sealed(dataclasses.asdict(self))) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and check manifest.json; BundleError naming the field on any problem."""
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except json.JSONDecodeError as error:
            raise BundleError(f"{MANIFEST_FILE} is not valid JSON ({error})") from None
        except RecursionError:
            raise BundleError(f"{MANIFEST_FILE} is nested too deeply to be a manifest") from None
        except ValueError as error:  # an integer of more digits than Python converts
            raise BundleError(f"{MANIFEST_FILE} is not a manifest ({error})") from None
        if not isinstance(data, dict):
            raise BundleError(f"{MANIFEST_FILE} must hold a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(f"{MANIFEST_FILE}: format version {version!r} is not supported; this planner reads "
                              f"version {FORMAT_VERSION} (export the model again with a matching ezm-export)")
        fields = _Fields(data, "")
        manifest = cls(
            format_version=version,
            model_id=fields.get("model_id", str),
            created_utc=fields.get("created_utc", str),
            obs_dim=fields.get("obs_dim", int),
            latent_dim=fields.get("latent_dim", int),
            action_dim=fields.get("action_dim", int),
            tasks=tuple(_task(item, f"tasks[{i}]") for i, item in enumerate(fields.get("tasks", list))),
            robot=_robot(fields.get("robot", dict)),
            obs_normalisation=fields.get("obs_normalisation", dict),
            discount=fields.get("discount", float),
            value_support=fields.get("value_support", dict),
            reward_support=fields.get("reward_support", dict),
            value_transform=fields.get("value_transform", str),
            search=fields.get("search", dict),
            training=fields.get("training", dict),
            export=fields.get("export", dict),
            files={name: _file(entry, f"files.{name}") for name, entry in fields.get("files", dict).items()},
            int8=_int8(fields.get("int8", dict)) if data.get("int8", {}) != {} else {},  # {}: float32 only
        )
        manifest.check()
        stored = data.get(CHECKSUM_KEY)
        if stored is None:
            raise BundleError(f"{MANIFEST_FILE} has no {CHECKSUM_KEY}: it was written before manifests carried "
                              f"their own checksum; export it again, or seal it with tools/seal_manifest.py")
        if stored != manifest_digest(data):
            raise BundleError(f"{MANIFEST_FILE} does not match its {CHECKSUM_KEY}: it is corrupt or was edited "
                              f"after export (export it again)")
        return manifest

    def check(self) -> None:
        """Internal consistency: dims, task indices and layouts, robot arrays, search keys, listed graphs."""
        problems = []
        if not self.tasks:
            problems.append("tasks is empty")
        indices = [spec.index for spec in self.tasks]
        if len(set(indices)) != len(indices) or min(indices, default=0) < 0:
            problems.append(f"task indices must be distinct and >= 0, got {indices}")
        for spec in self.tasks:
            if not 0 < spec.obs_size <= self.obs_dim:
                problems.append(f"task {spec.env_id}: obs_size {spec.obs_size} is not in [1, obs_dim {self.obs_dim}]")
            covered = [(seg.start, seg.size) for seg in spec.layout]
            starts = [0] + [start + size for start, size in covered[:-1]]
            if [start for start, _ in covered] != starts or sum(size for _, size in covered) != spec.obs_size:
                problems.append(f"task {spec.env_id}: layout does not tile [0, {spec.obs_size}) in order")
        robot = self.robot
        for name in ("joint_names", "ctrl_low", "ctrl_high", "hold_action"):
            if len(getattr(robot, name)) != self.action_dim:
                problems.append(f"robot.{name} has {len(getattr(robot, name))} entries, action_dim is {self.action_dim}")
        for name in ("kp", "kd"):  # both recorded or neither (an old bundle)
            values = getattr(robot, name)
            if len(values) not in (0, self.action_dim) or len(robot.kp) != len(robot.kd):
                problems.append(f"robot.{name} has {len(values)} entries: none, or one per joint in kp and kd")
            elif any(not 0.0 <= v <= MAX_GAIN for v in values):
                problems.append(f"robot.{name} must be in [0, {MAX_GAIN:g}]")
        if any(low >= high for low, high in zip(robot.ctrl_low, robot.ctrl_high)):
            problems.append("robot.ctrl_low must be below robot.ctrl_high for every joint")
        missing = [key for key in SEARCH_KEYS + ("widen_at_eval",) if key not in self.search]
        if missing:
            problems.append(f"search lacks {', '.join(missing)}")
        problems += search_settings.problems(self.search, prefix="search.")
        if not 0.0 < self.discount <= 1.0:
            problems.append(f"discount must be in (0, 1], got {self.discount}")
        if any(not -1.0 <= a <= 1.0 for a in robot.hold_action):
            problems.append("robot.hold_action must be a normalised action, in [-1, 1]")
        if not 0.0 < robot.control_dt_s <= 1.0:
            problems.append(f"robot.control_dt_s must be in (0, 1] s, got {robot.control_dt_s}")
        if not 0 < len(self.model_id) <= MAX_MODEL_ID:
            problems.append(f"model_id must have 1 to {MAX_MODEL_ID} characters, got {len(self.model_id)}")
        if self.search.get("root_prior", "uniform") not in ("uniform", "proposal"):
            problems.append(f"search.root_prior must be 'uniform' or 'proposal', got {self.search['root_prior']!r}")
        for name in GRAPH_FILES + (INT8_GRAPH_FILES if self.int8 else ()):
            if name not in self.files:
                problems.append(f"files does not list {name}")
        # Only the bundle's own file names: a listed path ("../x", "/proc/...") would be opened and read.
        strangers = sorted(set(self.files) - set(BUNDLE_FILES))
        if strangers:
            problems.append(f"files lists {strangers[:3]!r}, which are not bundle files ({', '.join(BUNDLE_FILES)})")
        if problems:
            raise BundleError(f"{MANIFEST_FILE}: " + "; ".join(problems))

    def search_kwargs(self) -> dict[str, Any]:
        """The recorded settings as `gumbel_search` keyword arguments (widen not included)."""
        return {**{key: self.search[key] for key in SEARCH_KEYS},
                **{key: self.search.get(key, default) for key, default in OPTIONAL_SEARCH_KEYS.items()}}


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (the graphs of the default model are ~50 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def robot_mismatches(robot: RobotSpec, joint_names: Sequence[str], ctrl_low: Sequence[float],
                     ctrl_high: Sequence[float], *, tolerance: float = 1e-6) -> list[str]:
    """Differences between the robot a bundle was trained for and the one it is about to drive, one line
    each (joint order, count, ctrl ranges); empty when they agree. A planner refuses to start otherwise."""
    lines = []
    if tuple(joint_names) != robot.joint_names:
        expected, got = robot.joint_names, tuple(joint_names)
        lines.append(f"joint names: bundle has {len(expected)}, robot has {len(got)}")
        for i in range(max(len(expected), len(got))):
            a = expected[i] if i < len(expected) else "-"
            b = got[i] if i < len(got) else "-"
            if a != b:
                lines.append(f"  joint {i}: bundle {a!r}, robot {b!r}")
        return lines
    for i, name in enumerate(joint_names):
        for side, bundle_value, robot_value in (("low", robot.ctrl_low[i], ctrl_low[i]),
                                                ("high", robot.ctrl_high[i], ctrl_high[i])):
            if abs(bundle_value - robot_value) > tolerance:
                lines.append(f"  ctrl {side} of {name}: bundle {bundle_value:.6g}, robot {robot_value:.6g}")
    return lines


def manifest_digest(data: Mapping[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON (sorted keys, no spaces), without its CHECKSUM_KEY."""
    body = {key: value for key, value in data.items() if key != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sealed(data: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest object with its CHECKSUM_KEY (re)computed."""
    return {**{key: value for key, value in data.items() if key != CHECKSUM_KEY}, CHECKSUM_KEY: manifest_digest(data)}


def _pretty_json(value: Any, indent: str = "") -> str:
    """JSON for people: an object or list that fits on a short line (a layout segment, a support) and
    every list of plain numbers stays on one line; larger objects and lists get one item per line."""
    compact = json.dumps(value, separators=(", ", ": "))
    plain_numbers = isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)
    if not isinstance(value, (dict, list, tuple)) or len(compact) <= 100 or plain_numbers:
        return compact
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {_pretty_json(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    return "[\n" + ",\n".join(inner + _pretty_json(item, inner) for item in value) + f"\n{indent}]"


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e400 parses to inf without passing through parse_constant
        raise BundleError(f"{MANIFEST_FILE} holds {literal}, out of float range: every number of a manifest is finite")
    return value


def _refuse_constant(name: str) -> float:
    raise BundleError(f"{MANIFEST_FILE} holds {name}: every number of a manifest is finite")


#: A servo gain past this (N·m/rad or N·m·s/rad) is a corrupt manifest, not a stiff robot (joint_servos: 1000).
MAX_GAIN = 10_000.0
MAX_MODEL_ID = 256  # characters: it is echoed in every planner status


class _Fields:
    """Typed access to one JSON object, naming the path of a missing or mistyped field."""

    def __init__(self, data: Mapping[str, Any], path: str):
        self.data, self.path = data, path

    def get(self, key: str, kind: type) -> Any:
        where = f"{self.path}{key}"
        if key not in self.data:
            raise BundleError(f"{MANIFEST_FILE}: field {where} is missing")
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise BundleError(f"{MANIFEST_FILE}: field {where} is out of range") from None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BundleError(f"{MANIFEST_FILE}: field {where} should be {kind.__name__}, got {type(value).__name__}")
        return value


def _object(item: Any, path: str) -> _Fields:
    if not isinstance(item, dict):
        raise BundleError(f"{MANIFEST_FILE}: {path} should be an object, got {type(item).__name__}")
    return _Fields(item, f"{path}.")


def _task(item: Any, path: str) -> TaskSpec:
    fields = _object(item, path)
    layout = tuple(ObsSegment(seg.get("name", str), seg.get("start", int), seg.get("size", int))
                   for seg in (_object(s, f"{path}.layout[{i}]") for i, s in enumerate(fields.get("layout", list))))
    return TaskSpec(fields.get("env_id", str), fields.get("index", int), fields.get("obs_size", int), layout)


def _floats(fields: _Fields, key: str) -> tuple[float, ...]:
    values = fields.get(key, list)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise BundleError(f"{MANIFEST_FILE}: field {fields.path}{key} should hold numbers")
    try:
        return tuple(float(v) for v in values)
    except OverflowError:
        raise BundleError(f"{MANIFEST_FILE}: field {fields.path}{key} holds a number out of range") from None


def _robot(item: Any) -> RobotSpec:
    fields = _object(item, "robot")
    names = fields.get("joint_names", list)
    if not all(isinstance(name, str) for name in names):
        raise BundleError(f"{MANIFEST_FILE}: field robot.joint_names should hold strings")
    gains = {key: _floats(fields, key) for key in ("kp", "kd") if key in fields.data}  # absent: an older bundle
    return RobotSpec(fields.get("name", str), tuple(names), _floats(fields, "ctrl_low"), _floats(fields, "ctrl_high"),
                     _floats(fields, "hold_action"), fields.get("control_dt_s", float), **gains)


def _int8(item: dict) -> dict:
    """The `int8` object, checked: its error per graph output is what the loader's self-test relies on."""
    fields = _object(item, "int8")
    fields.get("method", str)
    fields.get("onnxruntime", str)
    errors = _object(fields.get("parity_max_abs_error", dict), "int8.parity_max_abs_error")
    outputs = [f"initial.{name}" for name in INITIAL_OUTPUTS] + [f"recurrent.{name}" for name in RECURRENT_OUTPUTS]
    for key in outputs:
        if errors.get(key, float) < 0.0:
            raise BundleError(f"{MANIFEST_FILE}: field int8.parity_max_abs_error.{key} is negative")
    if "search_agreement" in item:  # informational; the exporter measures it on the finished bundle
        agreement = _object(item["search_agreement"], "int8.search_agreement")
        for key in ("roots", "same_candidate", "action_abs_diff_mean", "root_value_abs_diff_mean"):
            agreement.get(key, float)
    return dict(item)


def _file(item: Any, path: str) -> FileEntry:
    fields = _object(item, path)
    return FileEntry(fields.get("size", int), fields.get("sha256", str))
