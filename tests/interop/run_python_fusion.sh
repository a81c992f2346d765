#!/usr/bin/env bash
# Interop: our `fustor-agent` against the reference Python Fusion (PyPI 0.8.17) on loopback.
#
# The Python packages are a black-box peer (installed into a throwaway venv), never code we
# copy. The script writes a Fusion config shaped like scenarios.md F0, starts Fusion and our
# agent, changes files, and checks that GET /api/v1/views/<v>/tree converges.
#
# Usage: tests/interop/run_python_fusion.sh
# Env:   FUSTOR_PY_VENV      venv to use/create (default /tmp/fustor-pyfusion-venv)
#        FUSTOR_AGENT_BIN    agent binary (default: cargo build, CARGO_TARGET_DIR honoured)
#        FUSTOR_FUSION_CMD   run this Fusion instead of the Python one, e.g. the Rust binary:
#                            '/path/fustor-fusion start' (gets `-h 127.0.0.1 -p PORT` appended)
#        KEEP=1              keep the work directory for inspection
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${FUSTOR_PY_VENV:-/tmp/fustor-pyfusion-venv}"
PASS=0
FAIL=0

say() { printf '\n== %s\n' "$*"; }
ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }

# --- peer: Python Fusion ---------------------------------------------------------------
if [ -z "${FUSTOR_FUSION_CMD:-}" ] && [ ! -x "$VENV/bin/fustor-fusion" ]; then
    say "installing the Python Fusion into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'fustor-fusion==0.8.17' 'fustor-receiver-http==0.8.17' \
        'fustor-view-fs==0.8.17' 'watchdog<7'
fi

# --- our agent --------------------------------------------------------------------------
if [ -z "${FUSTOR_AGENT_BIN:-}" ]; then
    say "building fustor-agent"
    (cd "$ROOT" && cargo build -q -p fustor-agent)
    FUSTOR_AGENT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/fustor-agent"
fi

WORK="$(mktemp -d /tmp/fustor-interop.XXXXXX)"
FHOME="$WORK/fusion-home"
AHOME="$WORK/agent-home"
DATA="$WORK/data"
EXTRA="$WORK/extra"
mkdir -p "$FHOME/fusion-config" "$AHOME/agent-config" "$DATA" "$EXTRA"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
M="$(free_port)"
R="$(free_port)"
FUSION_PID=""

