"""int8 graphs for a CPU without the time for float32 (onnxruntime dynamic quantization), and how far they
are from the float32 model: the max abs error of every output, and the search's agreement."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ezm_ros.manifest import (
    INITIAL_FILE,
    INITIAL_INPUTS,
    INITIAL_OUTPUTS,
    INT8_GRAPH_FILES,
    PARITY_FILE,
    RECURRENT_FILE,
    RECURRENT_INPUTS,
    RECURRENT_OUTPUTS,
)
from ezm_training.export import ExportError

INT8_METHOD = ("onnxruntime.quantization.quantize_dynamic: MatMul/Gemm weights int8 (symmetric, per output "
               "channel), activations uint8 quantized per call")


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quantize_int8(directory: Path, arrays: dict[str, np.ndarray]) -> dict:
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
    return {"method": INT8_METHOD, "onnxruntime": ort.__version__, "parity_max_abs_error": errors}


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
