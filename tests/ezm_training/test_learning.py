"""The learner learns: a short run on an easy task ends far above where its initial policy starts.

gymnasium's InvertedPendulum-v5 (reward 1 per step while the pole stands, 1000 at most) through the same
collector, search, replay, reanalysis and learner as HumanoidBench, with the `fast` preset. Seen here:
a = 0 earns 25 and random actions 3, the untrained policy 8-25; after 1,500 updates (about 2.5 minutes on
one core) evaluations were 64 and 195 (two seeds, std floor e^-5) and 105 (seed 1, the preset's floor
e^-3), still rising. The test asks for at least 40 and twice
the initial policy's return, so it fails when the learner stops learning (a flipped sign in a loss or a
target, a search that ignores its values, actors that never get new weights). Bang-bang pushes topple the
pole within 2 steps, so it also fails if the policy-std loop (docs/design.md) comes back: with the chosen-
action update and a uniform prior the policy mean walked to the tanh limits in two of three runs (99-100 %
saturated, return 2). Saturated actions must stay under 5 % at every logged window, and the std inside
its parameterisation's bounds.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from ezm_training.config import EZMConfig
from ezm_training.evaluate import evaluate
from ezm_training.trainer import Trainer

TASK = "gym:InvertedPendulum-v5"
UPDATES = 1_500


@pytest.mark.timeout(600)
def test_inverted_pendulum_is_learned(tmp_path):
    cfg = EZMConfig.from_preset("fast", tasks=TASK, seed=1, training_steps=UPDATES,
                                transitions_per_task=2 * UPDATES, recent_window_per_task=2 * UPDATES,
                                eval_interval=UPDATES, checkpoint_interval=UPDATES, tensorboard=False)
    trainer = Trainer(cfg, tmp_path / "run", num_workers=0, progress=False)
    initial = evaluate(cfg, trainer.learner.target_model, 3, seed=99, num_workers=0)[0].mean_return
    trainer.run()
    final = evaluate(cfg, trainer.learner.target_model, 3, seed=99, num_workers=0)[0].mean_return

    assert final >= max(2.0 * initial, 40.0), (initial, final)
    with open(tmp_path / "run" / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    std_bound = math.exp(cfg.policy_log_std_max) * (1 + 1e-5)
    acting_std = [float(row["act/policy_std"]) for row in rows if row["act/policy_std"] not in ("", "nan")]
    assert acting_std and max(acting_std) <= std_bound
    saturated = [float(row["act/saturated"]) for row in rows if row["act/saturated"] not in ("", "nan")]
    assert max(saturated) <= 0.05, saturated
    assert max(float(row["target/policy_std"]) for row in rows) <= std_bound
    widened = np.array([float(row["target/chosen_widened"]) for row in rows])
    assert 0.0 < widened.mean() < 1.0  # the search chooses between π's own and widened candidates