cleanup() {
    FUSTOR_HOME="$AHOME" "$FUSTOR_AGENT_BIN" stop >/dev/null 2>&1 || true
    [ -n "$FUSION_PID" ] && kill "$FUSION_PID" 2>/dev/null || true
    [ -n "$FUSION_PID" ] && wait "$FUSION_PID" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

cat >"$FHOME/fusion-config/default.yaml" <<EOF
session_cleanup_interval: 1
receivers:
  http-main: {driver: http, bind_host: 127.0.0.1, port: $R, api_keys: [{key: agent-key, pipe_id: v1}, {key: agent-key-2, pipe_id: v2}]}
views:
  v1: {driver: fs, api_keys: [qk1], driver_params: {hot_file_threshold: 5.0, consistency: {tombstone_ttl_seconds: 0.5}}}
  v2: {driver: fs, api_keys: [qk2]}
pipes:
  v1: {receiver: http-main, views: [v1], session_timeout_seconds: 3, audit_interval_sec: 15, sentinel_interval_sec: 5}
  v2: {receiver: http-main, views: [v2]}
EOF

cat >"$AHOME/agent-config/default.yaml" <<EOF
agent_id: agent-a
sources:
  shared-fs: {driver: fs, uri: "$DATA"}
senders:
  fusion-main: {driver: fusion, uri: "http://127.0.0.1:$R", credential: {key: agent-key}}
pipes:
  v1: {source: shared-fs, sender: fusion-main}
EOF

start_fusion() {
    # shellcheck disable=SC2086 # the command is a word list on purpose
    FUSTOR_HOME="$FHOME" ${FUSTOR_FUSION_CMD:-"$VENV/bin/fustor-fusion" start} -h 127.0.0.1 -p "$M" \
        >>"$WORK/fusion.out" 2>&1 &
    FUSION_PID=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$M/" && return 0
        sleep 0.2
    done
    echo "Fusion did not start; output:"; tail -50 "$WORK/fusion.out"; exit 1
}

stop_fusion() {
    kill "$FUSION_PID" 2>/dev/null || true
    wait "$FUSION_PID" 2>/dev/null || true
    FUSION_PID=""
}

# code VIEW KEY PATH -> HTTP status of /tree?path=PATH&max_depth=0
code() {
    curl -s -o "$WORK/last.json" -w '%{http_code}' -H "X-API-Key: $2" \
        "http://127.0.0.1:$M/api/v1/views/$1/tree?path=$3&max_depth=0"
}
field() { python3 -c "import json,sys; print(json.load(open('$WORK/last.json')).get('$1'))"; }

# wait_for SECONDS DESCRIPTION COMMAND... : polls until COMMAND succeeds
wait_for() {
    local secs="$1" what="$2"
    shift 2
    local end=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$end" ]; do
        if "$@"; then ok "$what"; return 0; fi
        sleep 0.5
    done
    bad "$what (after ${secs}s)"
    return 0
}
present() { [ "$(code "$1" "$2" "$3")" = 200 ]; }
absent() { [ "$(code "$1" "$2" "$3")" = 404 ]; }
size_is() { present "$1" "$2" "$3" && [ "$(field size)" = "$4" ]; }
sessions() {
    curl -s -H "X-API-Key: $2" "http://127.0.0.1:$M/api/v1/views/$1/sessions"
}
leader_realtime() {
    sessions v1 qk1 | python3 -c 'import json,sys
d=json.load(sys.stdin)
s=[x for x in d.get("active_sessions",[]) if x.get("agent_id")=="agent-a"]
sys.exit(0 if len(s)==1 and s[0].get("role")=="leader" and s[0].get("can_realtime") else 1)'
}
# files_is VIEW KEY N: the view's stats count N files.
files_is() {
    curl -s -H "X-API-Key: $2" "http://127.0.0.1:$M/api/v1/views/$1/stats" |
        python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin).get('total_files')==$3 else 1)" 2>/dev/null
}
# latin1 VIEW KEY PRESENT ABSENT: the root lists every byte name of the Python list PRESENT and
# none of ABSENT. Names are compared as bytes (os.fsencode undoes the `\udcXX` escapes).
latin1() {
    curl -s -H "X-API-Key: $2" "http://127.0.0.1:$M/api/v1/views/$1/tree?path=/&max_depth=1" |
        python3 -c "import json,os,sys
names={os.fsencode(c['name']) for c in (json.load(sys.stdin).get('children') or [])}
sys.exit(0 if all(n in names for n in $3) and not any(n in names for n in $4) else 1)" 2>/dev/null
}
# latin1_listed ...: `latin1`, where the Fusion can list such names at all. The Python Fusion
# 0.8.17 stores them but answers 500 for any listing that holds one (its JSON encoder refuses
# lone surrogates): a reference limitation, reported as a note, not a failure.
latin1_listed() {
    local what="$1"; shift
    local status
    status="$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $2" \
        "http://127.0.0.1:$M/api/v1/views/$1/tree?path=/&max_depth=1")"
    if [ "$status" = 500 ] && [ -z "${FUSTOR_FUSION_CMD:-}" ]; then
        printf '  note %s: the Python Fusion cannot list such names (HTTP 500)\n' "$what"
        return 0
    fi
    wait_for 10 "$what" latin1 "$@"
}
no_sessions() {
    sessions "$1" "$2" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("count")==0 else 1)'
}

say "Fusion (${FUSTOR_FUSION_CMD:-Python 0.8.17}) on main :$M, receiver :$R"
start_fusion
echo "before-start" >"$DATA/pre.txt"
# Latin-1 names (not valid UTF-8), as on old NFS shares: two files, not one (issue 9).
echo e9 >"$DATA/$(printf 'caf\xe9.txt')"
echo e8 >"$DATA/$(printf 'caf\xe8.txt')"

say "agent start"
FUSTOR_HOME="$AHOME" "$FUSTOR_AGENT_BIN" start -D
wait_for 30 "snapshot: pre-existing /pre.txt visible (view ready)" present v1 qk1 /pre.txt
wait_for 15 "sessions: agent-a is leader with can_realtime=true" leader_realtime

say "realtime create / modify / delete (S73)"
echo x >"$DATA/t1.txt"
wait_for 10 "created /t1.txt appears" present v1 qk1 /t1.txt
echo y >>"$DATA/t1.txt"
wait_for 10 "appended /t1.txt has size 4" size_is v1 qk1 /t1.txt 4
rm "$DATA/t1.txt"
wait_for 10 "deleted /t1.txt disappears" absent v1 qk1 /t1.txt

say "names that are not valid UTF-8 (issue 9)"
if [ -n "${FUSTOR_FUSION_CMD:-}" ]; then
    # Our Fusion announces lossless_names: the agent sends an undecodable byte as `\udcXX`
    # (PEP 383); the files are counted and listed apart.
    wait_for 10 "snapshot: caf\\xe9.txt and caf\\xe8.txt count as two files" files_is v1 qk1 3
    latin1_listed "snapshot: caf\\xe9.txt and caf\\xe8.txt are listed apart" \
        v1 qk1 "[b'caf\\xe9.txt', b'caf\\xe8.txt']" "[b'caf\\xef\\xbf\\xbd.txt']"
    echo new >"$DATA/$(printf 'new\xe9.txt')"
    echo new >"$DATA/$(printf 'new\xe8.txt')"
    wait_for 10 "realtime: new\\xe9.txt and new\\xe8.txt count as two more" files_is v1 qk1 5
    latin1_listed "realtime: new\\xe9.txt and new\\xe8.txt are listed apart" \
        v1 qk1 "[b'new\\xe9.txt', b'new\\xe8.txt']" "[]"
    rm "$DATA/$(printf 'caf\xe9.txt')"
    wait_for 10 "delete of caf\\xe9.txt removes one file" files_is v1 qk1 4
    latin1_listed "delete of caf\\xe9.txt removes only that one" \
        v1 qk1 "[b'caf\\xe8.txt', b'new\\xe9.txt']" "[b'caf\\xe9.txt']"
