"""What a ROS 2 user does: `colcon build` the repository in a workspace, then `ros2 launch ezm_ros sim.launch.py`.

The workspace is built once per module. colcon runs from its own venv (it pins an older setuptools),
which sees this venv's third-party packages (rclpy, numpy, onnxruntime, MuJoCo) through a path file but
not its editable install of the project: the installed executables run on that interpreter, so a module a
node imports that no ROS package installs fails here as it fails for a user. ROS 2 comes from this venv's
wheels, with the settings docs/ros2-from-wheels.md explains (an apt ROS 2 install needs none of them).

The real `launch`, `launch_ros` and `ros2` CLI are not on PyPI: `../shared/ros2-launch/` holds them as
wheels built from upstream (its README says how), plus composition_interfaces, which launch_ros imports.
They are installed into a directory of this test session, never into the venv or the repository. The
launch test skips, saying so, only where that folder is absent (a user's clone); CI has it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is installed by `make setup`")
from ezm_msgs.msg import JointCommand, PlannerStatus, SafetyStatus  # noqa: E402
from ezm_ros import qos, topics  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHARED_LAUNCH = REPO.parent / "shared" / "ros2-launch"
# ROS package -> its directory (ezm_search is the search, ezm_training/search/, installed on its own).
ROS_PACKAGES = {"ezm_msgs": "ezm_msgs", "ezm_search": "ezm_training/search", "ezm_ros": "ezm_ros",
                "sim_bridge": "sim_bridge"}
# What the launch wheels need from the registry besides what the venv has (../shared/ros2-launch/README.md).
LAUNCH_REQUIREMENTS = ("osrf-pycommon", "importlib-metadata", "argcomplete", "psutil")
CONTROL_DT_NS = 20_000_000  # one command per 20 ms of sim time: the H1's 50 Hz control rate
# `ros2 param get --no-daemon` finds the node only if discovery ends within its spin time (0.5 s by default):
# on a loaded 2-core CI machine five such tries all missed; 5 s each is still seconds, never a hang.
DISCOVERY_SPIN_S = "5"


@dataclasses.dataclass(frozen=True)
class Workspace:
    root: Path
    python: Path  # colcon's interpreter, which the installed executables run on

    @property
    def install(self) -> Path:
        return self.root / "install"

    def site_packages(self) -> list[Path]:
        return sorted(self.install.glob("*/lib/python3*/site-packages"))

    def env(self, extra_path: tuple[Path, ...] = ()) -> dict[str, str]:
        """The environment `source install/setup.bash` gives, for ROS 2 from this venv's wheels."""
        venv_site = Path(sysconfig.get_paths()["purelib"])
        prefixes = sorted(p for p in self.install.iterdir() if p.is_dir())
        libraries = [Path(sys.prefix) / "lib", *sorted(venv_site.glob("ros_*.libs")), *(p / "lib" for p in prefixes)]
        return dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(map(str, [*self.site_packages(), *extra_path])),
            AMENT_PREFIX_PATH=os.pathsep.join(map(str, [*prefixes, *extra_path, sys.prefix])),
            LD_LIBRARY_PATH=os.pathsep.join(map(str, libraries)),
            # ros_wheels_bootstrapper (this venv's path hook) would re-exec with the paths of sys.prefix;
            # they are set above for the venv's wheels, so it is told the job is done.
            _ROS_WHEELS_BOOTSTRAP_COMPLETE="1",
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("ws")
    colcon_venv = root / "colcon-venv"
    venv.EnvBuilder(with_pip=True).create(colcon_venv)
    python = colcon_venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "colcon-common-extensions", "setuptools<80"], check=True, timeout=600)
    # A path line, not this venv's own path hooks: third-party packages yes, the editable project no.
    colcon_site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      capture_output=True, text=True, check=True).stdout.strip())
    (colcon_site / "ezm-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (root / "src").mkdir()
    (root / "src" / "ezm").symlink_to(REPO)
    if SHARED_LAUNCH.is_dir():
        (root / "src" / "composition_interfaces").symlink_to(SHARED_LAUNCH / "composition_interfaces")
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PATH=f"{colcon_venv / 'bin'}:{os.environ['PATH']}")
    build = subprocess.run(
        ["colcon", "build", "--event-handlers", "console_direct-",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF",
         f"-DCMAKE_PROJECT_INCLUDE={REPO / 'tools/cmake/drop_missing_include_dirs.cmake'}"],
        cwd=root, env=env, timeout=900, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return Workspace(root, python)


@pytest.fixture(scope="module")
def launch_tools(tmp_path_factory) -> Path:
    """The real launch, launch_ros and ros2 CLI, installed into a directory of this session."""
    if not (SHARED_LAUNCH / "wheels").is_dir():
        pytest.skip(f"{SHARED_LAUNCH} is absent: the real ros2 launch tools are not at hand (CI has them)")
    target = tmp_path_factory.mktemp("ros2-launch-tools")
    # --no-deps: their metadata names ament-index-python, which the Kilted wheel provides under another name.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--target", target, *sorted((SHARED_LAUNCH / "wheels").glob("*.whl")), *LAUNCH_REQUIREMENTS],
                   check=True, timeout=600)
    return target


