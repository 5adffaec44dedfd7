"""Add a header comment to a file through the workspace's Symphony daemon.

    python examples/add_header.py path/to/file.py "# Copyright 2026 Example"

The daemon must be running for this folder (`./dev run`, or `symphony attach`/`symphony open`
start one). The edit goes through the shared buffer: every editor attached to the daemon sees it,
and the file is saved atomically (refused if it changed on disk meanwhile).
"""

from __future__ import annotations

import sys

from symphony.clients import connect


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, header = argv
    with connect() as daemon:
        buffer = daemon.open(path)
        if daemon.get_text(buffer.uri).text.startswith(header):
            print(f"{path}: already has the header")
            return 0
        start = {"line": 0, "character": 0}
        edit = {"range": {"start": start, "end": start}, "text": header + "\n"}
        result = daemon.edit(buffer.uri, [edit], base_revision=buffer.revision)
        saved = daemon.save(buffer.uri)
        print(f"{path}: header added at revision {result.revision}, saved to {saved.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
