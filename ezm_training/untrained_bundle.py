"""An UNTRAINED model bundle: a tiny WorldModel with random weights, exported by the real exporter.

For `ezm-export --untrained` and `ezm-sim` while the repository ships no trained model (both say so,
loudly), and for the ROS 2 stack's tests, which need a real bundle (real ONNX graphs, manifest, parity
data) but no trained behaviour.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ezm_ros.manifest import MANIFEST_FILE
from ezm_training.config import EZMConfig
from ezm_training.export.bundle import export_bundle
from ezm_training.networks import WorldModel
from ezm_training.envs import task_dims

#: All 14 HumanoidBench h1 tasks, so every task can be commanded.
DEFAULT_TASKS = "h1-all14"
_SEED = 0


def export_untrained_bundle(out_dir: Path, tasks: str = DEFAULT_TASKS, reuse: bool = True) -> Path:
    """The bundle at `out_dir`, exported now unless one is already there and `reuse` (repeated `ezm-sim`
    runs start at once); otherwise it replaces out_dir only once the new bundle is complete.

    tasks: an EZMConfig task set or comma-separated env ids. The manifest records 0 environment steps and
    the checkpoint "untrained (random weights)", which the planner reports.
    """
    out_dir = Path(out_dir)
    if reuse and (out_dir / MANIFEST_FILE).is_file():
        return out_dir
    torch.manual_seed(_SEED)
    cfg = EZMConfig.from_preset("smoke", size="tiny", tasks=tasks)
    model = WorldModel(cfg, *task_dims(cfg.task_ids))
    export_bundle(model, cfg, out_dir, env_steps=0, training_steps=0, checkpoint="untrained (random weights)",
                  overwrite=True)
    return out_dir
