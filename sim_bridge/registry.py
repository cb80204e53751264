"""Env id -> robot and task, as data; gymnasium registration.

Task classes are named by import strings and imported only when used, so listing ids costs nothing and a
task module that is missing (or broken) affects only its own ids. Ids follow HumanoidBench:
`<robot>-<task>-v0`, e.g. `h1-walk-v0`. A task's index is its position in `TASK_IDS`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Final

import gymnasium

from sim_bridge.tasks.base import DEFAULT_EPISODE_STEPS

if TYPE_CHECKING:
    from sim_bridge.robot import Robot
    from sim_bridge.tasks.base import Task

ENV_ENTRY_POINT: Final = "sim_bridge.env:HumanoidEnv"
ENV_VERSION: Final = "v0"


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """One task: its name and where its class lives (`module:Class`)."""

    name: str
    entry_point: str

    @property
    def module(self) -> str:
        return self.entry_point.partition(":")[0]

    def load(self) -> type[Task]:
        module_name, _, class_name = self.entry_point.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


#: HumanoidBench's 14 h1 locomotion tasks, in the order of HB's benchmark tables.
TASKS: Final = {
    entry.name: entry
    for entry in (
        TaskEntry("stand", "sim_bridge.tasks.locomotion:Stand"),
        TaskEntry("walk", "sim_bridge.tasks.locomotion:Walk"),
        TaskEntry("run", "sim_bridge.tasks.locomotion:Run"),
        TaskEntry("hurdle", "sim_bridge.tasks.hurdle:Hurdle"),
        TaskEntry("crawl", "sim_bridge.tasks.crawl:Crawl"),
        TaskEntry("stair", "sim_bridge.tasks.stair_slide:Stair"),
        TaskEntry("slide", "sim_bridge.tasks.stair_slide:Slide"),
        TaskEntry("sit_simple", "sim_bridge.tasks.sit:SitSimple"),
        TaskEntry("sit_hard", "sim_bridge.tasks.sit:SitHard"),
        TaskEntry("balance_simple", "sim_bridge.tasks.balance:BalanceSimple"),
        TaskEntry("balance_hard", "sim_bridge.tasks.balance:BalanceHard"),
        TaskEntry("pole", "sim_bridge.tasks.pole:Pole"),
        TaskEntry("maze", "sim_bridge.tasks.maze:Maze"),
        TaskEntry("reach", "sim_bridge.tasks.reach:Reach"),
    )
}
#: Robots by id prefix; imported lazily as well (`module:attribute`).
ROBOTS: Final = {"h1": "sim_bridge.h1:H1"}


def env_id(robot: str, task: str) -> str:
    return f"{robot}-{task}-{ENV_VERSION}"


#: Every env id, robots outer, tasks inner.
TASK_IDS: Final = tuple(env_id(robot, task) for robot in ROBOTS for task in TASKS)


def robot_tasks(robot: str) -> dict[str, str]:
    """Short task name -> env id of every task on `robot`: `{"stand": "h1-stand-v0", ...}`."""
    return {task: env_id(robot, task) for task in TASKS}


def parse_env_id(env_id_: str) -> tuple[str, str]:
    """`"h1-walk-v0"` -> `("h1", "walk")`; an unknown id raises ValueError listing the known ones."""
    robot, sep, rest = env_id_.partition("-")
    task, sep2, version = rest.rpartition("-")
    if not (sep and sep2) or env_id_ not in TASK_IDS or version != ENV_VERSION:
        raise ValueError(f"unknown env id {env_id_!r}; known ids: {', '.join(TASK_IDS)}")
    return robot, task


def get_robot(name: str) -> Robot:
    if name not in ROBOTS:
        raise ValueError(f"unknown robot {name!r}; known robots: {', '.join(ROBOTS)}")
    module_name, _, attribute = ROBOTS[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_task_entry(name: str) -> TaskEntry:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def make_task(name: str, **kwargs: object) -> Task:
    """A fresh task instance by name (`"walk"`) or env id (`"h1-walk-v0"`)."""
    if name in TASK_IDS:
        name = parse_env_id(name)[1]
    return get_task_entry(name).load()(**kwargs)


def task_module_available(name: str) -> bool:
    """Whether the task's module exists. A module that exists but fails to import raises (a real bug)."""
    entry = get_task_entry(name)
    try:
        entry.load()
    except ModuleNotFoundError as err:
        if err.name == entry.module:
            return False
        raise
    return True


def available_task_ids(robot: str = "h1") -> tuple[str, ...]:
    """Env ids whose task module exists, in `TASK_IDS` order (others are being written)."""
    return tuple(env_id(robot, task) for task in TASKS if task_module_available(task))


def env_spec(env_id_: str) -> gymnasium.envs.registration.EnvSpec:
    """The gymnasium spec of an id: our entry point, HB's 1000-step limit (gymnasium's TimeLimit)."""
    robot, task = parse_env_id(env_id_)
    return gymnasium.envs.registration.EnvSpec(
        id=env_id_,
        entry_point=ENV_ENTRY_POINT,
        max_episode_steps=DEFAULT_EPISODE_STEPS,
        kwargs={"task": task, "robot": robot},
    )


def register_envs() -> None:
    """Register every id with gymnasium; idempotent, and restores ours if another package took an id.

    (HumanoidBench registers the same ids when imported; `sim_bridge.make` does not go through the
    global registry, so it is unaffected either way.)
    """
    for id_ in TASK_IDS:
        spec = env_spec(id_)
        existing = gymnasium.registry.get(id_)
        if existing is None:
            gymnasium.register(id=spec.id, entry_point=spec.entry_point,
                               max_episode_steps=spec.max_episode_steps, kwargs=spec.kwargs)
        elif existing.entry_point != spec.entry_point:
            gymnasium.registry[id_] = spec  # quietly take the id back (register() would warn)
