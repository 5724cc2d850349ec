#!/usr/bin/env bash
# WebRTC interop test: Debian's Chromium (playwright-core) running SIP.js (npm) over
# SIP-over-WebSocket through Kamailio calls webphone-cli and is called by it, with ICE,
# DTLS-SRTP, rtcp-mux and BUNDLE (see webrtc.mjs for the scenario and what it asserts).
#
#   tests/e2e-webrtc/run.sh
#
# 1. builds webphone-cli (debug) unless E2E_CLI points at a binary,
# 2. installs playwright-core and sip.js into tests/e2e-webrtc/node_modules if missing,
# 3. runs webrtc.mjs; as root in a network namespace of its own with only loopback up
#    (unshare --net), so that Chromium has no other interface to gather candidates on;
#    otherwise in the host's namespace (the page keeps only 127.0.0.1 candidates in its SDP).
# About 20 s; dumpcap captures lo for the close_notify check. Without node, Chromium or
# Kamailio it skips loudly, unless CI=true, where that is a failure (so is a missing dumpcap). Log of webphone-cli and a screenshot: target/e2e-webrtc/.
#
# Environment: E2E_CLI (prebuilt webphone-cli), E2E_CHROMIUM (default /usr/bin/chromium),
# CARGO (cargo command), E2E_KEEP=1 (keep the temp dir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT="$TARGET_DIR/e2e-webrtc"
CHROMIUM=${E2E_CHROMIUM:-/usr/bin/chromium}

say() { printf '[e2e-webrtc] %s\n' "$*"; }

unavailable() {
  if [ "${CI:-}" = "true" ]; then
    say "FAIL: $* (required when CI=true)"
    exit 1
  fi
  say "=================================================================="
  say "SKIPPED: $*"
  say "=================================================================="
  exit 0
}

mkdir -p "$OUT"
command -v node >/dev/null 2>&1 || unavailable "node is not installed"
{ [ -f "$CHROMIUM" ] && [ -x "$CHROMIUM" ]; } || unavailable "Chromium ($CHROMIUM, package chromium) is not installed"

if [ -z "${E2E_CLI:-}" ]; then
  say "building webphone-cli (debug)"
  (cd "$ROOT" && ${CARGO:-cargo} build -p webphone-cli)
  E2E_CLI="$TARGET_DIR/debug/webphone-cli"
fi
[ -x "$E2E_CLI" ] || { say "FAIL: no webphone-cli binary at $E2E_CLI"; exit 1; }
E2E_CLI=$(readlink -f "$E2E_CLI")

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/sip.js" ]; then
  say "installing playwright-core and sip.js into $HERE/node_modules"
  (cd "$HERE" && npm install --no-audit --no-fund)
fi

export E2E_CLI E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT"
say "webrtc.mjs with $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 \
   && unshare --net true 2>/dev/null; then
  say "in a network namespace with loopback only"
  exec unshare --net bash -c 'ip link set lo up && exec node "$0"' "$HERE/webrtc.mjs"
fi
say "in the host's network namespace (not root): loopback candidates only"
exec node "$HERE/webrtc.mjs"
