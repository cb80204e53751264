"""The two inference graphs as ONNX: `initial_inference` (observation, task -> latent, value, policy) and
`recurrent_inference` (latent, action, task -> next latent, reward, value, policy), with one dynamic batch
axis and every other dimension written into the graph, so the loader can check widths against the manifest."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch

from ezm_ros.manifest import BATCH_AXIS, INITIAL_OUTPUTS, RECURRENT_OUTPUTS
from ezm_training.networks import WorldModel

DEFAULT_OPSET = 17  # LayerNormalization is a single op from opset 17 on


class InitialGraph(torch.nn.Module):
    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, obs, task):
        return tuple(self.model.initial_inference(obs, task)[: len(INITIAL_OUTPUTS)])


class RecurrentGraph(torch.nn.Module):
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


def export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], output_names: Sequence[str],
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
