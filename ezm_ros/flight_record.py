"""Flight records: what an MCAP file of a run holds and how its messages are described.

A record is an MCAP file as rosbag2 writes it for ROS 2 (profile "ros2", message encoding "cdr", schema
encoding "ros2msg"): every message keeps the serialized bytes it had on the wire, and every schema is the
message's .msg definition with the definitions it uses appended, so `mcap`'s own tools, Foxglove and
rosbag2's MCAP plugin read it, and `mcap_ros2` decodes it without a ROS install.

The .msg files come from the interface packages' share directories (`share/<package>/msg/<Type>.msg`), which
both the ROS 2 wheels and a colcon or apt install carry.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Final

#: MCAP header profile and encodings of a ROS 2 record (the MCAP specification's registry).
PROFILE: Final = "ros2"
MESSAGE_ENCODING: Final = "cdr"
SCHEMA_ENCODING: Final = "ros2msg"
#: Separator between a definition and each definition it depends on (rosbag2 and the MCAP registry).
_SEPARATOR: Final = "=" * 80
_PRIMITIVES: Final = frozenset({
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
    "uint64", "string", "wstring"})


class DefinitionError(LookupError):
    """A message type whose .msg definition cannot be found."""


def message_class(type_name: str):
    """`sensor_msgs/msg/JointState` -> the rclpy message class (ImportError / AttributeError if not installed)."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _share_dirs() -> list[Path]:
    roots = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [root / "share" for root in [*roots, Path(sys.prefix)]]


def _msg_file(package: str, name: str) -> Path:
    for share in _share_dirs():
        path = share / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    raise DefinitionError(f"no definition of {package}/msg/{name} under {', '.join(map(str, _share_dirs()))}")


def _field_types(text: str, package: str) -> list[str]:
    """The complex types (package/Name) a .msg definition uses, in order of first use."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line.split()[0] or len(line.split()) < 2:
            continue
        if re.match(r"^[A-Za-z0-9_/]+(<=\d+)?(\[[^\]]*\])?\s+[A-Z0-9_]+\s*=", line):
            continue  # a constant
        base = re.sub(r"(<=\d+)?(\[[^\]]*\])?$", "", line.split()[0])
        base = re.sub(r"<=\d+$", "", base)
        if base in _PRIMITIVES:
            continue
        full = base if "/" in base else f"{package}/{base}"
        if full.count("/") == 2:  # pkg/msg/Name
            full = full.replace("/msg/", "/")
        if full not in found:
            found.append(full)
    return found


def message_definition(type_name: str) -> str:
    """The ros2msg schema of `type_name` (`pkg/msg/Name`): its .msg text, then each type it uses, once each,
    as `MSG: pkg/Name` sections."""
    package, _, name = type_name.split("/")
    top = _msg_file(package, name).read_text()
    sections, seen, queue = [], set(), _field_types(top, package)
    while queue:
        dependency = queue.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        dep_package, dep_name = dependency.split("/")
        text = _msg_file(dep_package, dep_name).read_text()
        sections.append(f"{_SEPARATOR}\nMSG: {dependency}\n{text}")
        queue.extend(t for t in _field_types(text, dep_package) if t not in seen)
    return "\n".join([top.rstrip("\n"), *sections]) + "\n" if sections else top
