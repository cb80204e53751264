"""`ezm-record-summary RECORD.mcap [--plot out.png]`: what happened in a flight record.

Prints each topic's message count and rate, the task changes the planner accepted, the planner's step
latency p50 / p99 / max with its deadline misses, fallbacks (by reason) and stale states over the record,
the safety layer's mode changes with their reasons, the faults it saw and its interventions (ezm/safety), and
the simulator's or robot's mode changes and damping entries (from diagnostics). --plot draws the
planner's step latency and root value, the pelvis height (odom) and the simulator's real-time factor, against
time (needs matplotlib, which the `sim` extra installs). Reads any ROS 2 MCAP (this stack's recorder or
rosbag2's) with `mcap_ros2`, no ROS install needed.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from ezm_msgs.msg import SafetyStatus
from ezm_ros import topics

_STATUS_TYPE = "ezm_msgs/msg/PlannerStatus"
_ACTIVE_TYPE = "ezm_msgs/msg/TaskCommand"
_DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
_ODOM_TYPE = "nav_msgs/msg/Odometry"
_SAFETY_TYPE = "ezm_msgs/msg/SafetyStatus"
#: SafetyStatus counters, printed as the layer's interventions over the record.
_INTERVENTIONS = ("rejected_nonfinite", "clamped_positions", "rate_limited", "gains_limited", "state_watchdog_trips",
                  "command_watchdog_trips", "estops")


def read(path: Path) -> dict:
    """The figures of a record: per-topic counts and spans, and the planner's and simulator's series."""
    per_topic: dict[str, list[int]] = collections.defaultdict(list)
    status, tasks, modes, heights, safety = [], [], [], [], []
    factory, decoders = DecoderFactory(), {}
    wanted = (_STATUS_TYPE, _ACTIVE_TYPE, _ODOM_TYPE, _DIAGNOSTICS_TYPE, _SAFETY_TYPE)
    with open(path, "rb") as handle:
        for schema, channel, message in make_reader(handle).iter_messages():
            per_topic[channel.topic].append(message.log_time)
            if schema is None or schema.name not in wanted:
                continue  # counted only: decoding every message (markers, states) would cost most of the time
            if schema.id not in decoders:
                decoders[schema.id] = factory.decoder_for(channel.message_encoding, schema)
            decoded = decoders[schema.id](message.data)
            t = message.log_time * 1e-9
            if schema.name == _STATUS_TYPE and channel.topic.endswith(topics.PLANNER_STATUS):
                status.append((t, decoded))
            elif schema.name == _ACTIVE_TYPE and channel.topic.endswith(topics.ACTIVE_TASK):
                tasks.append((t, decoded.task))
            elif schema.name == _ODOM_TYPE and channel.topic.endswith(topics.ODOM):
                heights.append((t, decoded.pose.pose.position.z))
            elif schema.name == _SAFETY_TYPE and channel.topic.endswith(topics.SAFETY):
                safety.append((t, decoded))
            elif schema.name == _DIAGNOSTICS_TYPE:
                for entry in decoded.status:
                    values = {kv.key: kv.value for kv in entry.values}
                    if "mode" in values:
                        modes.append((t, entry.name, values))
    return {"topics": per_topic, "status": status, "tasks": tasks, "modes": modes, "heights": heights,
            "safety": safety}


def summary(record: dict) -> str:
    lines = []
    times = [t for stamps in record["topics"].values() for t in stamps]
    if not times:
        return "the record holds no message"
    start, end = min(times) * 1e-9, max(times) * 1e-9
    lines.append(f"{end - start:.1f} s, {len(times)} messages on {len(record['topics'])} topics")
    lines.append(f"{'topic':<34}{'messages':>9}{'rate Hz':>9}")
    for topic, stamps in sorted(record["topics"].items()):
        span = (stamps[-1] - stamps[0]) * 1e-9
        rate = (len(stamps) - 1) / span if span > 0 else float("nan")
        lines.append(f"{topic:<34}{len(stamps):>9d}{rate:>9.1f}")
    if record["tasks"]:
        changes = [record["tasks"][0]] + [b for a, b in zip(record["tasks"], record["tasks"][1:]) if a[1] != b[1]]
        lines.append("tasks: " + ", ".join(f"{task} at {t - start:.1f} s" for t, task in changes))
    planned = [m for _, m in record["status"] if np.isfinite(m.step_latency_ms)]
    if planned:
        latency = np.array([m.step_latency_ms for m in planned])
        first, last = record["status"][0][1], record["status"][-1][1]
        reasons = collections.Counter(m.detail.split(":")[0].split(";")[0][:60] for m in planned if m.fallback)
        lines.append(f"planner: {len(planned)} steps, latency p50 {np.percentile(latency, 50):.2f} / p99 "
                     f"{np.percentile(latency, 99):.2f} / max {latency.max():.2f} ms; deadline misses "
                     f"{last.deadline_misses - first.deadline_misses}, fallbacks {last.fallbacks - first.fallbacks}"
                     f", stale states {last.stale_states - first.stale_states}")
        if reasons:
            lines.append("fallbacks by reason: " + ", ".join(f"{r} ({n})" for r, n in reasons.most_common(5)))
    if record.get("safety"):
        lines += _safety_lines(record["safety"], start)
    if record["modes"]:
        changes = [record["modes"][0]] + [b for a, b in zip(record["modes"], record["modes"][1:])
                                          if a[2]["mode"] != b[2]["mode"]]
        lines.append("modes: " + ", ".join(f"{values['mode']} at {t - start:.1f} s" for t, _, values in changes))
        lines.append(f"damping entries: {record['modes'][-1][2].get('damping_entries', '?')}, failed steps: "
                     f"{record['modes'][-1][2].get('failed_steps', '?')}")
    return "\n".join(lines)


def _safety_lines(series: list, start: float) -> list[str]:
    """The safety layer's mode changes (with the reason of each), the faults raised and its interventions."""
    changes = [series[0]] + [b for a, b in zip(series, series[1:]) if (a[1].mode, a[1].reason) != (b[1].mode,
                                                                                                   b[1].reason)]
    lines = ["safety modes: " + "; ".join(f"{m.mode} at {t - start:.1f} s ({m.reason})" for t, m in changes)]
    raised = 0
    for _, m in series:
        raised |= int(m.faults)
    # The decoded messages carry the fields only; the fault bits' names are the message definition's.
    names = [name.removeprefix("FAULT_").lower() for name in dir(SafetyStatus)
             if name.startswith("FAULT_") and raised & int(getattr(SafetyStatus, name))]
    first, last = series[0][1], series[-1][1]
    counted = [(name, int(getattr(last, name)) - int(getattr(first, name))) for name in _INTERVENTIONS]
    lines.append("safety faults: " + (", ".join(sorted(names)) if names else "none"))
    lines.append("safety interventions: " + ", ".join(f"{name} {n}" for name, n in counted))
    return lines


