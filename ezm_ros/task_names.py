"""Task names as users type them: the short name ("walk") or the env id ("h1-walk-v0")."""

from __future__ import annotations

from collections.abc import Sequence

from sim_bridge import registry


class TaskNameError(ValueError):
    """An unknown task name; the message lists the known ones."""


def short_task_name(task: str, known: Sequence[str] | None = None) -> str:
    """`"h1-walk-v0"` or `"walk"` -> `"walk"`; raises TaskNameError unless it is in `known`.

    `known` defaults to every HumanoidBench h1 task; the planner passes the tasks its model knows.
    """
    known = tuple(registry.TASKS) if known is None else tuple(known)
    name = task.strip()
    if name in registry.TASK_IDS:
        name = registry.parse_env_id(name)[1]
    if name not in known:
        raise TaskNameError(f"unknown task {task!r}; known: {', '.join(known)}")
    return name
