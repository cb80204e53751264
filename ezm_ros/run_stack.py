"""`ezm-sim` / `make sim`: the main job, headless.

Its final form starts the simulator, planner, task commander, status and visualization nodes from
the package's one node list, driven by the model the repository ships. Until the planner and the
ROS 2 stack exist, it runs what does exist, the HumanoidBench scene in MuJoCo under a fixed policy,
and says plainly what is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

MISSING = (
    "the ONNX model bundle and the torch-free latent planner (issue: ONNX bundle and planner)",
    "the ROS 2 nodes, launch and node list (issue: ROS 2 stack)",
    "a shipped trained model (issue: EZ-M learner)",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="h1-walk-v0", help="environment id of the scene to run")
    parser.add_argument("--policy", default="zero", choices=("zero", "random"),
                        help="stand-in policy until the planner exists")
    parser.add_argument("--steps", type=int, default=250, help="control steps (50 Hz)")
    parser.add_argument("--video", default="out/sim.mp4", help="rollout video written on exit")
    args = parser.parse_args(argv)

    print("ezm-sim: not built yet:", *(f"  - {item}" for item in MISSING), sep="\n", flush=True)
    if importlib.util.find_spec("sim_bridge.cli") is None:
        print("ezm-sim: the simulator (sim_bridge) is not built yet either; nothing to run.", file=sys.stderr)
        return 1
    from sim_bridge import cli

    print(f"ezm-sim: running what exists: {args.task} in MuJoCo with the {args.policy!r} policy, "
          f"no planner, no ROS.", flush=True)
    return cli.main(["rollout", args.task, "--policy", args.policy, "--steps", str(args.steps),
                     "--video", args.video])


if __name__ == "__main__":
    sys.exit(main())
