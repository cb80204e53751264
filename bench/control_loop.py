"""The closed control loop over DDS in real time: simulator + planner as `ezm-sim` runs them.

    .venv/bin/python bench/control_loop.py                      # 60 s idle, then 60 s with both cores loaded
    .venv/bin/python bench/control_loop.py --duration 20 --conditions idle --append BENCHMARKS.md

For each condition it starts the node list of `ezm-sim` (sim_node + planner_node, separate processes,
real Fast DDS on loopback, the shipped model or else an untrained bundle of the same shape), waits
`--warmup` seconds, then measures for `--duration` seconds:

- command period and jitter (|period - 20 ms|), p50 / p99 / max, at the simulator (where commands land);
- end-to-end latency: from the simulator publishing a state to it receiving the command computed from
  that state (the command carries the state's stamp), p50 / p99 / max;
- the planner's step latency p50 / p99 (PlannerStatus), its deadline misses and fallbacks in the window;
- the real-time factor: sim time advanced over wall time, from /clock.

"stress" loads both cores with one busy-loop process per core while the loop runs (same priority). A
"-rt" suffix (idle-rt, stress-rt) runs the two nodes with real-time scheduling and each on its own core
(RT_PARAMS: SCHED_FIFO, the simulator on CPU 0, the planner on the last CPU), where the OS allows it (the
nodes say so in their start-up line; a refusal is reported). The simulator's statistics cover its last
3000 commands (60 s at 50 Hz), so keep --duration <= 60.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim_bridge  # noqa: E402, F401  (picks MuJoCo's GL backend before anything imports mujoco)
from ezm_ros import nodes  # noqa: E402
from sim_bridge import run_stack  # noqa: E402

STRESS_CODE = "while True: pass"
CONDITIONS = ("idle", "stress", "idle-rt", "stress-rt")


def rt_params(directory: Path) -> Path:
    """The -rt conditions' parameters: SCHED_FIFO for both nodes, the simulator on CPU 0 and the planner on
    the last CPU (the busy loops of "stress" run at normal priority beside them)."""
    last = (os.cpu_count() or 1) - 1
    content = {"/**/ezm_sim": {"ros__parameters": {"sched_priority": 70, "cpu_affinity": "0"}},
               "/**/ezm_planner": {"ros__parameters": {"sched_priority": 80, "cpu_affinity": str(last)}}}
    path = directory / "rt.params.yaml"
    path.write_text(json.dumps(content, indent=2))
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(model: Path, condition: str, warmup_s: float, duration_s: float) -> dict[str, float]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from diagnostic_msgs.msg import DiagnosticArray
    from ezm_msgs.msg import PlannerStatus
    from ezm_ros import conversions, qos, topics
    from rosgraph_msgs.msg import Clock

    if condition not in CONDITIONS:
        raise SystemExit(f"unknown condition {condition!r}; one of {', '.join(CONDITIONS)}")
    stress = []
    if condition.startswith("stress"):
        stress = [subprocess.Popen([sys.executable, "-c", STRESS_CODE]) for _ in range(os.cpu_count() or 2)]
    echo: queue.Queue[str] = queue.Queue()
    options = nodes.StackOptions(model=str(model), task="walk", rviz=False)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("ezm_control_loop_bench", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    sim: dict[str, str] = {}
    status: list[tuple[float, PlannerStatus]] = []
    clock: list[tuple[float, int]] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.endswith(": simulator"):
                sim.clear()
                sim.update({kv.key: kv.value for kv in s.values})

    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diagnostics, qos.DIAGNOSTICS)
    node.create_subscription(PlannerStatus, topics.PLANNER_STATUS, lambda m: status.append((time.monotonic(), m)),
                             qos.LATCHED)
    node.create_subscription(Clock, topics.CLOCK, lambda m: clock.append(
        (time.monotonic(), conversions.stamp_to_ns(m.clock))), qos.CLOCK)

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)

    with tempfile.TemporaryDirectory(prefix="ezm-bench-") as tmp:
        extra = [rt_params(Path(tmp))] if condition.endswith("-rt") else []
        children = run_stack.start_stack(options, Path(tmp) / "logs", echo, Path(tmp), extra_params=extra)
        try:
            deadline = time.monotonic() + 60.0
            while sim.get("mode") != "commanded":  # the planner has loaded its model and commands
                if time.monotonic() > deadline or any(c.process.poll() is not None for c in children):
                    logs = "\n".join(c.log_path.read_text() for c in children if c.log_path.exists())
                    raise RuntimeError(f"the loop never started:\n{logs}")
                spin(0.1)
            spin(warmup_s)
            start_wall, start_status = time.monotonic(), status[-1][1]
            spin(duration_s)
            end_status = status[-1][1]
            spin(0.6)  # one more diagnostics report, covering the whole window
            logs = "\n".join(c.log_path.read_text() for c in children if c.log_path.exists())
            scheduling = ("refused by the OS" if "refused by the OS" in logs else
                          "SCHED_FIFO" if "SCHED_FIFO" in logs else "normal")
        finally:
            for child in children:
                child.stop()
            for child in children:
                child.wait(10.0)
            for process in stress:
                process.kill()
                process.wait()
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)

    window = [m for t, m in status if t >= start_wall and not np.isnan(m.step_latency_ms)]
    reasons = collections.Counter(m.detail.split(":")[0][:60] for m in window if m.fallback)
    latencies = np.array([m.step_latency_ms for m in window])
    ticks = [(t, ns) for t, ns in clock if t >= start_wall]
    rtf = (ticks[-1][1] - ticks[0][1]) * 1e-9 / (ticks[-1][0] - ticks[0][0])
    return {
        "period_p50": float(sim["command_period_p50_ms"]), "period_p99": float(sim["command_period_p99_ms"]),
        "period_max": float(sim["command_period_max_ms"]),
        "jitter_p50": float(sim["command_jitter_p50_ms"]), "jitter_p99": float(sim["command_jitter_p99_ms"]),
        "e2e_p50": float(sim["state_to_command_latency_p50_ms"]),
        "e2e_p99": float(sim["state_to_command_latency_p99_ms"]),
        "e2e_max": float(sim["state_to_command_latency_max_ms"]),
        "step_p50": float(np.percentile(latencies, 50)), "step_p99": float(np.percentile(latencies, 99)),
        "steps": len(window),
        "misses": end_status.deadline_misses - start_status.deadline_misses,
        "fallbacks": end_status.fallbacks - start_status.fallbacks,
        "stale": end_status.stale_states - start_status.stale_states,
        "rtf": rtf, "damping_entries": float(sim["damping_entries"]),
        "fallback_reasons": dict(reasons.most_common(3)),
        "scheduling": scheduling,
    }


def report(rows: dict[str, dict[str, float]], args, model: Path, label: str, load: str) -> str:
    head = (f"## Control loop over DDS (bench/control_loop.py)\n\n"
            f"`.venv/bin/python bench/control_loop.py --duration {args.duration:g} --warmup {args.warmup:g} "
            f"--conditions {','.join(rows)}`. Machine: {os.cpu_count()}-core {_cpu_name()}, no GPU, shared with "
            f"other jobs (load average before the run: {load}). Python {platform.python_version()}, ROS 2 Kilted "
            f"wheels (rclpy, Fast DDS on loopback). Model: {label} ({model.name}). Date: "
            f"{datetime.date.today().isoformat()}.\n\n"
            "sim_node and planner_node run as separate processes, started from the `ezm-sim` node list, in real "
            "time on walk. Period and jitter (|period − 20 ms|) of the joint commands and the end-to-end "
            "latency (the simulator publishes a state → it receives the command computed from it) are "
            "measured at the simulator; the planner's step latency (state in hand → command published) from "
            "PlannerStatus; \"stress\" adds one busy-loop process per core for the whole run; \"-rt\" runs both "
            "nodes at SCHED_FIFO, each pinned to its own core (bench/control_loop.py rt_params).\n\n")
    table = ["| condition | period p50 / p99 / max ms | jitter p50 / p99 ms | end-to-end p50 / p99 / max ms "
             "| planner step p50 / p99 ms | deadline misses | fallbacks | stale | real-time factor |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        table.append(f"| {name} | {r['period_p50']:.2f} / {r['period_p99']:.2f} / {r['period_max']:.1f} "
                     f"| {r['jitter_p50']:.2f} / {r['jitter_p99']:.2f} "
                     f"| {r['e2e_p50']:.2f} / {r['e2e_p99']:.2f} / {r['e2e_max']:.1f} "
                     f"| {r['step_p50']:.2f} / {r['step_p99']:.2f} | {r['misses']:.0f} of {r['steps']} "
                     f"| {r['fallbacks']:.0f} | {r['stale']:.0f} | {r['rtf']:.3f} |")
    notes = [f"- {name} ({r['scheduling']} scheduling): fallbacks by reason: " + (", ".join(f"{reason} ({count})" for reason, count in
                                                           r["fallback_reasons"].items()) or "none")
             for name, r in rows.items()]
    return head + "\n".join(table) + "\n\n" + "\n".join(notes) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per condition (<= 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the loop starts, not measured")
    parser.add_argument("--conditions", default="idle,stress,idle-rt,stress-rt",
                        help=f"comma-separated: {', '.join(CONDITIONS)}")
    parser.add_argument("--model", default="", help="bundle; default: the shipped one, else an untrained one")
    parser.add_argument("--append", type=Path, default=None, help="append the markdown section to this file")
    args = parser.parse_args()
    model, label = run_stack.resolve_model(args.model)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    rows = {}
    for condition in args.conditions.split(","):
        print(f"control_loop: {condition}, {args.duration:g} s ...", flush=True)
        rows[condition] = measure(model, condition, args.warmup, args.duration)
        print(rows[condition], flush=True)
    section = report(rows, args, model, label.split(":")[0], load)
    print(section)
    if args.append is not None:
        with open(args.append, "a") as f:
            f.write("\n" + section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
