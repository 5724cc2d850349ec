#!/usr/bin/env bash
# Browser tests of the softphone and click2call skins (skins/) in real Chromium.
#
#   tests/e2e-skins/run.sh
#
# 1. checks the WCAG AA contrast of every theme in skins/softphone/js/softphone/themes.js,
# 2. builds webphone-cli (debug) unless E2E_CLI points at a binary,
# 3. installs playwright-core and axe-core into tests/e2e-skins/node_modules if missing,
# 4. runs skins.mjs: a static server for the repository (skins/, ui/, i18n/), webphone-cli
#    --serve on a free loopback port admitting only that origin, and Debian's Chromium
#    (headless, fresh profile) driving the skin: login page, echo call, keyboard, history,
#    contacts across reloads, untrusted text rendered as text, every theme on every page
#    (screenshots in target/e2e-skins/), axe-core on every page, the chat page, the click2call
#    buttons (echo calls, autoaction, menu, several buttons, floating), all ten languages, and
#    (scenario sip) Kamailio + baresip on loopback through tests/e2e-peers/peers.mjs: sign in,
#    calls both ways, hold and DTMF seen by baresip, chat both ways. Without kamailio/baresip
#    that scenario skips loudly (fails with CI=true).
# Before the browser: contrast.mjs (WCAG AA of every theme), i18n.mjs (every
# i18n/<lang>.json has exactly the keys and placeholders of en.json) and ui_params_audit.test.mjs
# (every ui-scope parameter of the catalog read by a skin and set by a scenario, or documented).
# The browser part runs under xvfb-run and dbus-run-session when installed (scenario osnotify:
# dunst as the notification server Chromium reports to).
# It stops exactly the processes it started. Without node or Chromium it skips loudly, unless
# CI=true, where that is a failure.
#
# Environment: E2E_CLI (prebuilt webphone-cli), E2E_CHROMIUM (default /usr/bin/chromium),
# CARGO (cargo command), E2E_SKINS_ONLY (comma list of scenario names to run).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT="$ROOT/target/e2e-skins"
CHROMIUM=${E2E_CHROMIUM:-/usr/bin/chromium}

say() { printf '[e2e-skins] %s\n' "$*"; }

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

say "theme contrast (WCAG AA)"
node "$HERE/contrast.mjs"
say "translations (every i18n/<lang>.json has the keys and placeholders of en.json)"
node "$HERE/i18n.mjs"
say "ui parameters (every scope-ui parameter read by a skin and exercised below, or documented)"
node --test --test-reporter=dot "$HERE/ui_params_audit.test.mjs"

[ -x "$CHROMIUM" ] || unavailable "Chromium ($CHROMIUM, package chromium) is not installed"

if [ -z "${E2E_CLI:-}" ]; then
  say "building webphone-cli (debug)"
  (cd "$ROOT" && ${CARGO:-cargo} build -p webphone-cli)
  E2E_CLI="$TARGET_DIR/debug/webphone-cli"
fi
[ -x "$E2E_CLI" ] || { say "FAIL: no webphone-cli binary at $E2E_CLI"; exit 1; }

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/axe-core" ]; then
  say "installing playwright-core and axe-core into $HERE/node_modules"
  (cd "$HERE" && npm install --no-audit --no-fund)
fi

say "skin tests with $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
export E2E_CLI E2E_CHROMIUM="$CHROMIUM" E2E_OUT="$OUT"
# Under Xvfb and a private D-Bus session when they are installed: the osnotify scenario has
# Chromium hand desktop notifications to a real notification server (dunst) there. Chromium
# itself stays headless.
if command -v xvfb-run >/dev/null 2>&1 && command -v dbus-run-session >/dev/null 2>&1 && command -v dunst >/dev/null 2>&1; then
  # E2E_PRIVATE_BUS: the session bus is ours (osnotify may start and stop dunst on it).
  E2E_PRIVATE_BUS=1 exec xvfb-run -a -s "-screen 0 1024x768x24" dbus-run-session -- node "$HERE/skins.mjs"
fi
node "$HERE/skins.mjs"
