"""Flight records over real DDS: the recorder writes every topic of a running stack into an MCAP file that
the mcap library reads with its CRCs checked and mcap_ros2 decodes, and ezm-record-summary reports it."""

from __future__ import annotations

import time

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
