#!/usr/bin/env bash
# Keyring test of the desktop app against a real Secret Service:
#
#   tests/e2e-desktop/keyring.sh
#
# Starts a private D-Bus session (dbus-run-session) with gnome-keyring-daemon unlocked by a test
# password (keyrings in a temporary XDG_DATA_HOME, never the user's), then runs the
# secrets::tests::keyring_round_trip test of webphone-desktop with WEBPHONE_KEYRING_TEST=1, so
# it cannot skip. Without dbus-run-session or gnome-keyring-daemon it skips loudly, unless
# CI=true, where that is a failure. Stops the daemon it started (by pid).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
say() { printf '[keyring] %s\n' "$*"; }
unavailable() {
  if [ "${CI:-}" = "true" ]; then say "FAIL: $* (required when CI=true)"; exit 1; fi
  say "=================================================================="
  say "SKIPPED: $*"
  say "=================================================================="
  exit 0
}

if [ "${1:-}" = "--inner" ]; then
  # shellcheck source=/dev/null
  . "$HERE/secret-service.sh"
  start_secret_service
  trap stop_secret_service EXIT
  cd "$ROOT"
  WEBPHONE_KEYRING_TEST=1 ${CARGO:-cargo} test -p webphone-desktop --bin webphone-desktop \
    secrets::tests -- --nocapture
  exit $?
fi

command -v dbus-run-session >/dev/null 2>&1 || unavailable "dbus-run-session (package dbus) is not installed"
command -v gnome-keyring-daemon >/dev/null 2>&1 || unavailable "gnome-keyring-daemon (package gnome-keyring) is not installed"
exec dbus-run-session -- "$HERE/keyring.sh" --inner
