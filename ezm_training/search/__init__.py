"""The sampled Gumbel search of EfficientZero V2 / EZ-M, batched over roots, for numpy and torch alike.

One implementation serves training (torch tensors, CPU or CUDA) and the deployment planner (numpy
arrays from onnxruntime): it is written against the Python array API via `array_api_compat` and imports
no framework. See docs/search.md.

Public API: `gumbel_search`, the contracts `RootOutput`, `RecurrentOutput`, `RecurrentFn`,
`SearchOutput`, the key helpers `root_keys` and `fold_in`, and `phase_schedule` (for budget planning).
"""

from ezm_training.search.policy import gumbel_search
from ezm_training.search.rng import fold_in, root_keys
from ezm_training.search.seq_halving import PhaseStep, phase_schedule
from ezm_training.search.contracts import RecurrentFn, RecurrentOutput, RootOutput, SearchOutput

__all__ = [
    "PhaseStep",
    "RecurrentFn",
    "RecurrentOutput",
    "RootOutput",
    "SearchOutput",
    "fold_in",
    "gumbel_search",
    "phase_schedule",
    "root_keys",
]
