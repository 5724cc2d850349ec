#!/usr/bin/env bash
# Browser tests for ui/webphone_api.js and the local service (webphone-cli --serve).
#
#   tests/e2e-browser/run.sh
#
# 1. builds webphone-cli (debug) unless E2E_CLI points at a binary,
# 2. runs the facade's Node tests (node --test ui/test/: transport selection with a scripted
#    socket, and the WebSocket transport against the real webphone-cli --serve),
# 3. installs playwright-core into tests/e2e-browser/node_modules if it is missing,
# 4. runs browser.mjs: Debian's Chromium (/usr/bin/chromium, headless) loads
#    ui/samples/minimal from a local static server and calls "echo" through the service; a page
#    from an origin the service does not allow gets the refusal. Screenshots: target/e2e-browser/.
# 5. runs techdemo.mjs: ui/samples/techdemo in Chromium against webphone-cli --serve, registered
#    with Kamailio, calls with baresip both ways (tests/e2e-peers/peers.mjs starts both on
#    loopback); it checks the STATUS/CDR notifications logged on the page, DTMF and hold seen by
#    the peers; then basic.mjs: ui/samples/basic registers from its form, rejects and accepts
#    baresip's calls, hold/mute/keypad DTMF, and a blind transfer to a second baresip; then
#    click2call.mjs: ui/samples/click2call's button calls baresip (number from ?wp_callto=).
#    Without kamailio/baresip these skip loudly (CI=true: failure).
# It stops exactly the processes it started. Without node or Chromium it skips loudly, unless
# CI=true, where that is a failure.
#
# Environment: E2E_CLI (prebuilt webphone-cli), E2E_CHROMIUM (default /usr/bin/chromium),
# CARGO (cargo command).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT="$ROOT/target/e2e-browser"
CHROMIUM=${E2E_CHROMIUM:-/usr/bin/chromium}

say() { printf '[e2e-browser] %s\n' "$*"; }

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

if [ -z "${E2E_CLI:-}" ]; then
  say "building webphone-cli (debug)"
  (cd "$ROOT" && ${CARGO:-cargo} build -p webphone-cli)
  E2E_CLI="$TARGET_DIR/debug/webphone-cli"
fi
[ -x "$E2E_CLI" ] || { say "FAIL: no webphone-cli binary at $E2E_CLI"; exit 1; }

say "facade tests: node --test ui/test/"
(cd "$ROOT" && WEBPHONE_CLI="$E2E_CLI" node --test ui/test/)

{ [ -f "$CHROMIUM" ] && [ -x "$CHROMIUM" ]; } || unavailable "Chromium ($CHROMIUM, package chromium) is not installed"

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  say "installing playwright-core into $HERE/node_modules"
  (cd "$HERE" && npm install --no-audit --no-fund)
fi

say "browser test with $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
E2E_CLI="$E2E_CLI" E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT" node "$HERE/browser.mjs"

say "techdemo with Kamailio and baresip"
E2E_CLI="$E2E_CLI" E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT" node "$HERE/techdemo.mjs"

say "basic sample with Kamailio and two baresips"
E2E_CLI="$E2E_CLI" E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT" node "$HERE/basic.mjs"

say "click-to-call example with Kamailio and baresip"
E2E_CLI="$E2E_CLI" E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT" node "$HERE/click2call.mjs"
