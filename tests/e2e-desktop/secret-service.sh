# Sourced by keyring.sh and run.sh inside a dbus-run-session: a Secret Service for the test.
# gnome-keyring-daemon with only the secrets component, its keyrings in a temporary
# XDG_DATA_HOME, the login keyring created/unlocked with a test password on stdin.
# start_secret_service sets KEYRING_PID and KEYRING_DATA; stop_secret_service stops that pid.
KEYRING_PID=""
KEYRING_DATA=""
start_secret_service() {
  KEYRING_DATA=$(mktemp -d "${TMPDIR:-/tmp}/webphone-keyring.XXXXXX")
  export XDG_DATA_HOME="$KEYRING_DATA"
  printf 'webphone-test' | gnome-keyring-daemon --foreground --unlock --components=secrets \
    >"$KEYRING_DATA/daemon.log" 2>&1 &
  KEYRING_PID=$!
  # Wait until the daemon owns org.freedesktop.secrets on this session bus.
  for _ in $(seq 1 50); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
        | grep -q 'boolean true'; then
      return 0
    fi
    sleep 0.1
  done
  echo "gnome-keyring-daemon did not start:" >&2
  cat "$KEYRING_DATA/daemon.log" >&2
  return 1
}
stop_secret_service() {
  if [ -n "$KEYRING_PID" ]; then
    kill -TERM "$KEYRING_PID" 2>/dev/null || true
    wait "$KEYRING_PID" 2>/dev/null || true
  fi
  [ -n "$KEYRING_DATA" ] && rm -rf "$KEYRING_DATA"
  return 0
}
