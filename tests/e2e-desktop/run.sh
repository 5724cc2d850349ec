#!/usr/bin/env bash
# Desktop smoke test for the WebPhone app (Tauri 2).
#
#   tests/e2e-desktop/run.sh
#
# 1. runs the webphone_api.js unit tests (node, no display: facade.test.mjs and
#    ui/test/api_table.test.mjs),
# 2. builds the app and webphone-cli (debug) unless E2E_APP points at a binary,
# 3. installs tauri-driver 2.1.0 into target/tools and selenium-webdriver into node_modules if
#    they are missing,
# 4. under Xvfb (xvfb-run -a) and a private D-Bus session (dbus-run-session: single instance,
#    notifications) with an unlocked gnome-keyring (the password goes to the OS keyring) starts
#    tauri-driver on free ports with WebKitWebDriver and runs
#    smoke.mjs, which drives the app's default page (the softphone skin, then `--page minimal`)
#    and writes screenshots to target/e2e-desktop/, and uses the tray icon as docked in trayer
#    (a real XEmbed tray host started here), then calls.mjs: the app against real peers
#    (Kamailio and baresip from tests/e2e-peers/peers.mjs; skips loudly without them, fails
#    with CI=true), with dunst as the session's notification server (a real one, drawing on
#    the Xvfb display; desktop-bus.py watches the bus and drives dunst's action menu),
#    gtk-sni-tray-standalone as the StatusNotifier watcher and tray host (a real one: it draws
#    the icon at the bottom of the display and opens its menu; started by desktop-bus.py) and
#    xdotool pressing the global shortcuts and clicking the tray icon. The app runs with a private HOME (start at login writes
#    $HOME/.config/autostart there).
# It stops exactly the processes it started (by pid). Without Xvfb or WebKitWebDriver it skips
# loudly, unless CI=true, where that is a failure.
#
# Environment: E2E_APP (prebuilt binary), E2E_CLI (webphone-cli, the caller of the incoming-call
# step; built with the app when E2E_APP is not given), CARGO (cargo command), E2E_TESTS (which
# of "smoke calls" to run; default both).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT="$ROOT/target/e2e-desktop"
TOOLS="$ROOT/target/tools"
TAURI_DRIVER="$TOOLS/bin/tauri-driver"
NATIVE_DRIVER=${NATIVE_DRIVER:-$(command -v WebKitWebDriver || echo /usr/bin/WebKitWebDriver)}

say() { printf '[e2e-desktop] %s\n' "$*"; }

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

