"""`ezm-keys`: the safety layer's modes from a keyboard, as its joystick mapping gives them from a pad.

    ezm-keys                       # the keys of launch/config/mode_keys.yaml (d damping, s stand_up, h hold,
                                   # p plan, space estop, r reset); q quits
    ezm-keys --namespace robot2    # a robot launched under a namespace
    ezm-keys --keys my_keys.yaml   # another mapping

Each key calls its intent's std_srvs/Trigger service (`ezm/mode/<intent>` of ezm_ros/safety_node.py) and prints
the answer, so a refused transition shows why. In a terminal a key acts at once (no Enter); from a pipe each
character of the input does, and the end of the input quits. The mapping is read strictly: every key names an
intent, one character or `space`, no character twice (a typo must not map E_STOP to nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path

import rclpy
from std_srvs.srv import Trigger

from ezm_ros import nodes, topics
from ezm_ros.safety_node import INTENTS

KEYS_FILE = "mode_keys.yaml"
QUIT = "q"
#: Discovery of the safety node's services on loopback takes ~1 s; leave room for a loaded machine.
SERVICE_TIMEOUT_S = 10.0


class KeysError(ValueError):
    """A key mapping that is not exactly the format; the message names the entry."""


def load_keys(path: Path) -> dict[str, str]:
    """{character: intent} from a YAML mapping of intent -> key (one character, or `space`)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise KeysError(f"{path}: {err}") from None
    if not isinstance(data, dict) or not data:
        raise KeysError(f"{path}: a mapping of intent -> key expected")
    keys: dict[str, str] = {}
    for intent, key in data.items():
        if intent not in INTENTS:
            raise KeysError(f"{path}: {intent!r} is not an intent ({', '.join(INTENTS)})")
        character = " " if key == "space" else key
        if not isinstance(character, str) or len(character) != 1 or character == QUIT:
            raise KeysError(f"{path}: {intent}: {key!r} is not one character or 'space' ({QUIT!r} quits)")
        if character in keys:
            raise KeysError(f"{path}: {key!r} is the key of both {keys[character]} and {intent}")
        keys[character] = intent
    return keys


@contextlib.contextmanager
def _keystrokes() -> Iterator[Iterator[str]]:
    """Characters as they are typed (a terminal in cbreak mode, restored after), or those of piped input."""
    if not sys.stdin.isatty():
        yield iter(lambda: sys.stdin.read(1), "")
        return
    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin)
        yield iter(lambda: sys.stdin.read(1), "")
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezm-keys", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=Path, default=None, help=f"key mapping (default: launch/config/{KEYS_FILE})")
    parser.add_argument("--namespace", default="", help="the robot's namespace ('' for the root one)")
    args = parser.parse_args(argv)
    try:
        keys = load_keys(args.keys or nodes.config_file(KEYS_FILE))
    except KeysError as err:
        print(f"ezm-keys: {err}", file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node("ezm_keys", namespace=args.namespace.strip("/") or None)
    try:
        clients = {intent: node.create_client(Trigger, f"{topics.MODE_SERVICES}/{intent}")
                   for intent in set(keys.values())}
        print("keys: " + ", ".join(f"{'space' if k == ' ' else k} {intent}" for k, intent in keys.items())
              + f", {QUIT} quit", flush=True)
        with _keystrokes() as typed:
            for character in typed:
                if character == QUIT:
                    break
                if character in ("\n", "\r"):
                    continue
                intent = keys.get(character)
                if intent is None:
                    print(f"{character!r}: no intent", flush=True)
                    continue
                print(f"{intent}: {_call(node, clients[intent])}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


def _call(node, client) -> str:
    if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
        return f"no answer: {client.srv_name} is not offered (is the safety node running?)"
    future = client.call_async(Trigger.Request())
    rclpy.spin_until_future_complete(node, future, timeout_sec=SERVICE_TIMEOUT_S)
    if not future.done():
        return f"no answer from {client.srv_name} within {SERVICE_TIMEOUT_S:g} s"
    result = future.result()
    return ("done: " if result.success else "refused: ") + result.message


if __name__ == "__main__":
    raise SystemExit(main())
