#!/usr/bin/env bash
# Browser test of the fustor-fusion web console (/ui/) in a real headless Chromium.
#
#   tests/browser/run.sh
#
# Builds fustor-fusion (release; CARGO_TARGET_DIR is honoured), writes a temporary FUSTOR_HOME
# with an fs view and a forest view, starts `fustor-fusion --home ... start`, feeds it as a fake
# agent (feed.mjs; the view "quiet" gets no agent), then runs console.test.mjs with node's test runner. Screenshots go to
# docs/screenshots/. Fusion is stopped on exit. Needs node >= 18, npm and Debian's `chromium`
# (installed here with apt-get when missing and running as root). Exits non-zero on failure.
# FUSION_BIN=/path/to/fustor-fusion skips the build and tests that binary.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${FUSION_BIN:-$TARGET/release/fustor-fusion}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf '[browser-test] %s\n' "$*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing chromium (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "no chromium at $CHROMIUM: apt-get install chromium (or set CHROMIUM=/path)"
    exit 1
  fi
fi

if [ -z "${FUSION_BIN:-}" ]; then
  log "building fustor-fusion (release) in $TARGET"
  (cd "$ROOT" && cargo build --release -p fustor-fusion --quiet)
fi

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  log "installing playwright-core (npm ci, no browser download)"
  (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fustor-ui-test.XXXXXX")"
FUSION_PID=""
cleanup() {
  local rc=$?
  if [ -n "$FUSION_PID" ] && kill -0 "$FUSION_PID" 2>/dev/null; then
    kill -TERM "$FUSION_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$FUSION_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FUSION_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -f "$WORK/fusion.out" ]; then
    log "fusion output (last 40 lines):"
    tail -n 40 "$WORK/fusion.out" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
MAIN_PORT="$(free_port)"
RECV_PORT="$(free_port)"
while [ "$RECV_PORT" = "$MAIN_PORT" ]; do RECV_PORT="$(free_port)"; done

export FUSTOR_HOME="$WORK/home"
mkdir -p "$FUSTOR_HOME/fusion-config"
cat >"$FUSTOR_HOME/fusion-config/default.yaml" <<EOF
host: 127.0.0.1
port: $MAIN_PORT
session_cleanup_interval: 1
admin_keys:
  - {name: ops, key: admin-secret}
receivers:
  http-main:
    driver: http
    bind_host: 127.0.0.1
    port: $RECV_PORT
    api_keys:
      - {key: agent-key-research, pipe_id: research}
      - {key: agent-key-nfs-a, pipe_id: nfs-a}
      - {key: agent-key-nfs-b, pipe_id: nfs-b}
      - {key: agent-key-nfs-c, pipe_id: nfs-c}
views:
  research:
    driver: fs
    api_keys:
      - query-secret
      - {key: query-secret-bob, uid: 1002, gids: [1002]}
      - {key: query-secret-ops, admin: true}
    driver_params: {hot_file_threshold: 900.0}
  all-servers:
    driver: forest-fs
    api_keys: [query-secret-forest]
  quiet:
    driver: fs
    api_keys: [query-secret-quiet]
pipes:
  research: {receiver: http-main, views: [research], session_timeout_seconds: 900}
  nfs-a: {receiver: http-main, views: [all-servers], session_timeout_seconds: 900}
  nfs-b: {receiver: http-main, views: [all-servers], session_timeout_seconds: 900}
  nfs-c: {receiver: http-main, views: [all-servers], session_timeout_seconds: 900}
  quiet: {receiver: http-main, views: [quiet]}
EOF

MAIN="http://127.0.0.1:$MAIN_PORT"
RECV="http://127.0.0.1:$RECV_PORT"
log "starting fusion on $MAIN (receiver $RECV), home $FUSTOR_HOME"
"$BIN" --home "$FUSTOR_HOME" start >"$WORK/fusion.out" 2>&1 &
FUSION_PID=$!
for i in $(seq 1 100); do
  if node -e "fetch('$MAIN/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then break; fi
  if ! kill -0 "$FUSION_PID" 2>/dev/null; then log "fusion exited early"; exit 1; fi
  [ "$i" = 100 ] && { log "fusion did not answer on $MAIN"; exit 1; }
  sleep 0.1
done

log "feeding data as a fake agent"
node "$HERE/feed.mjs" "$RECV" "$MAIN"

mkdir -p "$ROOT/docs/screenshots"
log "running the browser test"
cd "$HERE"
FUSION_URL="$MAIN" CHROMIUM="$CHROMIUM" SCREENSHOT_DIR="$ROOT/docs/screenshots" \
  node --test --test-reporter=spec console.test.mjs