# ------------------------------------------------------------------ inner part (inside Xvfb)
if [ "${1:-}" = "--inner" ]; then
  free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
  }
  PORT=$(free_port)
  NATIVE_PORT=$(free_port)
  while [ "$NATIVE_PORT" = "$PORT" ]; do NATIVE_PORT=$(free_port); done

  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/webphone-e2e.XXXXXX")
  APP_HOME=$(mktemp -d "${TMPDIR:-/tmp}/webphone-e2e-home.XXXXXX")
  DRIVER_LOG="$OUT/tauri-driver.log"
  DRIVER_PID=""

  # All descendants of a pid (children first collected, so we can stop them after the parent).
  descendants() {
    local p
    for p in $(pgrep -P "$1" 2>/dev/null || true); do
      echo "$p"
      descendants "$p"
    done
  }

  cleanup() {
    local rc=$?
    if [ -n "$DRIVER_PID" ]; then
      local kids
      kids=$(descendants "$DRIVER_PID" | tr '\n' ' ')
      kill -TERM "$DRIVER_PID" 2>/dev/null || true
      wait "$DRIVER_PID" 2>/dev/null || true
      # WebKitWebDriver (and an app it launched) can outlive tauri-driver: stop those pids too.
      for p in $kids; do kill -TERM "$p" 2>/dev/null || true; done
      sleep 0.5
      for p in $kids; do kill -KILL "$p" 2>/dev/null || true; done
    fi
    if [ -n "${TRAYER_PID:-}" ]; then kill -TERM "$TRAYER_PID" 2>/dev/null || true; fi
    stop_secret_service 2>/dev/null || true
    rm -rf "$WORK_DIR" "$APP_HOME"
    exit $rc
  }
  trap cleanup EXIT INT TERM

  # A Secret Service for the keyring steps (secret-service.sh; stopped by pid in cleanup).
  # shellcheck source=/dev/null
  . "$HERE/secret-service.sh"
  if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v gnome-keyring-daemon >/dev/null 2>&1; then
    start_secret_service
    E2E_KEYRING=1
  else
    [ "${CI:-}" = "true" ] && { say "FAIL: no D-Bus session or gnome-keyring (required when CI=true)"; exit 1; }
    say "NOTE: no D-Bus session or gnome-keyring: the single-instance and keyring steps skip"
    E2E_KEYRING=0
  fi

  # The app (started by WebKitWebDriver under tauri-driver) inherits this HOME: its autostart
  # entry, WebKit caches and default data dirs stay out of the user's home.
  export HOME="$APP_HOME"
  say "tauri-driver on 127.0.0.1:$PORT (native $NATIVE_PORT), display $DISPLAY"
  "$TAURI_DRIVER" --port "$PORT" --native-port "$NATIVE_PORT" --native-driver "$NATIVE_DRIVER" \
    >"$DRIVER_LOG" 2>&1 &
  DRIVER_PID=$!

  # Wait until tauri-driver answers (its /status is forwarded to WebKitWebDriver).
  for _ in $(seq 1 100); do
    if ! kill -0 "$DRIVER_PID" 2>/dev/null; then
      say "tauri-driver exited early; log:"; cat "$DRIVER_LOG"; exit 1
    fi
    if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
        "http://127.0.0.1:$PORT/status" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done

  # A real system tray for the tray step of smoke.mjs: trayer, an XEmbed tray host (the app's
  # indicator docks there while no StatusNotifier watcher is on the bus).
  TRAYER_PID=""
  if command -v trayer >/dev/null 2>&1 && command -v xwininfo >/dev/null 2>&1; then
    trayer --edge top --align right --widthtype request --height 32 --SetDockType true \
      --transparent false --tint 0x202020 >"$OUT/trayer.log" 2>&1 &
    TRAYER_PID=$!
    E2E_TRAYER=1
  else
    [ "${CI:-}" = "true" ] && { say "FAIL: trayer or xwininfo is missing (required when CI=true)"; exit 1; }
    say "NOTE: no trayer/xwininfo: the real-tray step skips"
    E2E_TRAYER=0
  fi

  SIP_PORT=$(free_port) # a free TCP port number; UDP on the same number is almost always free too
  export E2E_TRAYER E2E_KEYRING E2E_DRIVER_URL="http://127.0.0.1:$PORT/" E2E_APP E2E_OUT="$OUT" E2E_WORK_DIR="$WORK_DIR" \
    E2E_SIP_PORT="$SIP_PORT"
  rc=0
  for t in ${E2E_TESTS:-smoke calls}; do
    say "---- $t.mjs"
    node "$HERE/$t.mjs" || rc=1
  done
  exit $rc
fi

# ------------------------------------------------------------------ outer part
mkdir -p "$OUT"

command -v node >/dev/null 2>&1 || unavailable "node is not installed"
say "unit tests of ui/webphone_api.js"
node --test "$HERE/facade.test.mjs" "$ROOT/ui/test/api_table.test.mjs"

command -v xvfb-run >/dev/null 2>&1 || unavailable "xvfb-run (package xvfb) is not installed"
[ -f "$NATIVE_DRIVER" ] && [ -x "$NATIVE_DRIVER" ] || unavailable "WebKitWebDriver (package webkit2gtk-driver) is not installed"

if [ -z "${E2E_APP:-}" ]; then
  say "building webphone-desktop and webphone-cli (debug)"
  (cd "$ROOT" && ${CARGO:-cargo} build -p webphone-desktop -p webphone-cli)
  E2E_APP="$TARGET_DIR/debug/webphone-desktop"
  E2E_CLI=${E2E_CLI:-$TARGET_DIR/debug/webphone-cli}
fi
[ -x "$E2E_APP" ] || { say "FAIL: no app binary at $E2E_APP"; exit 1; }
export E2E_APP E2E_CLI="${E2E_CLI:-}"

if [ ! -x "$TAURI_DRIVER" ]; then
  say "installing tauri-driver 2.1.0 into $TOOLS"
  ${CARGO:-cargo} install tauri-driver@2.1.0 --locked --root "$TOOLS"
fi

if [ ! -d "$HERE/node_modules/selenium-webdriver" ]; then
  say "installing selenium-webdriver into $HERE/node_modules"
  (cd "$HERE" && npm install --no-audit --no-fund selenium-webdriver@4)
fi

if command -v dbus-run-session >/dev/null 2>&1; then
  say "running the smoke test under Xvfb in a private D-Bus session"
  # E2E_PRIVATE_BUS: the session bus is ours (desktop-bus.py may start and stop dunst on it).
  E2E_PRIVATE_BUS=1 exec xvfb-run -a -s "-screen 0 1024x768x24" dbus-run-session -- "$HERE/run.sh" --inner
fi
[ "${CI:-}" = "true" ] && { say "FAIL: dbus-run-session (package dbus) is missing (required when CI=true)"; exit 1; }
say "running the smoke test under Xvfb (no dbus-run-session: single-instance and keyring steps skip)"
exec xvfb-run -a -s "-screen 0 1024x768x24" "$HERE/run.sh" --inner
