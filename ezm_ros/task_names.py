"""Task names as users type them: the short name ("walk") or the env id ("h1-walk-v0"), and the bounds on
what a task command may carry. Anyone on the ROS graph can publish one, so nothing of it is echoed into
logs or statuses beyond a bounded excerpt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

#: Longest task name accepted (HumanoidBench's longest env id, h1-bookshelf_simple-v0, has 23 characters).
MAX_TASK_NAME_CHARS: Final = 64
#: A task command's free-form params: at most this many key/value pairs, each string at most MAX_PARAM_CHARS.
MAX_TASK_PARAMS: Final = 32
MAX_PARAM_CHARS: Final = 256
#: Characters of an untrusted string quoted in a message.
EXCERPT_CHARS: Final = 40


class TaskNameError(ValueError):
    """An unknown or oversized task name; the message lists the known ones."""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """repr of `text`, cut to `limit` characters with its full length said: safe to log, whoever sent it."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def short_task_name(task: str, known: Mapping[str, str]) -> str:
    """`"h1-walk-v0"` or `"walk"` -> `"walk"`; raises TaskNameError unless it is one of `known`.

    known: short name -> env id of every task the caller can run: the planner's model's tasks
    (`TaskSpec.name`), the simulator's registry. The caller's list, so the names need no parsing here.
    """
    if len(task) > MAX_TASK_NAME_CHARS:
        raise TaskNameError(f"task name {excerpt(task)} is longer than {MAX_TASK_NAME_CHARS} characters")
    name = task.strip()
    by_env_id = {env_id: short for short, env_id in known.items()}
    name = by_env_id.get(name, name)
    if name not in known:
        raise TaskNameError(f"unknown task {task!r}; known: {', '.join(known)}")
    return name


def params_problem(params: Sequence) -> str:
    """Why a task command's params (diagnostic_msgs/KeyValue[]) are refused, or "" if they are not."""
    if len(params) > MAX_TASK_PARAMS:
        return f"{len(params)} params; a task command carries at most {MAX_TASK_PARAMS}"
    for item in params:
        for field in (item.key, item.value):
            if len(field) > MAX_PARAM_CHARS:
                return f"param {excerpt(item.key)}: {excerpt(field)} is longer than {MAX_PARAM_CHARS} characters"
    return ""
