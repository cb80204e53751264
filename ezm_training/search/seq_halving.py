"""Sequential halving at the root: a schedule computed before the search, and survivor ranking.

Sequential halving (Karnin et al. 2013; Gumbel MuZero Sec. 3) splits the budget of N simulations into
phases. A phase with m surviving candidates visits each of them max(1, ⌊N / (⌈log2 m0⌉ · m)⌋) times,
round-robin, then keeps the better half (at least 2). The last phase takes what is left, so the budget
is spent exactly; a step that would overrun it visits only the top-ranked survivors. This is mctx's
`get_sequence_of_considered_visits` and [EZ2] cy_mcts.py `ready_for_next_gumble_phase`: for N = 32 and
m0 = 16 the phases are 16×1, 8×1, 4×2.

A *phase step* is one round of that round-robin: every survivor it names gets one simulation. All of
them start from the same visit count, so a step's simulations go down different root children and can
run as one batched model call (see phase_step.py). Shapes: B roots, K candidates, m survivors.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass


from ezm_training.search._arrays import Array, namespace


@dataclass(frozen=True)
class PhaseStep:
    """One batched step of sequential halving.

    num_survivors: survivors in this phase (m).
    num_visited: survivors visited by this step, the top-ranked ones (= m except a budget-truncated step).
    prior_visits: visits each of them has before the step; bounds how deep this step's walks can go.
    halve_before: a new phase starts here: re-rank the survivors and keep the top `num_survivors`.
    """

    num_survivors: int
    num_visited: int
    prior_visits: int
    halve_before: bool


@functools.lru_cache(maxsize=64)  # a pure function of two ints, asked for on every search
def phase_schedule(num_simulations: int, num_top_actions: int) -> tuple[PhaseStep, ...]:
    """The phase steps spending exactly `num_simulations` over `num_top_actions` initial survivors."""
    if num_simulations < 1 or num_top_actions < 1:
        raise ValueError(f"need num_simulations, num_top_actions >= 1, got {num_simulations}, {num_top_actions}")
    num_phases = max(1, math.ceil(math.log2(num_top_actions)))
    min_survivors = min(2, num_top_actions)  # halving stops at 2 survivors (1 if there is only one)
    steps: list[PhaseStep] = []
    spent, prior_visits, survivors = 0, 0, num_top_actions
    while spent < num_simulations:
        visits_per_survivor = max(1, num_simulations // (num_phases * survivors))
        for round_index in range(visits_per_survivor):
            width = min(survivors, num_simulations - spent)
            steps.append(PhaseStep(survivors, width, prior_visits, halve_before=bool(steps) and round_index == 0))
            spent += width
            prior_visits += 1
            if spent == num_simulations:
                break
        survivors = max(min_survivors, survivors // 2)
    return tuple(steps)


def initial_survivors(gumbel: Array, num_top_actions: int) -> Array:
    """[B, m] candidate indices ranked by g + logit (logit 0), best first; ties keep index order.

    With Gumbel noise off ([EZ2] default) and m = K this is simply 0..K-1.
    """
    xp = namespace(gumbel)
    return xp.argsort(gumbel, axis=-1, descending=True, stable=True)[:, :num_top_actions]


def halve(survivors: Array, scores: Array, num_keep: int) -> Array:
    """[B, num_keep] the best survivors [B, m] by `scores` [B, K], best first; ties keep the old rank."""
    xp = namespace(scores)
    survivor_scores = xp.take_along_axis(scores, survivors, axis=-1)
    order = xp.argsort(survivor_scores, axis=-1, descending=True, stable=True)[:, :num_keep]
    return xp.take_along_axis(survivors, order, axis=-1)


def best_survivor(survivors: Array, scores: Array, visits: Array) -> Array:
    """[B] the candidate to act with: the top-scored survivor among those with the most visits.

    After a complete schedule every survivor has the same visits, and this is the top of a last halving
    ([EZ2] `get_best_actions` returns `selected_children_idx[0]`). After an early stop or a truncated
    step, restricting to the most-visited survivors keeps the choice among the best-evaluated ones
    (mctx `score_considered`).
    """
    xp = namespace(scores)
    survivor_visits = xp.take_along_axis(visits, survivors, axis=-1)
    most_visited = survivor_visits == xp.max(survivor_visits, axis=-1, keepdims=True)
    survivor_scores = xp.where(most_visited, xp.take_along_axis(scores, survivors, axis=-1), -float("inf"))
    best = xp.argmax(survivor_scores, axis=-1)
    return xp.take_along_axis(survivors, best[:, None], axis=-1)[:, 0]
