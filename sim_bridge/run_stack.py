"""`ezm-sim` / `make sim`: the stack of `ros2 launch ezm_ros sim.launch.py`, without a ROS 2 install.

    ezm-sim                              # walk, real time, the shipped model; Ctrl-C stops and writes the video
    ezm-sim --task stand --duration 20   # stop by itself after 20 s of wall time
    ezm-sim --web-view                   # watch in a browser: http://127.0.0.1:8080
    ezm-sim --lockstep --seed 3          # deterministic: one simulation step per planner command

It starts the nodes of `ezm_ros.nodes` (the same list, parameters and params YAML the launch file uses)
as separate processes, `python -m <module> --ros-args ...`, each in its own process group so that
Ctrl-C reaches ezm-sim alone and it stops the nodes in order. Node logs go to `out/ezm-sim-logs/`;
their warnings and errors are echoed above the live status line (task, sim time, real-time factor,
pelvis height, forward speed, planner p99 latency, deadline misses). On exit the last seconds of the
rollout are rendered to `out/sim.mp4` from the recorded states.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

import sim_bridge  # noqa: F401  first: it picks MuJoCo's headless GL backend before mujoco loads (the video)
from ezm_ros import model_path, nodes
from ezm_ros.process_lifetime import PARENT_PID_ENV
from sim_bridge.bundle_robot import BundleError, OtherRobotError, check_bundle_robot
from sim_bridge.perturbations import LEVELS as PERTURBATION_LEVELS
from sim_bridge.rollout_video import RENDER_S_PER_FRAME

#: Where `ezm-sim` writes its untrained stand-in, and the tasks it covers (all 14 HumanoidBench h1 tasks).
UNTRAINED_DIR: Final = Path("out/untrained-bundle")
UNTRAINED_TASK_SET: Final = "h1-all14"
STATUS_PERIOD_S: Final = 0.5
#: Without a terminal (CI, a log file), the status line is printed this often instead of redrawn.
STATUS_PERIOD_NO_TTY_S: Final = 5.0
STOP_TIMEOUT_S: Final = 10.0
#: Substrings of node log lines echoed to the terminal (rcutils' severity tags, Python tracebacks).
ECHOED: Final = ("[WARN]", "[ERROR]", "[FATAL]", "Traceback", "Error", "cannot start")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ezm-sim", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n")[1])
    defaults = {arg.name: arg for arg in nodes.LAUNCH_ARGUMENTS}
    parser.add_argument("--model", default=defaults["model"].default, help=defaults["model"].description)
    parser.add_argument("--task", default=defaults["task"].default, help=defaults["task"].description)
    parser.add_argument("--lockstep", action="store_true", help=defaults["lockstep"].description)
    parser.add_argument("--seed", type=int, default=int(defaults["seed"].default), help=defaults["seed"].description)
    parser.add_argument("--web-view", action="store_true", help=defaults["web_view"].description)
    parser.add_argument("--rviz", action="store_true", help="Also start rviz2 (needs a ROS 2 install on PATH).")
    parser.add_argument("--namespace", default="", help=defaults["namespace"].description)
    parser.add_argument("--no-clock", action="store_true", help=defaults["publish_clock"].description)
    parser.add_argument("--record", action="store_true", help=defaults["record"].description)
    parser.add_argument("--safety", action="store_true", help=defaults["safety"].description)
    parser.add_argument("--perturbation", default=defaults["perturbation"].default,
                        choices=sorted(PERTURBATION_LEVELS), help=defaults["perturbation"].description)
    parser.add_argument("--duration", type=float, default=0.0, help="Stop after this many seconds (0: at Ctrl-C).")
    parser.add_argument("--video", type=Path, default=Path("out/sim.mp4"),
                        help="Rollout video written on exit (.mp4, or .gif: half size and rate, for a README).")
    parser.add_argument("--no-video", action="store_true", help="Write no video.")
    parser.add_argument("--video-seconds", type=float, default=10.0,
                        help="Length of the video: the last N s of the run (rendering takes ~3 s per s on 2 cores).")
    parser.add_argument("--logs", type=Path, default=Path("out/ezm-sim-logs"), help="Directory of node logs.")
    return parser


class NodeProcess:
    """One node process; a thread copies its output to a log file and queues the lines worth showing."""

    def __init__(self, spec: nodes.NodeSpec, command: list[str], log_dir: Path, echo: queue.Queue[str]) -> None:
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{spec.name}.log"
        # The node ends with this process even when it is SIGKILLed (ezm_ros.process_lifetime).
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_PID_ENV: str(os.getpid())})
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        bufsize=1, env=env, start_new_session=True)
        self._thread = threading.Thread(target=self._pump, args=(self.process.stdout, echo), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str], echo: queue.Queue[str]) -> None:
        with open(self.log_path, "w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if any(tag in line for tag in ECHOED):
                    echo.put(f"[{self.spec.name}] {line.rstrip()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # rclpy nodes shut down cleanly on SIGINT

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._thread.join(timeout=2.0)


def _overrides_file(specs: list[nodes.NodeSpec], directory: Path) -> Path:
    """The launch arguments' parameters as a params file (JSON is YAML), loaded after sim.params.yaml."""
    content = {f"/**/{spec.name}": {"ros__parameters": spec.parameters} for spec in specs if spec.parameters}
    path = directory / "overrides.params.yaml"
    path.write_text(json.dumps(content, indent=2))
    return path


def _command(spec: nodes.NodeSpec, namespace: str, params: list[Path]) -> list[str] | None:
    if spec.module is None:  # not ours: rviz2 from a ROS 2 install, if there is one
        executable = shutil.which(spec.executable)
        return None if executable is None else [executable, *spec.arguments]
    command = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    for topic, to in spec.remappings:
        command += ["-r", f"{topic}:={to}"]
    if namespace:
        command += ["-r", f"__ns:=/{namespace}"]
    for path in params:
        command += ["--params-file", str(path)]
    return command