else
    # The Python Fusion does not announce lossless_names (and answers 500 to listings holding
    # lone surrogates): our agent then sends `?` for such a byte, exactly as the Python agent
    # does, so the view stays listable (and the two names share one node, as with the Python
    # agent).
    wait_for 10 "snapshot: caf\\xe9.txt and caf\\xe8.txt arrive as caf?.txt" files_is v1 qk1 2
    wait_for 10 "snapshot: the root lists caf?.txt (HTTP 200, not 500)" \
        latin1 v1 qk1 "[b'caf?.txt']" "[b'caf\\xe9.txt', b'caf\\xef\\xbf\\xbd.txt']"
    echo new >"$DATA/$(printf 'new\xe9.txt')"
    wait_for 10 "realtime: new\\xe9.txt arrives as new?.txt" files_is v1 qk1 3
    wait_for 10 "realtime: the root lists new?.txt" latin1 v1 qk1 "[b'new?.txt']" "[]"
    echo new >"$DATA/$(printf 'new\xe8.txt')"
fi
# Later checks list no directory holding these names; remove them so the rest of the run (and
# the Python Fusion's sentinel tasks) is unaffected.
rm -f "$DATA/$(printf 'caf\xe9.txt')" "$DATA/$(printf 'caf\xe8.txt')" \
    "$DATA/$(printf 'new\xe9.txt')" "$DATA/$(printf 'new\xe8.txt')"
wait_for 10 "Latin-1 files removed" files_is v1 qk1 1

say "new directories are listed (pitfall 2) and renames"
mkdir -p "$DATA/deep/a/b" && echo z >"$DATA/deep/a/b/c.txt"
wait_for 10 "mkdir -p && write: /deep/a/b/c.txt appears" present v1 qk1 /deep/a/b/c.txt
echo tmp >"$DATA/t2.tmp" && mv "$DATA/t2.tmp" "$DATA/t2.final"
wait_for 10 "rename: /t2.final appears" present v1 qk1 /t2.final
wait_for 10 "rename: /t2.tmp is gone" absent v1 qk1 /t2.tmp
mkdir -p "$DATA/burst"
for i in $(seq 1 300); do echo "$i" >"$DATA/burst/f$i"; done
wait_for 20 "burst of 300 files: last one appears" present v1 qk1 /burst/f300
mv "$DATA/burst" "$DATA/burst2"
wait_for 30 "renamed directory: /burst2/f150 appears" present v1 qk1 /burst2/f150
wait_for 30 "renamed directory: /burst is gone" absent v1 qk1 /burst

say "hot add / remove of a pipe (S85, S86)"
echo extra >"$EXTRA/e.txt"
cat >"$AHOME/agent-config/extra.yaml" <<EOF
sources:
  extra-fs: {driver: fs, uri: "$EXTRA"}
senders:
  fusion-2: {driver: fusion, uri: "http://127.0.0.1:$R", credential: {key: agent-key-2}}
pipes:
  v2: {source: extra-fs, sender: fusion-2}
EOF
FUSTOR_HOME="$AHOME" "$FUSTOR_AGENT_BIN" reload
wait_for 30 "v2: /e.txt from the added pipe appears" present v2 qk2 /e.txt
echo "pipes: {}" >"$AHOME/agent-config/extra.yaml"
FUSTOR_HOME="$AHOME" "$FUSTOR_AGENT_BIN" reload
wait_for 15 "v2: session closed after removal" no_sessions v2 qk2
wait_for 5 "v1 unaffected" leader_realtime

say "Fusion outage (S80)"
stop_fusion
sleep 3
echo "during outage" >"$DATA/outage.txt"
sleep 5
start_fusion
wait_for 120 "after Fusion restart: /outage.txt present (reconnect + snapshot)" present v1 qk1 /outage.txt
wait_for 10 "after Fusion restart: /pre.txt still present" present v1 qk1 /pre.txt

say "agent stop closes its session"
FUSTOR_HOME="$AHOME" "$FUSTOR_AGENT_BIN" stop
wait_for 10 "v1 has no session after stop" no_sessions v1 qk1

echo
echo "interop: $PASS passed, $FAIL failed"
if [ "$FAIL" -gt 0 ]; then
    echo "--- agent log (tail)"; tail -40 "$AHOME/logs/agent.log" || true
    echo "--- fusion output (tail)"; tail -40 "$WORK/fusion.out" || true
    exit 1
fi
