"""Run the loopback wire server in its own process (so it does not share the GIL).

Prints the port, then serves until its standard input closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.wire_server import Reply, WireServer

words = int(sys.argv[1]) if len(sys.argv) > 1 else 8
with WireServer() as server:
    server.default = Reply(text=" ".join(f"w{i}" for i in range(words)))
    print(server.port, flush=True)
    sys.stdin.read()
