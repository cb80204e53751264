"""Load a model bundle (see `ezm_ros.manifest`) onto onnxruntime, checking it against its manifest first.

    bundle = load_bundle("models/ezm-h1")                 # CPU, one intra-op thread
    root = bundle.initial(obs, task)                      # RootOutput of numpy arrays
    step = bundle.recurrent(latent, action, task)         # RecurrentOutput

Loading refuses a bundle, with a BundleError naming the problem, when: manifest.json is missing or not
valid; its format version is not this planner's; a listed file is missing, truncated or changed (size,
then sha256); a graph is not loadable ONNX; a graph's inputs or outputs disagree with the manifest (names,
dtypes, widths); or the graphs do not reproduce the exporter's torch outputs stored in parity.npz.

Precision. `RuntimeSettings(precision="int8")` runs the bundle's int8 graphs (`ezm-export --int8`): weights
in int8, activations quantized per call, on onnxruntime's integer kernels, several times faster on a CPU
with VNNI (BENCHMARKS.md, planner latency). They are an approximation of the float32 model: the manifest
records their error against torch and how often the search picks the same action, and the load-time
self-test allows them INT8_SELF_TEST_FACTOR times the error the exporter measured, so a CPU whose integer
kernels round differently enough to matter refuses the int8 graphs instead of running them.

Hot path: `recurrent_fn(task)` returns the model as a search `RecurrentFn` with the task bound. It runs
through onnxruntime I/O bindings whose outputs are preallocated per batch size, so a control step
allocates no output arrays; those outputs are overwritten by the next call of the same size (the search
copies them into its tree at once). `initial` and `recurrent` return fresh arrays.

numpy and onnxruntime only: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from ezm_ros.manifest import (
    BATCH_AXIS,
    INITIAL_INPUTS,
    INITIAL_OUTPUTS,
    MANIFEST_FILE,
    GRAPH_FILES,
    PARITY_FILE,
    PARITY_TOLERANCE,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
    BundleError,
    Manifest,
    file_sha256,
)
from ezm_ros.onnx_ops import OnnxFormatError, graph_kind
from ezm_training.search import RecurrentFn, RecurrentOutput, RootOutput

# The CUDA provider may run matmuls in TF32 and fuse differently; parity there is a sanity check only.
PARITY_TOLERANCE_CUDA = 1e-2
# A 14-task manifest is ~0.1 MiB; reading more than this is an attack or a wrong file, not a bundle.
MAX_MANIFEST_BYTES = 16 << 20
#: Any other bundle file: the EZ-M size's float32 graphs are about 64 MB; a listed file above this is refused
#: before anything reads it (hashing a 3 GB file took 6.7 s).
MAX_BUNDLE_FILE_BYTES = 1 << 30
# int8 graphs must reproduce the exporter's torch outputs within this many times the int8 error the
# exporter measured on the same inputs (its machine's integer kernels), plus INT8_SELF_TEST_SLACK.
INT8_SELF_TEST_FACTOR = 2.0
INT8_SELF_TEST_SLACK = 1e-3
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


@dataclass(frozen=True)
class RuntimeSettings:
    """How the graphs run. One intra-op thread by default: at batch 1 to 16 a second thread buys little
    and competes with the rest of the robot's processes (BENCHMARKS.md, planner latency)."""

    device: str = "cpu"  # "cpu" or "cuda" (needs the onnxruntime-gpu build: pip install .[robot-gpu])
    precision: str = "fp32"  # "fp32", or "int8" where the bundle has int8 graphs (CPU only; module docstring)
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    # onnxruntime's worker threads spin while waiting for work (its default): lower latency with more than
    # one thread, at the price of a busy core between calls.
    allow_spinning: bool = True

    def providers(self) -> list[str]:
        available = ort.get_available_providers()
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        if self.device == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise BundleError("device='cuda' needs onnxruntime-gpu (pip install .[robot-gpu] instead of "
                                  f".[robot]); this onnxruntime has {', '.join(available)}")
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        raise BundleError(f"unknown device {self.device!r}; use 'cpu' or 'cuda'")

    def check(self) -> None:
        """Refuse settings that cannot run, before anything is loaded."""
        if self.device not in ("cpu", "cuda"):
            raise BundleError(f"unknown device {self.device!r}; use 'cpu' or 'cuda'")
        if self.precision == "int8" and self.device != "cpu":
            raise BundleError("precision 'int8' is for CPUs (the integer kernels it was measured with); use "
                              "precision 'fp32' on cuda")
        self.providers()  # cuda without the GPU build

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        return options


