"""Is our MjSpec-built H1 HumanoidBench's H1? Compare it with HumanoidBench's own XML on the same MuJoCo.

Needs a HumanoidBench checkout (carlosferrazza/humanoid-bench, 791405f). Its assets are copied to a
temporary folder, where the two ankle meshes are replaced by Menagerie's (HumanoidBench ships one older
ankle mesh for both sides; see docs/sim_bridge.md), and `assets/envs/h1_pos_walk.xml` is compiled by the
MuJoCo installed here, with our MuJoCo-3.1.6 compatibility options. The script then compares the compiled
models field by field and rolls both out under the same random actions from the same states.

    .venv/bin/python bench/hb_model_fidelity.py --hb-root /path/to/humanoid-bench

A maximum difference of 0 means our model is HumanoidBench's, bit for bit, on this MuJoCo; what remains
between sim_bridge and the original is then MuJoCo 3.1.6 versus this release.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import sim_bridge  # noqa: F401  (first: picks the headless GL backend before mujoco is imported)

import mujoco
import numpy as np

from sim_bridge.h1 import constants as c
from sim_bridge.h1.model import build_h1_spec, menagerie_h1_xml

FIELDS = (
    "body_mass", "body_ipos", "body_iquat", "body_inertia", "body_quat", "jnt_range", "jnt_axis",
    "dof_damping", "dof_armature", "dof_frictionloss", "actuator_gainprm", "actuator_biasprm",
    "actuator_ctrlrange", "actuator_forcerange", "geom_type", "geom_size", "geom_pos", "geom_quat",
    "geom_contype", "geom_conaffinity", "geom_friction", "geom_solref", "geom_solimp", "sensor_type",
    "sensor_objid",
)


def _humanoidbench_model(hb_root: Path, work: Path) -> mujoco.MjModel:
    assets = hb_root / "humanoid_bench" / "assets"
    for sub in ("common", "envs", "robots", "h1/assets"):
        shutil.copytree(assets / sub, work / sub, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*_split", "*.obj"))
    menagerie_meshes = menagerie_h1_xml().parent / "assets"
    for ankle in ("left_ankle_link.stl", "right_ankle_link.stl"):
        shutil.copy(menagerie_meshes / ankle, work / "h1" / "assets" / ankle)
    return mujoco.MjModel.from_xml_path(str(work / "envs" / "h1_pos_walk.xml"))


def _rollouts(model: mujoco.MjModel, seeds: int, steps: int) -> np.ndarray:
    data = mujoco.MjData(model)
    low = model.actuator_ctrlrange[:, 0].astype(np.float32)
    high = model.actuator_ctrlrange[:, 1].astype(np.float32)
    out = []
    for seed in range(seeds):
        mujoco.mj_resetData(model, data)
        data.qpos[:] = c.KEYFRAME_QPOS + np.random.default_rng(seed).uniform(-0.01, 0.01, c.NQ)
        mujoco.mj_normalizeQuat(model, data.qpos)
        mujoco.mj_forward(model, data)
        actions = np.random.default_rng(seed).uniform(-1, 1, (steps, c.NU)).astype(np.float32)
        for action in actions:
            data.ctrl[:] = (action + 1) / 2 * (high - low) + low
            mujoco.mj_step(model, data, nstep=c.FRAME_SKIP)
            mujoco.mj_rnePostConstraint(model, data)
            out.append(np.concatenate([data.qpos, data.qvel, data.sensordata, data.actuator_force]))
    return np.array(out).reshape(seeds, steps, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hb-root", type=Path, required=True, help="HumanoidBench checkout")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    ours = build_h1_spec(c.COLLISION_HUMANOIDBENCH).compile()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = _humanoidbench_model(args.hb_root, Path(tmp))
    # Our MuJoCo-3.1.6 compatibility options (constants.COMPAT_DISABLE_FLAGS, CCD settings).
    theirs.opt.disableflags = ours.opt.disableflags
    theirs.opt.ccd_iterations, theirs.opt.ccd_tolerance = ours.opt.ccd_iterations, ours.opt.ccd_tolerance

    print(f"mujoco {mujoco.__version__}: ours nq/nv/nu/ngeom {ours.nq}/{ours.nv}/{ours.nu}/{ours.ngeom}, "
          f"HumanoidBench {theirs.nq}/{theirs.nv}/{theirs.nu}/{theirs.ngeom}")
    for field in FIELDS:
        a, b = getattr(ours, field), getattr(theirs, field)
        print(f"  {field:20s} max |difference| {np.abs(a.astype(float) - b.astype(float)).max():.1e}")
    print(f"  total mass          {ours.body_mass.sum():.6f} vs {theirs.body_mass.sum():.6f} kg")
    difference = np.abs(_rollouts(ours, args.seeds, args.steps) - _rollouts(theirs, args.seeds, args.steps))
    per_step = difference.max(axis=(0, 2))
    print(f"rollouts ({args.seeds} seeds x {args.steps} steps, random actions): max |difference| of "
          f"qpos, qvel, sensors, actuator forces over all steps: {per_step.max():.1e}")


if __name__ == "__main__":
    main()