def start_stack(options: nodes.StackOptions, log_dir: Path, echo: queue.Queue[str], tmp: Path,
                extra_params: Sequence[Path] = ()) -> list[NodeProcess]:
    """Start the node list of `options` as processes (params file, then the options' overrides, then
    `extra_params`, each a ROS 2 params file).

    Nodes that are not ours and not installed (rviz2 without ROS 2) are skipped with a note. Also used by
    bench/control_loop.py, so the benchmark measures exactly what `ezm-sim` runs.
    """
    specs = nodes.stack_nodes(options)
    params = [nodes.config_file(nodes.PARAMS_FILE), _overrides_file(specs, tmp), *extra_params]
    children = []
    for spec in specs:
        command = _command(spec, options.namespace, params)
        if command is None:
            print(f"ezm-sim: {spec.executable} is not installed; skipping it (use --web-view for a browser view)")
            continue
        children.append(NodeProcess(spec, command, log_dir, echo))
    return children


def resolve_model(model: str) -> tuple[Path, str]:
    """(bundle, label) for `ezm-sim`: `model_path.resolve`, but with no shipped model, an UNTRAINED one
    (random weights, exported now by `ezm-export --untrained`'s code; needs the `train` extra)."""
    if model:
        return Path(model).expanduser(), "given"
    shipped = model_path.shipped_model()
    if shipped is not None:
        return shipped, "the shipped model"
    print("ezm-sim: " + model_path.no_model_message(), flush=True)
    print(f"ezm-sim: running an UNTRAINED bundle (random weights, exported now to {UNTRAINED_DIR}) so the "
          "stack can be seen working: the robot will not walk and will likely fall.", flush=True)
    try:
        from ezm_training.untrained_bundle import export_untrained_bundle
    except ImportError as err:
        raise SystemExit(f"cannot export an untrained stand-in without the `train` extra (torch): {err}") from err
    return export_untrained_bundle(UNTRAINED_DIR, UNTRAINED_TASK_SET), "UNTRAINED: random weights, not a trained model"


def check_robot(bundle: Path) -> None:
    """SystemExit unless the bundle drives the simulated H1 (sim_bridge.bundle_robot), before any node starts."""
    try:
        check_bundle_robot(bundle)
    except (BundleError, FileNotFoundError, OtherRobotError) as err:
        raise SystemExit(f"ezm-sim: {err}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    model, label = resolve_model(args.model)
    check_robot(model)
    print(f"ezm-sim: model {model} ({label})", flush=True)
    options = nodes.StackOptions(model=str(model), task=args.task, lockstep=args.lockstep, seed=args.seed,
                                 rviz=args.rviz, web_view=args.web_view, namespace=args.namespace.strip("/"),
                                 publish_clock=not args.no_clock, record=args.record,
                                 safety=args.safety, perturbation=args.perturbation)
    try:
        nodes.stack_nodes(options)  # the one place that knows which options cannot go together
    except ValueError as err:
        parser.error(str(err))

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from sim_bridge.stack_monitor import StackMonitor

    echo: queue.Queue[str] = queue.Queue()
    status = 0
    with tempfile.TemporaryDirectory(prefix="ezm-sim-") as tmp:
        children = start_stack(options, args.logs, echo, Path(tmp))
        print(f"ezm-sim: started {', '.join(c.spec.name for c in children)} (logs in {args.logs}/)"
              + ("; browser view at http://127.0.0.1:8080" if args.web_view else "")
              + "; Ctrl-C stops", flush=True)

        rclpy.init()
        monitor = StackMonitor(args.video_seconds, options.namespace,
                               model_note="UNTRAINED model" if label.startswith("UNTRAINED") else "")
        executor = SingleThreadedExecutor()
        executor.add_node(monitor)
        tty = sys.stdout.isatty()
        started = time.monotonic()
        last_status = 0.0
        try:
            while args.duration <= 0 or time.monotonic() - started < args.duration:
                executor.spin_once(timeout_sec=0.05)
                while not echo.empty():
                    print(("\r\033[K" if tty else "") + echo.get(), flush=True)
                dead = [c for c in children if c.process.poll() is not None]
                if dead:
                    for child in dead:
                        print(f"\nezm-sim: {child.spec.name} exited with status {child.process.returncode}; "
                              f"see {child.log_path}", file=sys.stderr, flush=True)
                    status = 1
                    break
                now = time.monotonic()
                if now - last_status >= (STATUS_PERIOD_S if tty else STATUS_PERIOD_NO_TTY_S):
                    line = monitor.status_line()
                    print(f"\r\033[K{line}" if tty else line, end="" if tty else "\n", flush=True)
                    last_status = now
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            final_line = monitor.status_line()
            for child in children:
                child.stop()
            for child in children:
                child.wait(STOP_TIMEOUT_S)
            while not echo.empty():
                print(echo.get(), flush=True)
            print(f"\nezm-sim: stopped. Last status: {final_line}", flush=True)
            if not args.no_video:
                print(f"ezm-sim: rendering {len(monitor.recorder)} frames to {args.video} (about "
                      f"{len(monitor.recorder) * RENDER_S_PER_FRAME:.0f} s) ...", flush=True)
                frames = monitor.recorder.write(args.video)
                print(f"ezm-sim: wrote {args.video} ({frames} frames)" if frames else
                      "ezm-sim: no state was received, so no video", flush=True)
            executor.shutdown()
            monitor.destroy_node()
            if rclpy.ok():
                rclpy.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
