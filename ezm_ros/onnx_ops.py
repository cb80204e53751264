"""The operators of an ONNX graph, read from its protobuf without the `onnx` package (not on the robot path).

The bundle loader uses them to tell a graph's kind: an int8 graph (ezm_training.export.int8: dynamic
quantisation) carries integer-arithmetic operators, a float32 graph none. Only the main graph's nodes are
read (ModelProto.graph = field 7, GraphProto.node = field 1, NodeProto.op_type = field 4; onnx.proto3);
the exporters write no subgraphs or functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Iterator

#: Operators that only a quantised graph has (the ONNX operator set's integer and quantisation operators).
INT8_OPS: Final = frozenset({
    "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "MatMulInteger", "ConvInteger",
    "QLinearMatMul", "QLinearConv",
})

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5  # protobuf wire types
_MODEL_GRAPH, _GRAPH_NODE, _NODE_OP_TYPE = 7, 1, 4


class OnnxFormatError(ValueError):
    """The bytes are not a well-formed protobuf message where an ONNX model has one."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise OnnxFormatError("a varint runs past the end of the message")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, payload) of a message: a memoryview for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise OnnxFormatError(f"field {number} claims {size} bytes past the end of the message")
            yield number, wire, data[pos:pos + size]
            pos += size
        else:
            raise OnnxFormatError(f"field {number} has wire type {wire}, which protobuf 3 does not write")


def op_types(path: str | Path) -> set[str]:
    """The op types of the main graph's nodes. OnnxFormatError if the file is not a protobuf ONNX model."""
    data = memoryview(Path(path).read_bytes())
    graphs = [value for number, wire, value in _fields(data) if number == _MODEL_GRAPH and wire == _LEN]
    if len(graphs) != 1:
        raise OnnxFormatError(f"{len(graphs)} graphs where an ONNX model has one")
    ops = set()
    for number, wire, node in _fields(graphs[0]):
        if number == _GRAPH_NODE and wire == _LEN:
            for field, field_wire, value in _fields(node):
                if field == _NODE_OP_TYPE and field_wire == _LEN:
                    ops.add(bytes(value).decode("utf-8", errors="replace"))
    return ops


def graph_kind(path: str | Path) -> str:
    """"int8" for a graph with integer operators (INT8_OPS), else "fp32"."""
    return "int8" if op_types(path) & INT8_OPS else "fp32"
