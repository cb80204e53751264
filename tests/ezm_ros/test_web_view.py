"""The browser view in real headless Chromium: the page shows the H1 that the simulator publishes.

Chromium comes from Debian's `chromium` package (nothing downloads a browser at run time). Where it is
missing, the test installs it when running as root (CI does), and otherwise says why it is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from visualization_msgs.msg import MarkerArray

from ezm_ros import qos, topics

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
#: Pixels darker than this (0-255 luminance) belong to the robot: the scene is white and light grey.
DARK_LUMINANCE = 110
#: Where the robot stands in a 1024 x 768 screenshot from the initial camera (rows, columns); the control
#: panel and the software-WebGL notice (dark text) lie outside it.
ROBOT_REGION = (slice(150, 700), slice(300, 700))
#: The H1 covers ~10,000 dark pixels of that region (measured); the page without it has 2.
MIN_ROBOT_PIXELS = 1000


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium) and installing it "
                    "needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900,
                   capture_output=True)
    path = shutil.which("chromium")
    assert path, "apt-get installed chromium but it is not on PATH"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot_when(url: str, out: Path, ready, size: tuple[int, int] = (1024, 768),
                    timeout_s: float = 90.0) -> bool:
    """Open `url` in headless Chromium and save screenshots to `out` once a second (real time) until
    `ready(png_path)` holds; False if it never did within `timeout_s`.

    Driven over the DevTools protocol (Page.navigate, Page.captureScreenshot) rather than `--screenshot`
    with `--virtual-time-budget`: the page streams scene updates over a websocket, and Chromium's virtual
    clock then advances erratically on a loaded machine (from 4 s to minutes for the same budget).
    """
    from websockets.sync.client import connect  # viser's own dependency

    with tempfile.TemporaryDirectory(prefix="ezm-chromium-") as profile:
        browser = subprocess.Popen([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=0", f"--window-size={size[0]},{size[1]}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout_s
            port_file = Path(profile) / "DevToolsActivePort"
            while not (port_file.is_file() and port_file.read_text().strip()):
                assert time.monotonic() < deadline and browser.poll() is None, "Chromium did not start"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                page = next(t for t in json.load(response) if t["type"] == "page")
            with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as devtools:
                calls = iter(range(1, 1_000_000))

                def call(method: str, **params):
                    request_id = next(calls)
                    devtools.send(json.dumps({"id": request_id, "method": method, "params": params}))
                    while True:  # skip events until our answer
                        message = json.loads(devtools.recv(timeout=30))
                        if message.get("id") == request_id:
                            return message.get("result", {})

                call("Page.navigate", url=url)
                while time.monotonic() < deadline:
                    time.sleep(1.0)
                    out.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
                    if ready(out):
                        return True
            return False
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()


def _dark_pixels(png: Path) -> int:
    import imageio.v2 as imageio

    image = imageio.imread(png)[..., :3].astype(np.float64)
    luminance = image[ROBOT_REGION] @ np.array([0.299, 0.587, 0.114])
    return int((luminance < DARK_LUMINANCE).sum())


def test_browser_view_shows_the_robot(launch, probe, tmp_path):
    chromium = _chromium()  # before starting nodes: installing may take minutes
    assert chromium
    port = _free_port()
    sim = launch("sim_bridge.sim_node", "ezm_sim", task="walk")
    visualization = launch("sim_bridge.visualization_node", "ezm_visualization", task="walk")
    web = launch("ezm_ros.web_view_node", "ezm_web_view", port=port)
    markers = probe.collect(MarkerArray, topics.MARKERS, qos.VISUALIZATION)
    robot_meshes = lambda: any(m.ns == "robot" and m.mesh_resource.startswith("file://")  # noqa: E731
                               for _, array in markers for m in array.markers)
    assert probe.spin_until(robot_meshes), web.output()
    probe.spin_for(1.0)  # the web view has received markers too by now
    # The browser view keeps the last scene; stopping the stream keeps the CPU for Chromium's software
    # WebGL on this 2-core machine.
    visualization.stop()
    sim.stop()

    shot = tmp_path / "web_view.png"
    shows_robot = screenshot_when(f"http://127.0.0.1:{port}", shot, lambda png: _dark_pixels(png) > MIN_ROBOT_PIXELS)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shows_robot, f"no robot in the screenshot ({shot}: {_dark_pixels(shot)} dark pixels)"
    assert web.alive(), web.output()
