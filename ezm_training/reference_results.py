"""Published EZ-M numbers drawn into our learning curves, and HumanoidBench's success bars.

Source of the EZ-M points: /work/shared/reference/ezm.md §2.6, derived from [EZM-res] =
liushaohuai5/EfficientZero_Multitask @ 4c1428f, results/ez-m-results.json (EZ-M, h1 without hands,
9-task multi-task run, 3 seeds). Each point is (env steps per task, mean return[, std]):
  - "@0.5M": mean ± std over 3 seeds of the eval point nearest 0.5M steps;
  - "final": mean of each seed's last 3 eval points, averaged; the curves end at 0.82–0.85M steps per
    task (§2.5), plotted here at 0.83M.
Each eval point of that file is one 1000-step episode per task ([EZM] ez/worker/eval_worker.py).

Success bars are read from sim_bridge's task classes (HumanoidBench 791405f), not copied here.
"""

from __future__ import annotations

from typing import NamedTuple

from ezm_training.envs import short_name

EZM_SOURCE = "EZ-M h1 (ez-m-results.json @4c1428f, via reference/ezm.md §2.6)"
EZM_FINAL_STEPS = 0.83e6  # the h1 EZ-M curves end at 0.82–0.85M steps per task (§2.5)


class ReferencePoint(NamedTuple):
    steps: float
    mean: float
    std: float | None


# task name (sim_bridge id without "h1-" and "-v0") -> points
EZM_H1: dict[str, tuple[ReferencePoint, ...]] = {
    "stand": (ReferencePoint(0.5e6, 797, 6), ReferencePoint(EZM_FINAL_STEPS, 772, None)),
    "walk": (ReferencePoint(0.5e6, 799, 16), ReferencePoint(EZM_FINAL_STEPS, 801, None)),
    "run": (ReferencePoint(0.5e6, 554, 72), ReferencePoint(EZM_FINAL_STEPS, 771, None)),
    "stair": (ReferencePoint(0.5e6, 317, 52), ReferencePoint(EZM_FINAL_STEPS, 430, None)),
    "crawl": (ReferencePoint(0.5e6, 675, 125), ReferencePoint(EZM_FINAL_STEPS, 821, None)),
    "pole": (ReferencePoint(0.5e6, 741, 190), ReferencePoint(EZM_FINAL_STEPS, 864, None)),
    "slide": (ReferencePoint(0.5e6, 295, 16), ReferencePoint(EZM_FINAL_STEPS, 541, None)),
    "hurdle": (ReferencePoint(0.5e6, 277, 62), ReferencePoint(EZM_FINAL_STEPS, 474, None)),
    "maze": (ReferencePoint(0.5e6, 381, 3), ReferencePoint(EZM_FINAL_STEPS, 377, None)),
}


def ezm_points(env_id: str) -> tuple[ReferencePoint, ...]:
    """The published EZ-M points of a task, () when EZ-M published none for it."""
    return EZM_H1.get(short_name(env_id), ()) if env_id.startswith("h1-") else ()


# TD-MPC2 on DMC at 100k env steps (action repeat 2), mean of 3 seeds: nicklashansen/tdmpc2
# results/cartpole-swingup.csv (790, 868, 860) and results/walker-walk.csv (948, 967, 971), mean ± sample std, via
# /work/shared/reference/ezm.md §3. The fast benchmarks' anchors (bench/learning.py).
TDMPC2_SOURCE = "TD-MPC2 @100k env steps (tdmpc2 results/*.csv, 3 seeds)"
TDMPC2_100K: dict[str, ReferencePoint] = {
    "dmc:cartpole-swingup": ReferencePoint(100_000, 839.3, 42.9),
    "dmc:walker-walk": ReferencePoint(100_000, 962.0, 12.3),
}


def success_bar(env_id: str) -> float:
    """HumanoidBench's success threshold on the episode return, from sim_bridge's task definition;
    NaN for tasks outside HumanoidBench (gym:, dmc:), which have none."""
    if not env_id.startswith("h1-"):
        return float("nan")
    from sim_bridge import registry

    return float(registry.make_task(env_id).success_bar)