def plot(record: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for stamps in record["topics"].values() for t in stamps]
    start = min(times) * 1e-9
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True)
    status = [(t - start, m) for t, m in record["status"] if np.isfinite(m.step_latency_ms)]
    modes = [(t - start, values) for t, _, values in record["modes"]]
    series = (
        (axes[0, 0], [(t, m.step_latency_ms) for t, m in status], "planner step latency (ms)"),
        (axes[0, 1], [(t, m.root_value) for t, m in status], "search root value"),
        (axes[1, 0], [(t - start, z) for t, z in record["heights"]], "pelvis height (m, odom)"),
        (axes[1, 1], [(t, float(v.get("real_time_factor", "nan"))) for t, v in modes], "real-time factor"),
    )
    for axis, points, title in series:
        if points:
            axis.plot(*zip(*points), lw=0.8)
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("time in the record (s)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-record-summary", description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="an MCAP file (ezm_recorder's or rosbag2's)")
    parser.add_argument("--plot", type=Path, default=None, help="also draw the key signals to this PNG")
    args = parser.parse_args(argv)
    try:
        record = read(args.record)
    except Exception as err:  # noqa: BLE001  OSError, or mcap's own types for a cut-short or foreign file
        print(f"ezm-record-summary: cannot read {args.record}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(summary(record))
    if args.plot is not None:
        try:
            plot(record, args.plot)
        except ImportError:
            print("ezm-record-summary: --plot needs matplotlib (the `sim` extra)", file=sys.stderr)
            return 2
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
