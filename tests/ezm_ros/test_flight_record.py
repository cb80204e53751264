"""Flight records over real DDS: the recorder writes every topic of a running stack into an MCAP file that
the mcap library reads with its CRCs checked and mcap_ros2 decodes, and ezm-record-summary reports it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from ezm_ros import nodes, record_summary
from ezm_ros.flight_record import MESSAGE_ENCODING, PROFILE, SCHEMA_ENCODING, message_definition

pytestmark = pytest.mark.ros
SIM, PLANNER, RECORDER = "sim_bridge.sim_node", "ezm_ros.planner_node", "ezm_ros.recorder_node"


def test_the_message_definition_carries_every_type_it_uses():
    odometry = message_definition("nav_msgs/msg/Odometry")
    sections = [line for line in odometry.splitlines() if line.startswith("MSG: ")]
    assert "MSG: std_msgs/Header" in sections and "MSG: geometry_msgs/Quaternion" in sections
    assert len(sections) == len(set(sections)), "each type once"


def test_a_record_of_the_running_stack_reads_back_and_sums_up(launch, probe, tiny_bundle, tmp_path, capsys):
    path = tmp_path / "flight.mcap"
    recorder = launch(RECORDER, "ezm_recorder", path=str(path), discovery_period_s=0.2)
    launch(SIM, "ezm_sim", task="stand")
    launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "recording" not in recorder.output():
        time.sleep(0.1)
    probe.spin_for(4.0)
    recorder.stop()  # SIGINT: the file is finished (summary and index written)
    assert "wrote" in recorder.output() and "Traceback" not in recorder.output(), recorder.output()

    with open(path, "rb") as handle:
        reader = make_reader(handle, validate_crcs=True, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == PROFILE
        summary = reader.get_summary()
        channels = {c.topic: c for c in summary.channels.values()}
        assert all(c.message_encoding == MESSAGE_ENCODING for c in channels.values())
        assert all(s.encoding == SCHEMA_ENCODING for s in summary.schemas.values())
        for topic in ("/joint_states", "/joint_command", "/odom", "/ezm/planner_status", "/clock", "/diagnostics"):
            assert topic in channels, sorted(channels)
        counts = summary.statistics.channel_message_counts
        assert counts[channels["/joint_command"].id] >= 50  # 4 s at 50 Hz, less discovery and start-up
        statuses = [m for _, c, _, m in reader.iter_decoded_messages(topics=["/ezm/planner_status"])]
        assert statuses and all(s.active_task == "stand" for s in statuses)

    assert record_summary.main([str(path), "--plot", str(tmp_path / "flight.png")]) == 0
    out = capsys.readouterr().out
    assert "/joint_command" in out and "planner:" in out and "latency p50" in out and "modes: " in out
    assert (tmp_path / "flight.png").stat().st_size > 10_000


def test_the_launch_and_ezm_sim_start_the_recorder_when_asked():
    names = [spec.name for spec in nodes.stack_nodes(nodes.StackOptions(record=True, rviz=False))]
    assert "ezm_recorder" in names
    assert "ezm_recorder" not in [spec.name for spec in nodes.stack_nodes(nodes.StackOptions(rviz=False))]


def test_a_file_that_is_not_a_record_is_refused_with_the_reason(tmp_path, capsys):
    bogus = tmp_path / "bogus.mcap"
    bogus.write_bytes(b"not an mcap file at all")
    assert record_summary.main([str(bogus)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_every_node_of_the_stack_ends_cleanly_on_sigterm(launch, probe, tiny_bundle, tmp_path):
    # What a process manager (systemd, docker stop, a launch shutting down) sends: each node ends with rc 0
    # and no traceback, and the recorder finishes its file on the way out.
    import signal

    path = tmp_path / "sigterm.mcap"
    started = [launch(SIM, "ezm_sim", task="stand"),
               launch(PLANNER, "ezm_planner", model_path=str(tiny_bundle), task="stand"),
               launch("ezm_ros.safety_node", "ezm_safety", model_path=str(tiny_bundle)),
               launch(RECORDER, "ezm_recorder", path=str(path), discovery_period_s=0.2)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(word in node.output() for node, word in
                                                  zip(started, ("simulating", "model", "guarding", "recording"))):
        time.sleep(0.1)
    probe.spin_for(1.0)
    for node in started:
        assert node.alive(), node.output()
        node.process.send_signal(signal.SIGTERM)
    for node in started:
        assert node.process.wait(timeout=30) == 0, node.output()
        assert "Traceback" not in node.output(), node.output()
    assert record_summary.main([str(path)]) == 0


@pytest.mark.slow
def test_a_record_of_a_run_with_a_fault_shows_the_fault(tiny_bundle, tmp_path, probe, capsys):
    """`ezm-sim --safety --record`: the safety layer walks towards PLAN, an operator's E_STOP (or a guard's,
    first) latches it, and the record of the run, read back, says when and why, with the layer's interventions."""
    import subprocess
    import sys

    from ezm_msgs.msg import SafetyStatus
    from std_srvs.srv import Trigger

    from ezm_ros import qos, topics

    repo = Path(__file__).resolve().parents[2]
    safety = probe.collect(SafetyStatus, topics.SAFETY, qos.LATCHED)
    run = subprocess.Popen([sys.executable, "-m", "sim_bridge.run_stack", "--model", str(tiny_bundle), "--task",
                            "stand", "--safety", "--record", "--duration", "14", "--no-video", "--logs",
                            str(tmp_path / "logs")], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        recorder_log = tmp_path / "logs" / "ezm_recorder.log"
        assert probe.spin_until(lambda: safety and safety[-1][1].mode in ("HOLD", "PLAN", "E_STOP") and recorder_log.exists()
                                and f"recording /{topics.SAFETY} " in recorder_log.read_text(), 60.0), "no PLAN"
        probe.spin_for(0.5)  # a few statuses in PLAN on the record
        stopped = probe.call(Trigger, f"{topics.MODE_SERVICES}/estop", Trigger.Request())
        assert stopped.success, stopped.message
        assert probe.spin_until(lambda: safety[-1][1].mode == "E_STOP", 5.0)
        out, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out
    records = sorted((tmp_path / "records").glob("ezm-*.mcap"))
    assert len(records) == 1, out

    assert record_summary.main([str(records[0])]) == 0
    text = capsys.readouterr().out
    assert "/ezm/safety" in text
    modes = next(line for line in text.splitlines() if line.startswith("safety modes: "))
    # The untrained model (or HOLD, if the planner is slow to start: holding the keyframe falls in about 1.6 s)
    # may fall first, and the tilt guard latch E_STOP before the operator does: either way the record shows the
    # stop, its cause and the modes before it (from whichever the recorder joined in: the status is latched).
    assert "E_STOP at" in modes and modes.index("E_STOP at") > len("safety modes: "), modes  # after other modes
    assert any(cause in modes.split("E_STOP at")[1] for cause in ("estop", "guard")), modes
    interventions = next(line for line in text.splitlines() if line.startswith("safety interventions: "))
    assert "estops 0" not in interventions, interventions
