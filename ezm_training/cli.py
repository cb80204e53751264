"""Console entry points `ezm-train`, `ezm-eval` and `ezm-export` (ezm_training.export.bundle says what it writes).

    ezm-train --preset smoke tasks=h1-stand out=runs/x [key=value ...] [--workers N]
    ezm-train --resume runs/x                     # continue the same run from its newest checkpoint
    ezm-train --resume docs/runs/x/ckpt_000050000 --rebuild-replay out=runs/x   # a checkpoint without replay.npz
    ezm-eval runs/x [--episodes 10] [--out DIR]   # a run dir or a checkpoint dir

`out=` is the run directory (default: <run_dir>/<config hash>); every other key=value is an EZMConfig
override (EZMConfig.from_cli rejects unknown keys with near matches).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from ezm_training.config import ConfigError, EZMConfig


def _setup_logging(run_dir: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(run_dir / "train.log"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--size", default=None)
    parser.add_argument("--resume", type=Path, default=None, help="run dir (or checkpoint dir) to continue")
    parser.add_argument("--rebuild-replay", action="store_true",
                        help="resume a checkpoint without its replay.npz (carried from another machine): "
                             "the replay is collected again (docs/design.md)")
    parser.add_argument("--workers", type=int, default=None, help="env worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, and out=RUN_DIR")
    args = parser.parse_args(argv)

    from ezm_training import checkpoint as ckpt

    overrides = [item for item in args.overrides if not item.startswith("out=")]
    outs = [item.split("=", 1)[1] for item in args.overrides if item.startswith("out=")]
    resume = None
    try:
        if args.rebuild_replay and args.resume is None:
            parser.error("--rebuild-replay goes with --resume CHECKPOINT_DIR")
        if args.rebuild_replay:
            resume = args.resume
            if not (resume / "state.pt").is_file() or not (resume / "config.json").is_file():
                parser.error(f"{resume} is not a checkpoint dir (it needs state.pt and config.json)")
            if not outs:
                parser.error("--rebuild-replay needs out=RUN_DIR: the run continues in a new run dir")
        elif args.resume is not None:
            resume = ckpt.latest_checkpoint(args.resume)
            if resume is None:
                hint = (" (a checkpoint without replay.npz resumes with --rebuild-replay)"
                        if (args.resume / "state.pt").is_file() else "")
                parser.error(f"no complete checkpoint under {args.resume}{hint}")
        if args.resume is not None:
            if overrides or args.preset or args.size:
                parser.error("--resume continues the saved config; do not pass a preset or overrides")
            cfg = EZMConfig.from_json((resume / "config.json").read_text())
            run_dir = Path(outs[0]) if outs else resume.parent.parent
        else:
            flags = (["--preset", args.preset] if args.preset else []) + (["--size", args.size] if args.size else [])
            cfg = EZMConfig.from_cli(flags + overrides)
            run_dir = Path(outs[0]) if outs else Path(cfg.run_dir) / cfg.hash()
            if cfg.resume:  # the config's own `resume=PATH` key: the saved config wins, as with --resume
                resume = ckpt.latest_checkpoint(Path(cfg.resume))
                if resume is None:
                    parser.error(f"no complete checkpoint under resume={cfg.resume}")
                cfg = EZMConfig.from_json((resume / "config.json").read_text())
                run_dir = Path(outs[0]) if outs else resume.parent.parent
    except ConfigError as error:
        parser.error(str(error))
    _setup_logging(run_dir)
    logging.getLogger(__name__).info("run dir %s, config %s", run_dir, cfg.hash())

    from ezm_training.trainer import Trainer

    try:
        trainer = Trainer(cfg, run_dir, resume=resume, num_workers=args.workers, progress=not args.no_progress,
                          rebuild_replay=args.rebuild_replay)
    except ckpt.CheckpointError as error:  # load_checkpoint verifies hashes and unpickles safely
        parser.error(str(error))
    # Ctrl-C and a scheduler's SIGTERM finish the update in flight and checkpoint before exiting.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, trainer.request_stop)
    trainer.run()
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-eval", description="Evaluate a checkpoint on every task of its run.")
    parser.add_argument("checkpoint", type=Path, help="run dir, its checkpoints/ dir, or one ckpt_* dir")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task")
    parser.add_argument("--out", type=Path, default=None, help="where eval.csv/json go (default: the checkpoint)")
    parser.add_argument("--seed", type=int, default=12_345)
    parser.add_argument("--rebuild-replay", action="store_true",
                        help="resume a checkpoint without its replay.npz (carried from another machine): "
                             "the replay is collected again (docs/design.md)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--model", choices=("target", "online"), default="target",
                        help="EMA target weights (what the actors use) or the learner's online weights")
    parser.add_argument("--actor", choices=("search", "policy_mean"), default="search",
                        help="the search's chosen action (as deployed), or tanh of the policy mean with no "
                             "search, on the same seeds: does the search help? (written as eval_policy_mean.*)")
    args = parser.parse_args(argv)
    _setup_logging(None)

    from ezm_training.checkpoint import load_model
    from ezm_training.evaluate import evaluate, format_table, write_results

    try:
        model, cfg, path, step, _ = load_model(args.checkpoint, args.model)
    except (FileNotFoundError, ValueError) as error:  # ValueError: CheckpointError, a bad config
        parser.error(str(error))
    results = evaluate(cfg, model, args.episodes, seed=args.seed, num_workers=args.workers, actor=args.actor)
    out_dir = args.out or path
    stem = "eval" if args.actor == "search" else f"eval_{args.actor}"
    write_results(results, out_dir, stem)
    print(f"{path} (step {step}, {args.model} weights, acting: {args.actor})")
    print(format_table(results))
    print(f"wrote {out_dir / (stem + '.csv')} and {out_dir / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main())


def export_main(argv: list[str] | None = None) -> int:
    """`ezm-export`: a checkpoint (or, with --untrained, random weights) as a model bundle."""
    import torch

    from ezm_training import checkpoint as ckpt
    from ezm_training.export import ExportError, bundle
    from ezm_training.export.bundle import export_bundle
    from ezm_training.export.graphs import DEFAULT_OPSET

    parser = argparse.ArgumentParser(prog="ezm-export", description=bundle.__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?",
                        help="run dir, its checkpoints/ dir, or one ckpt_* dir (none with --untrained)")
    parser.add_argument("out", type=Path, help="bundle directory to write")
    parser.add_argument("--untrained", action="store_true",
                        help="export a tiny model with random weights instead (the manifest says 0 env steps, "
                             "the planner warns): a stand-in to try the stack with; --tasks is a task set or "
                             "env ids, default all 14 h1 tasks")
    parser.add_argument("--weights", choices=("target", "online"), default="target",
                        help="EMA target weights (what the actors and evaluation use) or the online weights")
    parser.add_argument("--tasks", default=None, help="comma-separated env ids to include (default: all)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--dynamo", action="store_true", help="use torch's dynamo exporter (slower to export)")
    parser.add_argument("--int8", action="store_true",
                        help="also write int8 graphs (dynamic quantization) for CPUs short of time at float32")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.untrained == (args.checkpoint is not None):
        parser.error("give a checkpoint or --untrained, not both" if args.untrained else "give a checkpoint")
    torch.set_num_threads(1)  # the graphs are traced, not trained; keep the machine's other jobs running
    if args.untrained:
        from ezm_training.untrained_bundle import DEFAULT_TASKS, export_untrained_bundle

        if args.out.exists() and not args.force:
            print(f"ezm-export: {args.out} exists (--force replaces it)", file=sys.stderr)
            return 1
        try:
            export_untrained_bundle(args.out, args.tasks or DEFAULT_TASKS, reuse=False)
        except (ExportError, ValueError) as error:
            print(f"ezm-export: {error}", file=sys.stderr)
            return 1
        print(f"{args.out}: an UNTRAINED bundle (random weights)")
        return 0
    try:
        model, cfg, found, step, env_steps = ckpt.load_model(args.checkpoint, args.weights)
        tasks = args.tasks.split(",") if args.tasks else None
        manifest = export_bundle(model, cfg, args.out, tasks=tasks, env_steps=env_steps, training_steps=step,
                                 checkpoint=str(found), weights=args.weights, opset=args.opset, dynamo=args.dynamo,
                                 int8=args.int8, overwrite=args.force)
    except (ExportError, FileNotFoundError, ValueError) as error:  # ValueError: CheckpointError
        print(f"ezm-export: {error}", file=sys.stderr)
        return 1
    worst = max(manifest.export["parity_max_abs_error"].values())
    print(f"{args.out}: {manifest.model_id}, {len(manifest.tasks)} tasks, step {step}, {env_steps} env steps; "
          f"onnxruntime vs torch max abs error {worst:.2g}")
    if manifest.int8:
        agreement = manifest.int8["search_agreement"]
        print(f"int8 graphs: max abs error {max(manifest.int8['parity_max_abs_error'].values()):.2g}; the search "
              f"picks the float32 graphs' candidate at {100 * agreement['same_candidate']:.0f}% of "
              f"{agreement['roots']} roots, actions differ by {agreement['action_abs_diff_mean']:.3g} on average")
    return 0
