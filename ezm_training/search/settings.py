"""The ranges of the search's settings, where they are checked: the learner's config (ezm_training.config)
refuses a setting that the planner's bundle loader (ezm_ros.manifest) would refuse, from this one table.

Outside these ranges a search hangs (1e9 simulations), has nothing to search (0), or breaks its own
arithmetic (a clip at or beyond tanh's range makes atanh infinite; a discount of NaN). Plain Python, like
the rest of the search's contracts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

MAX_SIMULATIONS: Final = 4096  # per search; a 50 Hz planner on any CPU does far fewer

#: name -> (kind, low, high), inclusive; the names of `gumbel_search`'s keyword arguments.
RANGES: Final[dict[str, tuple[type, float, float]]] = {
    "num_simulations": (int, 1, MAX_SIMULATIONS), "num_candidates": (int, 1, 256),
    "num_policy_actions": (int, 0, 256), "num_top_actions": (int, 1, 256), "children_per_node": (int, 1, 64),
    "widen_std_factor": (float, 1.0, 100.0), "discount": (float, 1e-6, 1.0), "c_visit": (float, 0.0, 1e6),
    "c_scale": (float, 0.0, 1e6), "value_minmax_delta": (float, 1e-12, 1e6),
    "action_clip": (float, 1e-6, 1.0 - 1e-9),
}


def problems(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """What is wrong with the settings that are present (a missing one is the caller's to report)."""
    found = []
    for key, (kind, low, high) in RANGES.items():
        if key not in settings:
            continue
        value = settings[key]
        typed = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not typed or not low <= value <= high:
            found.append(f"{prefix}{key} must be {'an integer' if kind is int else 'a number'} in "
                         f"[{low:g}, {high:g}], got {value!r}")
    for part in ("num_top_actions", "num_policy_actions"):
        if not found and settings.get(part, 0) > settings.get("num_candidates", 0):
            found.append(f"{prefix}{part} must not exceed {prefix}num_candidates")
    return found
