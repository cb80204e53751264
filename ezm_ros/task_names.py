"""Task names as users type them: the short name ("walk") or the env id ("h1-walk-v0")."""

from __future__ import annotations

from collections.abc import Mapping


class TaskNameError(ValueError):
    """An unknown task name; the message lists the known ones."""


def short_task_name(task: str, known: Mapping[str, str]) -> str:
    """`"h1-walk-v0"` or `"walk"` -> `"walk"`; raises TaskNameError unless it is one of `known`.

    known: short name -> env id of every task the caller can run: the planner's model's tasks
    (`TaskSpec.name`), the simulator's registry. The caller's list, so the names need no parsing here.
    """
    name = task.strip()
    by_env_id = {env_id: short for short, env_id in known.items()}
    name = by_env_id.get(name, name)
    if name not in known:
        raise TaskNameError(f"unknown task {task!r}; known: {', '.join(known)}")
    return name
