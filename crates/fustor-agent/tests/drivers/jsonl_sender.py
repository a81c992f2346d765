#!/usr/bin/env python3
"""An exec sender for the tests: appends every received row to the file named by the uri,
one JSON object per line ({"source_type", "path", "size"}), and acknowledges each request."""

import json
import sys


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


hello = json.loads(sys.stdin.readline())
assert hello["role"] == "sender", hello
out = open(hello["uri"], "a", encoding="utf-8")
send({"type": "hello", "protocol": 1, "driver": "jsonl-sender"})
sessions = 0
for line in sys.stdin:
    msg = json.loads(line)
    kind = msg["type"]
    if kind == "ping":
        send({"type": "pong", "id": msg["id"]})
    elif kind == "open_session":
        sessions += 1
        send({"type": "session", "id": msg["id"], "session_id": f"jsonl-{sessions}"})
    elif kind == "batch":
        for ev in msg["events"]:
            for row in ev["rows"]:
                rec = {"source_type": msg["source_type"], "event_type": ev["event_type"],
                       "path": row.get("path"), "size": row.get("size")}
                out.write(json.dumps(rec) + "\n")
        out.flush()
        send({"type": "ack", "id": msg["id"]})
    elif kind in ("audit_end", "close_session"):
        send({"type": "ack", "id": msg["id"]})
    elif kind == "shutdown":
        break
