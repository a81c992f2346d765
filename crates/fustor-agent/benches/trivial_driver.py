#!/usr/bin/env python3
"""A trivial exec source for the throughput bench: N rows (1,000 per directory) as its
snapshot, or (`changes` mode) as N one-row change messages after an empty snapshot.
Rows are formatted, not json.dumps'ed, so that the agent side dominates the figures."""

import json
import sys

n = int(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "snapshot"
w = sys.stdout.write
ROW = '{"path":"/d%d/f%d","size":%d,"modified_time":1700000000.0,"is_directory":false}'

sys.stdin.readline()
w('{"type":"hello","protocol":1,"driver":"trivial","capabilities":{"snapshot":true,"changes":true}}\n')
sys.stdout.flush()
for line in sys.stdin:
    m = json.loads(line)
    if m["type"] == "snapshot":
        rid = m["id"]
        if mode == "snapshot":
            for start in range(0, n, 500):
                rows = ",".join(ROW % (i // 1000, i, i) for i in range(start, min(n, start + 500)))
                w('{"type":"rows","id":%d,"rows":[%s]}\n' % (rid, rows))
        w('{"type":"end","id":%d}\n' % rid)
        sys.stdout.flush()
        if mode == "changes":
            # After the snapshot request: the pipe is subscribed (message-first), so no
            # change is sent before anyone listens.
            for i in range(n):
                w('{"type":"change","event_type":"update","rows":[' + ROW % (i // 1000, i, i) + "]}\n")
            sys.stdout.flush()
    elif m["type"] == "ping":
        w('{"type":"pong","id":%d}\n' % m["id"])
        sys.stdout.flush()
    elif m["type"] == "shutdown":
        break
