"""Add the manifest's own checksum (`manifest_sha256`) to a bundle written before manifests carried one.

    python tools/seal_manifest.py models/ezm-h1

The planner refuses a manifest without it. Sealing vouches for the manifest as it is now, so run it only on
a bundle you trust (one that loaded before, from ezm-export); a bundle of unknown history is exported again.
The file is rewritten as ezm-export writes it (same fields and values, the exporter's layout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ezm_ros.manifest import CHECKSUM_KEY, MANIFEST_FILE, Manifest, sealed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the bundle directory (holding manifest.json)")
    args = parser.parse_args(argv)
    path = args.bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    manifest = Manifest.from_json(json.dumps(sealed(data)))  # every other check the planner makes must pass
    text = manifest.to_json()
    path.write_text(text)
    print(f"{path}: {CHECKSUM_KEY} {json.loads(text)[CHECKSUM_KEY]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
