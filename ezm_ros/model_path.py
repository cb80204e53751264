"""Which model bundle the stack runs when none is named: the one the repository ships under `models/`.

A bundle is a directory with a `manifest.json` (`ezm_ros.manifest`). The shipped model is looked for in
`models/` of the installed share directory (colcon installs `models/*/` there) and of the repository,
preferring `models/ezm-h1/`, else the only bundle there, else the last in name order (names carry
versions or dates). Without one the planner exits and says how to get a model; `ezm-sim` alone may fall
back to an UNTRAINED bundle (`sim_bridge.run_stack.resolve_model`, with the `train` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ezm_ros.manifest import MANIFEST_FILE
from ezm_ros.nodes import installed_share_dir

MODELS_DIR: Final = "models"
#: The shipped model's directory name (`ezm-export ... models/ezm-h1`), preferred when several exist.
SHIPPED_MODEL_NAME: Final = "ezm-h1"
_REPO: Final = Path(__file__).resolve().parent.parent


def _search_roots() -> list[Path]:
    share = installed_share_dir()
    return ([share / MODELS_DIR] if share is not None else []) + [_REPO / MODELS_DIR]


def shipped_model() -> Path | None:
    """The shipped bundle directory, or None when the repository ships none (yet)."""
    for root in _search_roots():
        bundles = sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))
        if not bundles:
            continue
        preferred = [b for b in bundles if b.name == SHIPPED_MODEL_NAME]
        return preferred[0] if preferred else bundles[-1]
    return None


def no_model_message() -> str:
    return (f"no model: the repository ships none yet ({', '.join(str(r) for r in _search_roots())} hold no "
            f"bundle). Export one with `ezm-export <run dir> {MODELS_DIR}/{SHIPPED_MODEL_NAME}` and pass "
            "model_path (launch: model:=<dir>; ezm-sim: --model <dir>)")


def resolve(model: str) -> Path:
    """The bundle to load: `model` if given, else the shipped one; FileNotFoundError saying why not."""
    if model:
        return Path(model).expanduser()
    shipped = shipped_model()
    if shipped is None:
        raise FileNotFoundError(no_model_message())
    return shipped
