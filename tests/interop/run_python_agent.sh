#!/usr/bin/env bash
# Interop: the reference Python agent (PyPI 0.8.17) against our `fustor-fusion` on loopback.
#
# The Python packages are a black-box peer in a throwaway venv. The script starts our Fusion,
# starts the Python agent on a directory, changes files and checks through the query API that
# the view converges: a user can swap the Python Fusion for ours and keep their agents.
#
# Usage: tests/interop/run_python_agent.sh      (KEEP=1 keeps the work directory)
# Env:   FUSTOR_PY_AGENT_VENV   venv to use/create (default /tmp/fustor-pyagent-venv)
#        FUSTOR_FUSION_BIN      fusion binary (default: cargo build, CARGO_TARGET_DIR honoured)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${FUSTOR_PY_AGENT_VENV:-/tmp/fustor-pyagent-venv}"
PASS=0
FAIL=0
say() { printf '\n== %s\n' "$*"; }
ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }

if [ ! -x "$VENV/bin/fustor-agent" ]; then
    say "installing the Python agent into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'fustor-agent==0.8.17' 'fustor-source-fs==0.8.17' \
        'fustor-sender-http==0.8.17' 'watchdog<7'
fi
if [ -z "${FUSTOR_FUSION_BIN:-}" ]; then
    say "building fustor-fusion"
    (cd "$ROOT" && cargo build -q -p fustor-fusion)
    FUSTOR_FUSION_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/fustor-fusion"
fi

