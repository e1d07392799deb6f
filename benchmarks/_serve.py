"""Run the loopback wire server in its own process (so it does not share the GIL).

    python benchmarks/_serve.py WORDS [FAULT_RATE] [SLOW_S]

Prints the port, then serves until its standard input closes. With FAULT_RATE, that
share of requests (seeded, reproducible) fails evenly as 429 (Retry-After: 1), 503, a
reset connection, a response slower than SLOW_S seconds, or a 200 whose body cannot be
read (HTML, JSON cut short, JSON without choices).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.wire_server import Reply, WireServer

words = int(sys.argv[1]) if len(sys.argv) > 1 else 8
fault_rate = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
slow_s = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
faults = [
    Reply(status=429, headers={"retry-after": "1"}),
    Reply(status=503),
    Reply(reset=True),
    Reply(delay_s=slow_s),
    Reply(raw=b"<html>upstream hiccup</html>", content_type="text/html"),
    Reply(raw=b'{"id": "chatcmpl-1", "object": "chat.comp'),
    Reply(body={"id": "chatcmpl-1", "object": "chat.completion"}),
]
rng = random.Random(20261125)  # noqa: S311 - reproducible fault mix, not security

with WireServer() as server:
    server.default = Reply(text=" ".join(f"w{i}" for i in range(words)))
    if fault_rate:
        server.chooser = lambda: (
            rng.choice(faults) if rng.random() < fault_rate else server.default
        )
    print(server.port, flush=True)
    sys.stdin.read()