def test_colcon_builds_the_workspace(workspace):
    install = workspace.install
    for package in ROS_PACKAGES:
        assert (install / package / "share/ament_index/resource_index/packages" / package).is_file()
        assert (install / package / "share" / package / "package.xml").is_file()
    # What `ros2 launch ezm_ros sim.launch.py` needs: the node executables, the launch file and its config.
    for executable in ("ezm_ros/lib/ezm_ros/planner_node", "ezm_ros/lib/ezm_ros/web_view_node",
                       "ezm_ros/lib/ezm_ros/ezm-task", "ezm_ros/lib/ezm_ros/safety_node",
                       "ezm_ros/lib/ezm_ros/recorder_node", "ezm_ros/lib/ezm_ros/ezm-record-summary", "sim_bridge/lib/sim_bridge/sim_node",
                       "sim_bridge/lib/sim_bridge/visualization_node", "sim_bridge/lib/sim_bridge/ezm-sim",
                       "sim_bridge/lib/sim_bridge/ezm-bundle-eval", "sim_bridge/lib/sim_bridge/sim-bridge"):
        assert (install / executable).is_file(), executable
    for shared in ("launch/sim.launch.py", "config/sim.params.yaml", "config/ezm_sim.rviz"):
        assert (install / "ezm_ros/share/ezm_ros" / shared).is_file(), shared
    generated = list((install / "ezm_msgs/lib").glob("python3*/site-packages/ezm_msgs/msg/_task_command.py"))
    assert generated, "colcon did not generate the ezm_msgs Python bindings"
    # The search on its own: the planner imports it from here (a robot install has no ezm_training).
    search = install / "ezm_search/lib"
    assert list(search.glob("python3*/site-packages/ezm_training/search/policy.py"))
    assert not list(search.glob("python3*/site-packages/ezm_training/*.py")), "only the search, no learner"


_IMPORT_INSTALLED = """
import importlib, json, pkgutil, sys
roots, install = sys.argv[2:], sys.argv[1]
report = {"failed": {}, "outside": {}}
for root in roots:
    package = importlib.import_module(root)
    for info in [None, *pkgutil.walk_packages(package.__path__, root + ".")]:
        name = root if info is None else info.name
        if name.rsplit(".", 1)[-1] == "setup":  # colcon's setup.py, not code
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            report["failed"][name] = f"{type(exc).__name__}: {exc}"
            continue
        if not str(getattr(module, "__file__", "") or install).startswith(install):
            report["outside"][name] = module.__file__
print(json.dumps(report))
"""


