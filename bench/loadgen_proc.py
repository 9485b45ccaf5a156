"""One load-generator process, driven by the orchestrator (bench/connections.py) over its stdin and stdout.

    python bench/loadgen_proc.py CONFIG_JSON

CONFIG_JSON is the `ampgate._native.LoadGen` config. The process prints one JSON line when ready
(`{"ready": true, "pid": ...}`, or `{"error": "..."}` and exits 2), then reads one JSON command per line and
answers each with one JSON line, so the orchestrator can move every process through the phases together:

    {"cmd": "boot", "timeout": 60}                          -> LoadGen.connect_and_boot
    {"cmd": "hold", "seconds": 10}                          -> LoadGen.hold
    {"cmd": "heartbeats", "duration": 10, "rate": 0, "inflight": 0}  -> LoadGen.heartbeats
    {"cmd": "close", "timeout": 5}                          -> LoadGen.close
    {"cmd": "exit"}

Every phase runs in Rust with the GIL released; this process's Python does nothing per connection.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from ampgate import _native


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    # The orchestrator owns Ctrl-C; it tells us to exit (or kills us) itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = json.loads(argv[0])
    try:
        lg = _native.LoadGen(config)
    except (OSError, ValueError) as e:
        _reply({"error": str(e)})
        return 2
    _reply({"ready": True, "pid": os.getpid(), "count": config["count"]})
    for line in sys.stdin:
        cmd = json.loads(line)
        name = cmd.get("cmd")
        t0 = time.monotonic()
        if name == "boot":
            out = lg.connect_and_boot(float(cmd.get("timeout", 60.0)))
        elif name == "hold":
            out = lg.hold(float(cmd["seconds"]))
        elif name == "heartbeats":
            out = lg.heartbeats(
                float(cmd["duration"]), float(cmd.get("rate", 0.0)), int(cmd.get("inflight", 0))
            )
        elif name == "close":
            out = lg.close(float(cmd.get("timeout", 5.0)))
        elif name == "exit":
            _reply({"bye": True})
            return 0
        else:
            out = {"error": f"unknown command {name!r}"}
        out["cmd"] = name
        out["wall_s"] = time.monotonic() - t0
        _reply(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