class _Graph:
    """One ONNX graph on onnxruntime: `run` writes into output buffers preallocated per batch size (the
    planner's few sizes), `run_copy` returns fresh arrays for any batch size."""

    def __init__(self, session: ort.InferenceSession, output_widths: Sequence[tuple[int, ...]]):
        self.session = session
        self.input_names = tuple(i.name for i in session.get_inputs())
        self.input_types = tuple(_ONNX_TYPES[i.type] for i in session.get_inputs())
        self.output_names = tuple(o.name for o in session.get_outputs())
        self._output_widths = tuple(output_widths)
        self._bindings: dict[int, tuple[ort.IOBinding, tuple[np.ndarray, ...]]] = {}

    def run(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs for `inputs` (contiguous arrays of the graph's dtypes), in reused buffers."""
        rows = inputs[0].shape[0]
        entry = self._bindings.get(rows)
        if entry is None:
            entry = self._bindings[rows] = self._bind_outputs(rows)
        binding, outputs = entry
        for name, value in zip(self.input_names, inputs):
            binding.bind_cpu_input(name, value)
        self.session.run_with_iobinding(binding)
        return outputs

    def run_copy(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs as fresh arrays, converting the inputs to the graph's dtypes as needed."""
        feed = {name: np.ascontiguousarray(x, dtype=kind) for name, x, kind in zip(self.input_names, inputs,
                                                                                  self.input_types)}
        return tuple(self.session.run(None, feed))

    def _bind_outputs(self, rows: int) -> tuple[ort.IOBinding, tuple[np.ndarray, ...]]:
        binding = self.session.io_binding()
        outputs = tuple(np.empty((rows,) + width, np.float32) for width in self._output_widths)
        for name, buffer in zip(self.output_names, outputs):
            binding.bind_output(name, "cpu", 0, np.float32, buffer.shape, buffer.ctypes.data)
        return binding, outputs


class Bundle:
    """A checked bundle with warm onnxruntime sessions. Use `load_bundle`."""

    def __init__(self, path: Path, manifest: Manifest, initial: _Graph, recurrent: _Graph, settings: RuntimeSettings):
        self.path, self.manifest, self.settings = path, manifest, settings
        self.graph_files = manifest.graph_files(settings.precision)
        self._initial, self._recurrent = initial, recurrent
        self._task_rows = np.zeros(0, np.int64)

    def initial(self, obs: np.ndarray, task: np.ndarray) -> RootOutput:
        """obs [B, D] (padded to manifest.obs_dim), task [B] -> RootOutput of fresh float32 arrays."""
        return RootOutput(*self._initial.run_copy(obs, task))

    def recurrent(self, latent: np.ndarray, action: np.ndarray, task: np.ndarray) -> RecurrentOutput:
        """latent [B, L], action [B, A], task [B] -> RecurrentOutput of fresh float32 arrays."""
        return RecurrentOutput(*self._recurrent.run_copy(latent, action, task))

    def initial_into_buffers(self, obs: np.ndarray, task: np.ndarray) -> RootOutput:
        """`initial` for float32 obs [B, D] and int64 task [B], contiguous, returning reused buffers."""
        return RootOutput(*self._initial.run(obs, task))

    def recurrent_fn(self, task: int) -> RecurrentFn:
        """The recurrent graph as a search `RecurrentFn` for one task, on reused buffers (module docstring).

        Only the latest recurrent_fn's task holds: they share one task array, so a planner binds once per
        control step.
        """
        run = self._recurrent.run

        def recurrent_fn(latent: np.ndarray, action: np.ndarray) -> RecurrentOutput:
            rows = latent.shape[0]
            if rows > self._task_rows.shape[0]:
                self._task_rows = np.full(rows, task, np.int64)
            return RecurrentOutput(*run(np.ascontiguousarray(latent, np.float32),
                                        np.ascontiguousarray(action, np.float32), self._task_rows[:rows]))

        self._task_rows[:] = task
        return recurrent_fn

    def self_test(self, tolerance: float | None = None) -> dict[str, float]:
        """Run both graphs on parity.npz's inputs and compare with the exporter's torch outputs.

        Returns the max abs error per output; BundleError when |got − expected| > tol · (1 + |expected|)
        anywhere (tol: PARITY_TOLERANCE on CPU, the exporter's own check). int8 graphs instead get
        INT8_SELF_TEST_FACTOR × the exporter's int8 error of that output + INT8_SELF_TEST_SLACK · (1 + |expected|),
        and `tolerance` does not apply to them.
        """
        if tolerance is None:
            tolerance = PARITY_TOLERANCE_CUDA if self.settings.device == "cuda" else PARITY_TOLERANCE
        int8_errors = self.manifest.int8["parity_max_abs_error"] if self.settings.precision == "int8" else None
        with np.load(self.path / PARITY_FILE) as data:
            arrays = {key: data[key] for key in data.files}
        errors = {}
        initial_file, recurrent_file = self.graph_files
        for prefix, file, graph, inputs, outputs in (
                ("initial", initial_file, self._initial, INITIAL_INPUTS, INITIAL_OUTPUTS),
                ("recurrent", recurrent_file, self._recurrent, RECURRENT_INPUTS, RECURRENT_OUTPUTS)):
            got = graph.run_copy(*(arrays[f"{prefix}.{name}"] for name in inputs))
            for name, value in zip(outputs, got):
                key, expected = f"{prefix}.{name}", arrays[f"{prefix}.out.{name}"]
                error = np.abs(value - expected)
                errors[key] = float(error.max()) if error.size else 0.0
                if int8_errors is None:
                    allowed, rule = tolerance * (1.0 + np.abs(expected)), f"tolerance {tolerance:g}"
                else:
                    recorded = float(int8_errors[key])
                    allowed = INT8_SELF_TEST_FACTOR * recorded + INT8_SELF_TEST_SLACK * (1.0 + np.abs(expected))
                    rule = (f"int8: the exporter measured {recorded:.3g} with onnxruntime "
                            f"{self.manifest.int8['onnxruntime']}, this is {ort.__version__}; this CPU's integer "
                            "kernels or this onnxruntime round differently: use precision fp32 here")
                if not np.all(error <= allowed):
                    raise BundleError(f"parity self-test failed: {prefix} output {name} ({file}) differs from "
                                      f"the exporter's torch output by up to {error.max():.3g} ({rule}); device "
                                      f"{self.settings.device}")
        return errors


def load_bundle(path: str | Path, settings: RuntimeSettings = RuntimeSettings(), *, self_test: bool = True) -> Bundle:
    """Check the bundle at `path` against its manifest and open warm sessions; BundleError on any problem."""
    path = Path(path)
    manifest = read_manifest(path)
    settings.check()
    initial_file, recurrent_file = manifest.graph_files(settings.precision)
    check_files(path, manifest)
    for name in (initial_file, recurrent_file):
        _check_kind(path / name, settings.precision)
    providers = settings.providers()
    options = settings.session_options()
    sessions = {name: _open_session(path / name, options, providers) for name in (initial_file, recurrent_file)}
    dims = {"D": manifest.obs_dim, "L": manifest.latent_dim, "A": manifest.action_dim}
    _check_io(initial_file, sessions[initial_file], dims,
              inputs={"obs": ("tensor(float)", "D"), "task": ("tensor(int64)", None)},
              outputs={"latent": "L", "value": None, "policy_mean": "A", "policy_std": "A"},
              input_order=INITIAL_INPUTS, output_order=INITIAL_OUTPUTS)
    _check_io(recurrent_file, sessions[recurrent_file], dims,
              inputs={"latent": ("tensor(float)", "L"), "action": ("tensor(float)", "A"), "task": ("tensor(int64)", None)},
              outputs={"next_latent": "L", "reward": None, "value": None, "policy_mean": "A", "policy_std": "A"},
              input_order=RECURRENT_INPUTS, output_order=RECURRENT_OUTPUTS)
    widths = {None: (), "L": (manifest.latent_dim,), "A": (manifest.action_dim,)}
    initial = _Graph(sessions[initial_file], [widths[w] for w in ("L", None, "A", "A")])
    recurrent = _Graph(sessions[recurrent_file], [widths[w] for w in ("L", None, None, "A", "A")])
    bundle = Bundle(path, manifest, initial, recurrent, settings)
    if self_test:
        bundle.self_test()
    return bundle


def _check_kind(graph: Path, precision: str) -> None:
    """BundleError unless the graph's operators are those of `precision` (an int8 graph in the float32 slot of
    a consistent manifest would otherwise load, and fail the parity self-test only when far enough off)."""
    try:
        kind = graph_kind(graph)
    except OnnxFormatError as err:
        raise BundleError(f"{graph.name} is not a loadable ONNX model ({err})") from None
    if kind != precision:
        raise BundleError(f"{graph.name} is an {kind} graph (its operators say so), listed as the {precision} "
                          f"graph: the manifest's file lists are wrong; export the bundle again")


def read_manifest(path: str | Path) -> Manifest:
    """Parse `path`/manifest.json (no file checks)."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a directory; a model bundle is the directory ezm-export writes")
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"missing file {MANIFEST_FILE} in {path}: not a model bundle (ezm-export writes one)")
    with open(manifest_path, "rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{manifest_path} is over {MAX_MANIFEST_BYTES >> 20} MiB: not a manifest")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BundleError(f"{manifest_path} is not UTF-8 text ({error})") from None
    return Manifest.from_json(text)


def check_files(path: Path, manifest: Manifest, verify_hashes: bool = True) -> None:
    """Every file the manifest lists (only the bundle's own names) is there with its size and
    (verify_hashes) its sha256; a link is allowed (`colcon build --symlink-install` links the shipped model),
    its target is what is checked. Sizes alone are cheap enough for a parameter callback; hashing a graph is not.
    The float32 graphs and parity.npz (the self-test's data) must be listed."""
    unlisted = [name for name in (*GRAPH_FILES, PARITY_FILE) if name not in manifest.files]
    if unlisted:
        raise BundleError(f"{MANIFEST_FILE} does not list {unlisted}: every bundle ezm-export writes has them "
                          f"(parity.npz is the data of the self-test at load)")
    for name, entry in manifest.files.items():
        if entry.size > MAX_BUNDLE_FILE_BYTES:
            raise BundleError(f"{name} is listed with {entry.size} bytes, over the {MAX_BUNDLE_FILE_BYTES >> 20} "
                              f"MiB a bundle file may have")
        file = path / name
        if not file.is_file():
            raise BundleError(f"missing file {name} (listed in {MANIFEST_FILE}) in {path}")
        size = file.stat().st_size
        if size < entry.size:
            raise BundleError(f"{name} is truncated: {size} of {entry.size} bytes (copy the bundle again)")
        if size != entry.size:
            raise BundleError(f"{name} has {size} bytes, {MANIFEST_FILE} says {entry.size}: it changed after export")
        if not verify_hashes:
            continue
        digest = file_sha256(file)
        if digest != entry.sha256:
            raise BundleError(f"{name} sha256 mismatch: {MANIFEST_FILE} says {entry.sha256[:16]}…, the file is "
                              f"{digest[:16]}…: it changed after export or is corrupt")


def _open_session(file: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(file), options, providers=providers)
    except Exception as error:  # onnxruntime raises several private exception types for a bad model
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BundleError(f"{file.name} is not a loadable ONNX model (truncated or corrupt?): {detail}") from None


def _check_io(name: str, session: ort.InferenceSession, dims: dict[str, int], *, inputs, outputs, input_order,
              output_order) -> None:
    """Names, order, dtypes and shapes [batch, width] of a graph's inputs and outputs against the manifest."""
    got_inputs = {i.name: i for i in session.get_inputs()}
    got_outputs = {o.name: o for o in session.get_outputs()}
    if tuple(got_inputs) != tuple(input_order) or tuple(got_outputs) != tuple(output_order):
        raise BundleError(f"{name} has inputs {list(got_inputs)} and outputs {list(got_outputs)}; expected "
                          f"{list(input_order)} and {list(output_order)}")
    for label, expected, got in (("input", inputs, got_inputs), ("output", outputs, got_outputs)):
        for key, spec in expected.items():
            kind, width = spec if label == "input" else ("tensor(float)", spec)
            node = got[key]
            if node.type != kind:
                raise BundleError(f"{name} {label} {key} is {node.type}, expected {kind}")
            shape = [BATCH_AXIS] + ([dims[width]] if width else [])
            dynamic_batch = bool(node.shape) and not isinstance(node.shape[0], int)
            if len(node.shape) != len(shape) or not dynamic_batch or (width and node.shape[1] != dims[width]):
                raise BundleError(f"{name} {label} {key} has shape {node.shape}; the manifest says "
                                  f"{shape} ({width} = {dims[width] if width else '-'})")
