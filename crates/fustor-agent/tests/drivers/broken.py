#!/usr/bin/env python3
"""Deliberately broken exec source drivers for the supervision tests: `broken.py MODE`.

garbage  handshake, then a line that is not JSON
huge     handshake, then one line of 2 MiB
hang     handshake, then never reads nor answers again
silent   never answers the hello
crash    writes to stderr (with a control character) and exits 3 at once
flood    handshake, then changes as fast as the agent takes them
"""

import json
import sys
import threading
import time

mode = sys.argv[1]
lock = threading.Lock()


def send(msg):
    with lock:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()


def answer_pings():
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("type") == "ping":
            send({"type": "pong", "id": msg["id"]})


def hello():
    sys.stdin.readline()
    send({"type": "hello", "protocol": 1, "driver": "broken-" + mode,
          "capabilities": {"snapshot": True, "changes": True}})


if mode == "crash":
    sys.stderr.write("crashing on purpose \x1b[31m(red)\n")
    sys.exit(3)
if mode == "silent":
    time.sleep(3600)
hello()
if mode == "garbage":
    sys.stdout.write("this is not json\n")
    sys.stdout.flush()
    time.sleep(3600)
elif mode == "huge":
    sys.stdout.write('{"type":"pong","id":1,"pad":"' + "x" * (2 << 20) + '"}\n')
    sys.stdout.flush()
    time.sleep(3600)
elif mode == "hang":
    time.sleep(3600)
elif mode == "flood":
    threading.Thread(target=answer_pings, daemon=True).start()
    n = 0
    row = {"path": "/f", "size": 1, "modified_time": 1.0, "is_directory": False}
    while True:
        n += 1
        row["size"] = n
        send({"type": "change", "event_type": "update", "rows": [row]})