def test_installed_modules_import_from_the_install_alone(workspace):
    # Every module of the ROS packages, on colcon's interpreter with only install/ on the path: a module that
    # imports something no package installs (ezm_training beyond the search, say) fails here.
    result = subprocess.run([workspace.python, "-c", _IMPORT_INSTALLED, str(workspace.install),
                             "ezm_ros", "sim_bridge", "ezm_training.search", "ezm_msgs"],
                            env=workspace.env(), capture_output=True, text=True, timeout=600, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"failed": {}, "outside": {}}


def _ros2(workspace: Workspace, tools: Path, *args: str, timeout_s: float = 60.0,
          attempts: int = 5) -> subprocess.CompletedProcess:
    """The ros2 CLI without its daemon. Its discovery listens 0.5 s only, so a miss is retried."""
    for attempt in range(attempts):
        result = subprocess.run([workspace.python, tools / "bin" / "ros2", *args], env=workspace.env((tools,)),
                                capture_output=True, text=True, timeout=timeout_s, cwd="/")
        if result.returncode == 0:
            return result
        time.sleep(1.0)
    return result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Launch:
    """`ros2 launch ezm_ros sim.launch.py ARGS` from the install, in its own session so that SIGINT reaches the
    launch process alone (ros2 launch handles SIGINT only); stop() ends it as Ctrl-C would and never leaves
    a node behind, whatever the assertions said."""

    def __init__(self, workspace: Workspace, tools: Path, log_path: Path, *args: str):
        self.log_path = log_path
        env = workspace.env((tools,)) | {"ROS_LOG_DIR": str(log_path.parent / f"{log_path.stem}-ros-logs")}
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [workspace.python, tools / "bin" / "ros2", "launch", "ezm_ros", "sim.launch.py", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd="/")

    def output(self) -> str:
        return self.log_path.read_text()

    def node_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"process started with pid \[(\d+)\]", self.output())]

    def stop(self) -> tuple[int, list[int]]:
        """SIGINT; (the launch's exit code, the pids of nodes still alive, which are then killed)."""
        pids = self.node_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            rc = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rc = self.process.wait()
        orphans = [pid for pid in pids if _alive(pid)]
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
        return rc, orphans