WORK="$(mktemp -d /tmp/fustor-pyagent.XXXXXX)"
FHOME="$WORK/fusion-home"; AHOME="$WORK/agent-home"; DATA="$WORK/data"
mkdir -p "$FHOME/fusion-config" "$AHOME/agent-config" "$DATA/pre"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
M="$(free_port)"; R="$(free_port)"
FUSION_PID=""
cleanup() {
    FUSTOR_HOME="$AHOME" "$VENV/bin/fustor-agent" stop >/dev/null 2>&1 || true
    [ -n "$FUSION_PID" ] && kill "$FUSION_PID" 2>/dev/null || true
    [ -n "$FUSION_PID" ] && wait "$FUSION_PID" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for i in $(seq 1 20); do echo "pre $i" > "$DATA/pre/f$i.txt"; done
# Latin-1 names (not valid UTF-8, issue 9); see the check below for what 0.8.17 sends.
echo e9 > "$DATA/$(printf 'caf\xe9.txt')"
echo e88 > "$DATA/$(printf 'caf\xe8.txt')"

cat > "$FHOME/fusion-config/default.yaml" <<YAML
host: 127.0.0.1
port: $M
session_cleanup_interval: 1
admin_keys: [{name: ops, key: admin-key}]
receivers:
  http-main: {driver: http, bind_host: 127.0.0.1, port: $R, api_keys: [{key: agent-key, pipe_id: v1}]}
views:
  v1: {driver: fs, api_keys: [qk1]}
pipes:
  v1: {receiver: http-main, views: [v1], session_timeout_seconds: 6, audit_interval_sec: 5, sentinel_interval_sec: 5}
YAML
cat > "$AHOME/agent-config/default.yaml" <<YAML
agent_id: py-agent
sources:
  data: {driver: fs, uri: "$DATA"}
senders:
  fusion: {driver: fusion, uri: "http://127.0.0.1:$R", credential: {key: agent-key}}
pipes:
  v1: {source: data, sender: fusion}
YAML

say "starting our Fusion (main $M, receiver $R) and the Python agent"
"$FUSTOR_FUSION_BIN" --home "$FHOME" start > "$WORK/fusion.out" 2>&1 &
FUSION_PID=$!
sleep 1
FUSTOR_HOME="$AHOME" "$VENV/bin/fustor-agent" start -D > "$WORK/agent.out" 2>&1 || true

api() { curl -s -H 'X-API-Key: qk1' "http://127.0.0.1:$M/api/v1/views/v1/$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: qk1' "http://127.0.0.1:$M/api/v1/views/v1/$1"; }
wait_for() { # description, seconds, command...
    local what="$1" secs="$2"; shift 2
    for _ in $(seq 1 $((secs * 5))); do if "$@" >/dev/null 2>&1; then ok "$what"; return 0; fi; sleep 0.2; done
    bad "$what"; return 1
}
has_path() { api "tree?path=$1&max_depth=0" | grep -q "\"path\":\"$1\""; }
gone() { [ "$(code "tree?path=$1&max_depth=0")" = 404 ]; }
ready() { [ "$(code stats)" = 200 ]; }
leader() { api sessions | grep -q '"role":"leader"'; }
realtime() { api sessions | grep -q '"can_realtime":true'; }
# byte_node PCT_PATH RAW SIZE|None: the node asked for by percent-encoded bytes (`/caf%E9.txt`) is
# the file with those raw bytes and that size (os.fsencode undoes any `\udcXX` escapes).
byte_node() {
    api "tree?path=$1&max_depth=0" | python3 -c "import json,os,sys
n=json.load(sys.stdin)
sys.exit(0 if os.fsencode(n['path'])==$2 and $3 in (None, n['size']) else 1)" 2>/dev/null
}

say "session, snapshot and readiness"
wait_for "Python agent holds a leader session" 30 leader || true
wait_for "snapshot end makes the view ready" 60 ready || true
wait_for "pre-existing files arrive by snapshot" 30 has_path /pre/f20.txt || true
wait_for "agent reports can_realtime" 30 realtime || true
# The Python agent 0.8.17 builds its task id from its own instance id, not `agent_id`; whatever
# it sends, the node's lineage must name the same agent as its session.
AID="$(api sessions | python3 -c 'import sys,json; print(json.load(sys.stdin)["active_sessions"][0]["agent_id"])' 2>/dev/null || true)"
LAID="$(api 'tree?path=/pre/f20.txt&max_depth=0' | python3 -c 'import sys,json; print(json.load(sys.stdin)["last_agent_id"])' 2>/dev/null || true)"
[ -n "$AID" ] && [ "$AID" = "$LAID" ] && ok "node lineage names the session's agent ($AID)" || bad "lineage: session $AID, node $LAID"

say "names that are not valid UTF-8 (issue 9)"
# The reference agent 0.8.17 is lossy here: fustor_fusion_sdk's sanitize_surrogate_characters
# encodes every row with errors='replace' before sending, so caf\xe9.txt and caf\xe8.txt both
# arrive as "caf?.txt" (one node). What we check is that our Fusion takes its rows without a
# 4xx or an error and answers for them; distinct names from a PEP 383 sender (`\udcXX`, what our
# agent sends) are covered by run_python_fusion.sh and crates/fustor-agent/tests/names_undecodable.rs.
wait_for "the reference agent's Latin-1 rows are accepted (listed as /caf?.txt)" 30 \
    byte_node /caf%3F.txt "b'/caf?.txt'" None || true
echo 1 > "$DATA/$(printf 'new\xe9.txt')"
wait_for "realtime: its Latin-1 row (/new?.txt) is accepted" 30 byte_node /new%3F.txt "b'/new?.txt'" 2 || true

say "realtime changes"
echo hello > "$DATA/new.txt"
wait_for "created file appears" 30 has_path /new.txt || true
mkdir -p "$DATA/d1/d2" && echo x > "$DATA/d1/d2/deep.txt"
wait_for "file in new directories appears" 60 has_path /d1/d2/deep.txt || true
rm "$DATA/new.txt"
wait_for "deleted file disappears" 60 gone /new.txt || true
mv "$DATA/pre/f1.txt" "$DATA/pre/renamed.txt"
wait_for "renamed file appears under its new name" 60 has_path /pre/renamed.txt || true

say "registry commands the reference agent does not know (issue 15)"
# A start_pipe action travels as a new command type in a heartbeat answer: the Python agent
# must skip it and keep streaming. It reports no outcome, so the action stays "delivered".
admin() { curl -s -H 'X-API-Key: admin-key' "$@"; }
ACT="$(admin -X POST -H 'Content-Type: application/json' -d '{"action":"start_pipe","pipe":"v1"}' \
    "http://127.0.0.1:$M/api/v1/admin/agents/$AID/actions" | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])' 2>/dev/null || true)"
[ -n "$ACT" ] && ok "start_pipe action recorded (id $ACT)" || bad "start_pipe action not recorded"
delivered() { admin "http://127.0.0.1:$M/api/v1/admin/actions?agent=$AID" | grep -q '"outcome":"delivered"'; }
wait_for "the action is delivered in a heartbeat answer" 30 delivered || true
echo after > "$DATA/after-command.txt"
wait_for "the agent keeps streaming after the unknown command" 30 has_path /after-command.txt || true

say "no errors on our side"
if grep -E '" 4[0-9][0-9] |ERROR' "$FHOME/logs/fusion.log" >/dev/null 2>&1; then
    bad "Fusion logged errors:"; grep -E 'ERROR' "$FHOME/logs/fusion.log" | head -5
else
    ok "Fusion logged no errors"
fi

printf '\n%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" = 0 ]
