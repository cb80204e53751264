"""`sim-bridge`: list the tasks, or roll one out to a video and a reward plot.

    sim-bridge list
    sim-bridge rollout h1-walk-v0 --policy random --steps 200 --seed 0 --video out/walk.mp4 --plot out/walk.png
    sim-bridge gallery docs/img/tasks.png

A rollout that ends an episode (a fall, or the 1000-step limit) resets and goes on until --steps; the plot
marks the resets. Videos are H.264 MP4 at the control rate (50 fps) via imageio-ffmpeg; plots are PNG
(matplotlib, Agg backend), one curve per reward component under HumanoidBench's info keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import gymnasium
import numpy as np

POLICIES: Final = ("zero", "random")


def _policy(name: str, env: gymnasium.Env, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    shape = env.action_space.shape
    if name == "zero":
        return lambda obs: np.zeros(shape, dtype=np.float32)
    if name == "random":
        return lambda obs: rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")


def _cmd_list(args: argparse.Namespace) -> int:
    import sim_bridge
    from sim_bridge.multitask import observation_size

    available = set(sim_bridge.available_task_ids())
    print(f"{'env id':24s} {'obs':>4s} {'bar':>6s}")
    for env_id in sim_bridge.TASK_IDS:
        if env_id not in available:
            print(f"{env_id:24s} {'-':>4s} {'-':>6s}  (task module not available)")
            continue
        task = sim_bridge.registry.make_task(env_id)
        print(f"{env_id:24s} {observation_size(env_id):4d} {task.success_bar:6.0f}")
    return 0


def _plot(path: Path, env_id: str, rewards: list[float], components: dict[str, list[float]],
          resets: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(len(rewards))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(steps, rewards, color="black", label="reward")
    top.set_ylabel("reward per step")
    top.set_title(f"{env_id}: return {sum(rewards):.1f} over {len(rewards)} steps")
    for name, values in components.items():
        bottom.plot(steps[: len(values)], values, label=name)
    bottom.set_xlabel("control step (0.02 s)")
    bottom.set_ylabel("component")
    for axis in (top, bottom):
        for step in resets:
            axis.axvline(step, color="grey", linestyle=":", linewidth=1)
        axis.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cmd_rollout(args: argparse.Namespace) -> int:
    import imageio.v2 as imageio
    from tqdm import tqdm

    import sim_bridge

    render_mode = "rgb_array" if args.video else None
    env = sim_bridge.make(args.env_id, collision=args.collision, render_mode=render_mode,
                          width=args.width, height=args.height)
    policy = _policy(args.policy, env, np.random.default_rng(args.seed))
    writer = None
    if args.video:
        args.video.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(args.video, fps=env.metadata["render_fps"], codec="libx264",
                                    macro_block_size=1)
    rewards: list[float] = []
    components: dict[str, list[float]] = {}
    resets: list[int] = []
    obs, _ = env.reset(seed=args.seed)
    try:
        for step in tqdm(range(args.steps), desc=args.env_id, unit="step", file=sys.stderr):
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            rewards.append(float(reward))
            for key, value in info.items():
                if key != "per_timestep_reward" and np.isscalar(value):
                    components.setdefault(key, []).append(float(value))
            if writer is not None:
                writer.append_data(env.render())
            if terminated or truncated:
                resets.append(step + 1)
                obs, _ = env.reset()
    finally:
        if writer is not None:
            writer.close()
        env.close()
    if args.plot:
        _plot(args.plot, args.env_id, rewards, components, resets)
    print(f"{args.env_id}: {len(rewards)} steps, return {sum(rewards):.2f}, {len(resets)} episode end(s)"
          + (f", video {args.video}" if args.video else "") + (f", plot {args.plot}" if args.plot else ""))
    return 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    """One frame of every task's scene just after reset, tiled into one labelled PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sim_bridge

    env_ids = sim_bridge.available_task_ids()
    columns = min(args.columns, len(env_ids))
    rows = -(-len(env_ids) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, env_id in zip(axes.flat, env_ids):
        env = sim_bridge.make(env_id, render_mode="rgb_array", width=args.size, height=args.size)
        env.reset(seed=args.seed)
        ax.imshow(env.render())
        ax.set_title(env_id, fontsize=9)
        env.close()
        print(f"rendered {env_id}", flush=True)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from sim_bridge.env import DEFAULT_RENDER_SIZE_PX
    from sim_bridge.h1.constants import COLLISION_HUMANOIDBENCH, COLLISION_VARIANTS

    parser = argparse.ArgumentParser(prog="sim-bridge", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="task ids with observation sizes and HumanoidBench success bars")
    rollout = commands.add_parser("rollout", help="run a fixed policy, write a video and a reward plot")
    rollout.add_argument("env_id", help="e.g. h1-walk-v0")
    rollout.add_argument("--policy", choices=POLICIES, default="zero")
    rollout.add_argument("--steps", type=int, default=200, help="control steps (50 per second)")
    rollout.add_argument("--seed", type=int, default=0)
    rollout.add_argument("--video", type=Path, default=None, help="MP4 to write")
    rollout.add_argument("--plot", type=Path, default=None, help="PNG with per-component reward curves")
    rollout.add_argument("--collision", choices=COLLISION_VARIANTS, default=COLLISION_HUMANOIDBENCH)
    rollout.add_argument("--width", type=int, default=DEFAULT_RENDER_SIZE_PX)
    rollout.add_argument("--height", type=int, default=DEFAULT_RENDER_SIZE_PX)
    gallery = commands.add_parser("gallery", help="one frame of every task's scene in one PNG")
    gallery.add_argument("out", type=Path, help="PNG to write")
    gallery.add_argument("--size", type=int, default=DEFAULT_RENDER_SIZE_PX, help="pixels per frame")
    gallery.add_argument("--columns", type=int, default=5)
    gallery.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _cmd_list(args)
    if args.command == "gallery":
        return _cmd_gallery(args)
    if args.steps < 1:
        raise SystemExit("--steps must be >= 1")
    return _cmd_rollout(args)


if __name__ == "__main__":
    raise SystemExit(main())