def test_ros2_launch_runs_the_stack_from_the_install(workspace, launch_tools, probe, tmp_path):
    commands = probe.collect(JointCommand, topics.JOINT_COMMAND, qos.COMMAND)
    status = probe.collect(PlannerStatus, topics.PLANNER_STATUS, qos.LATCHED)
    second_commands = probe.collect(JointCommand, f"/robot2/{topics.JOINT_COMMAND}", qos.COMMAND)
    safety = probe.collect(SafetyStatus, f"/robot2/{topics.SAFETY}", qos.LATCHED)
    launch = _Launch(workspace, launch_tools, tmp_path / "launch.log", "task:=stand")
    second = None
    try:
        output = launch.output
        # rviz:=true (the default) on a machine without rviz2: skipped with a warning, the rest runs.
        assert probe.spin_until(lambda: len(commands) >= 100, 120.0), output()
        assert "rviz2 is not installed; starting the stack without rviz2" in output()
        assert len(launch.node_pids()) == 3, output()  # simulator, planner, visualization
        # Each command carries the stamp of the state it was planned from: the simulator's 50 Hz control
        # ticks in sim time (a loaded machine may skip a tick or plan twice from one, never plan between two
        # or go back).
        stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for _, m in commands]
        assert all(stamp % CONTROL_DT_NS == 0 for stamp in stamps), stamps[:10]
        assert all(b >= a for a, b in zip(stamps, stamps[1:])), "commands go back in sim time"
        assert stamps[-1] - stamps[0] >= 50 * CONTROL_DT_NS, "the simulation does not advance"

        # --keep-alive: a reliable message published once needs its publisher alive until it is delivered.
        pub = _ros2(workspace, launch_tools, "topic", "pub", "--once", "-w", "1", "--keep-alive", "3",
                    "/ezm/task", "ezm_msgs/msg/TaskCommand", "{task: walk}")
        assert pub.returncode == 0, pub.stderr
        assert probe.spin_until(lambda: status and status[-1][1].active_task == "walk"), status[-1][1]

        call = _ros2(workspace, launch_tools, "service", "call", "/ezm/switch_task", "ezm_msgs/srv/SwitchTask",
                     "{command: {task: run}}")
        assert call.returncode == 0 and "accepted=True" in call.stdout, call.stdout + call.stderr
        assert probe.spin_until(lambda: status[-1][1].active_task == "run"), status[-1][1]
        refused = _ros2(workspace, launch_tools, "service", "call", "/ezm/switch_task", "ezm_msgs/srv/SwitchTask",
                        "{command: {task: fly}}")
        assert "accepted=False" in refused.stdout and "unknown task 'fly'" in refused.stdout, refused.stdout

        param = _ros2(workspace, launch_tools, "param", "get", "--no-daemon", "--spin-time", DISCOVERY_SPIN_S,
                      "/ezm_planner", "control_rate_hz")
        assert param.returncode == 0 and "50.0" in param.stdout, param.stdout + param.stderr

        # A second stack in the same domain, as README says: its own namespace, and no second /clock. This one
        # with the safety layer: the planner remapped onto ezm/planner_command, the safety node alone on
        # joint_command, walking to PLAN by itself (autostart).
        second = _Launch(workspace, launch_tools, tmp_path / "second.log", "namespace:=robot2",
                         "publish_clock:=false", "rviz:=false", "safety:=true")
        first_count = len(commands)
        assert probe.spin_until(lambda: len(second_commands) >= 50, 120.0), second.output()
        assert probe.node.count_publishers(topics.CLOCK) == 1, "one /clock per domain"
        assert probe.spin_until(lambda: any(m.mode == "PLAN" for _, m in safety), 30.0), second.output()
        assert probe.node.count_publishers(f"/robot2/{topics.JOINT_COMMAND}") == 1, "the safety node alone"
        assert probe.node.count_publishers(f"/robot2/{topics.PLANNER_COMMAND}") == 1, "the planner, remapped"
        assert len(commands) > first_count, "the first stack keeps commanding"
        second_stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for _, m in second_commands]
        assert all(b >= a for a, b in zip(second_stamps, second_stamps[1:])), "each stack its own topics"
        status_second = _ros2(workspace, launch_tools, "param", "get", "--no-daemon", "--spin-time",
                              DISCOVERY_SPIN_S, "/robot2/ezm_planner", "control_rate_hz")
        assert status_second.returncode == 0 and "50.0" in status_second.stdout, status_second.stderr
        assert launch.process.poll() is None and second.process.poll() is None, output() + second.output()
    finally:
        results = [(run, *run.stop()) for run in (second, launch) if run is not None]
    for run, rc, orphans in results:
        assert rc == 0, run.output()
        assert not orphans, f"nodes left running after SIGINT: {orphans}"
        assert "Traceback" not in run.output()


def test_the_launch_ends_when_the_planner_cannot_start(workspace, launch_tools, tmp_path):
    # The planner is essential: without a model it exits with a message, and the launch stops the simulator
    # instead of leaving it waiting for commands that never come.
    env = workspace.env((launch_tools,)) | {"ROS_LOG_DIR": str(tmp_path / "ros-logs")}
    result = subprocess.run([workspace.python, launch_tools / "bin" / "ros2", "launch", "ezm_ros", "sim.launch.py",
                             "rviz:=false", f"model:={tmp_path / 'nowhere'}"],
                            env=env, capture_output=True, text=True, timeout=120, cwd="/", start_new_session=True)
    output = result.stdout + result.stderr
    assert "cannot start" in output and "not a directory" in output, output
    assert "process[planner_node-2] was required: shutting down launched system" in output, output
    pids = [int(pid) for pid in re.findall(r"process started with pid \[(\d+)\]", output)]
    assert pids and not [pid for pid in pids if _alive(pid)], output
