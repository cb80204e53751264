"""Console entry points `ezm-train` and `ezm-eval`.

    ezm-train --preset smoke tasks=h1-stand out=runs/x [key=value ...] [--workers N]
    ezm-train --resume runs/x                     # continue the same run from its newest checkpoint
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
    parser.add_argument("--workers", type=int, default=None, help="env worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, and out=RUN_DIR")
    args = parser.parse_args(argv)

    from ezm_training import checkpoint as ckpt

    overrides = [item for item in args.overrides if not item.startswith("out=")]
    outs = [item.split("=", 1)[1] for item in args.overrides if item.startswith("out=")]
    resume = None
    try:
        if args.resume is not None:
            resume = ckpt.latest_checkpoint(args.resume)
            if resume is None:
                parser.error(f"no complete checkpoint under {args.resume}")
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

    trainer = Trainer(cfg, run_dir, resume=resume, num_workers=args.workers, progress=not args.no_progress)
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
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--model", choices=("target", "online"), default="target",
                        help="EMA target weights (what the actors use) or the learner's online weights")
    args = parser.parse_args(argv)
    _setup_logging(None)

    from ezm_training.checkpoint import load_model
    from ezm_training.evaluate import evaluate, format_table, write_results

    try:
        model, cfg, path, step, _ = load_model(args.checkpoint, args.model)
    except FileNotFoundError as error:
        parser.error(str(error))
    results = evaluate(cfg, model, args.episodes, seed=args.seed, num_workers=args.workers)
    out_dir = args.out or path
    write_results(results, out_dir)
    print(f"{path} (step {step}, {args.model} weights)")
    print(format_table(results))
    print(f"wrote {out_dir / 'eval.csv'} and {out_dir / 'eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
