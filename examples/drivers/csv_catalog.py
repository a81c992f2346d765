#!/usr/bin/env python3
"""A Fustor source driver that publishes a CSV catalogue of files (exec protocol v1).

Standard library only; it imports nothing from Fustor. The catalogue has a header line and
the columns `path,size,mtime` (mtime in seconds since the epoch); each line is one file.
The driver sends the catalogue as its snapshot, then polls the file and sends what changed
(new, modified and removed lines) as changes. See docs/drivers.md for the protocol.

Configuration (driver_params.config): {"poll_interval_s": 0.5}. The source uri is the path
of the CSV file.
"""

import csv
import json
import os
import sys
import threading
import time

PROTOCOL = 1
out_lock = threading.Lock()


def send(msg):
    line = json.dumps(msg, separators=(",", ":"))
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def read_catalogue(path):
    """{path: row} of the CSV file; an unreadable file is an empty catalogue."""
    rows = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                p = "/" + rec["path"].strip().lstrip("/")
                mtime = float(rec["mtime"])
                rows[p] = {
                    "path": p,
                    "file_name": p.rsplit("/", 1)[-1],
                    "size": int(rec["size"]),
                    "modified_time": mtime,
                    "created_time": mtime,
                    "is_directory": False,
                }
    except (OSError, KeyError, ValueError) as e:
        log(f"catalogue not readable: {e}")
    return rows


class Catalogue:
    def __init__(self, path, poll):
        self.path = path
        self.poll = poll
        self.lock = threading.Lock()
        self.rows = read_catalogue(path)
        self.stamp = self._stamp()

    def _stamp(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    def watch(self):
        """Polls the file; sends each difference as a change."""
        while True:
            time.sleep(self.poll)
            stamp = self._stamp()
            if stamp == self.stamp:
                continue
            new = read_catalogue(self.path)
            with self.lock:
                old, self.rows, self.stamp = self.rows, new, stamp
            upserts = [r for p, r in new.items() if old.get(p) != r]
            deletes = [{"path": p} for p in old if p not in new]
            if upserts:
                send({"type": "change", "event_type": "update", "rows": upserts})
            if deletes:
                send({"type": "change", "event_type": "delete", "rows": deletes})

    def stream(self, req_id, prefix="/", recursive=True):
        with self.lock:
            rows = list(self.rows.values())
        base = prefix.rstrip("/") + "/"
        if prefix != "/":
            rows = [r for r in rows if r["path"] == prefix or r["path"].startswith(base)]
        if not recursive:
            rows = [r for r in rows if "/" not in r["path"][len(base):]]
        for i in range(0, len(rows), 500):
            send({"type": "rows", "id": req_id, "rows": rows[i:i + 500]})
        send({"type": "end", "id": req_id})

    def sentinel(self, req_id, paths):
        with self.lock:
            items = []
            for p in paths:
                r = self.rows.get(p)
                if r is None:
                    items.append({"path": p, "exists": False})
                else:
                    items.append({"path": p, "exists": True,
                                  "mtime": r["modified_time"], "size": r["size"]})
        send({"type": "sentinel_result", "id": req_id, "items": items})


def main():
    hello = json.loads(sys.stdin.readline() or "{}")
    if hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL:
        send({"type": "error", "message": "expected a protocol 1 hello", "fatal": True})
        return 1
    config = hello.get("config") or {}
    cat = Catalogue(hello["uri"], float(config.get("poll_interval_s", 0.5)))
    send({
        "type": "hello",
        "protocol": PROTOCOL,
        "driver": "csv-catalog",
        "version": "1.0",
        "capabilities": {"snapshot": True, "changes": True, "sentinel": True,
                         "on_demand": True},
        "fields": ["path", "file_name", "size", "modified_time", "created_time",
                   "is_directory"],
    })
    log(f"serving {len(cat.rows)} catalogue rows")
    threading.Thread(target=cat.watch, daemon=True).start()
    for line in sys.stdin:
        msg = json.loads(line)
        kind = msg.get("type")
        if kind == "snapshot":
            cat.stream(msg["id"])
        elif kind == "scan":
            cat.stream(msg["id"], msg.get("path", "/"), msg.get("recursive", True))
        elif kind == "sentinel":
            cat.sentinel(msg["id"], msg.get("paths", []))
        elif kind == "ping":
            send({"type": "pong", "id": msg["id"]})
        elif kind == "shutdown":
            return 0
        else:
            send({"type": "error", "id": msg.get("id"), "message": f"unsupported: {kind}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
