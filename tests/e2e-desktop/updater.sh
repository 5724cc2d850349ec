#!/usr/bin/env bash
# Update signatures, end to end with the updater plugin's own code (issue 8):
#
#   tests/e2e-desktop/updater.sh
#
# 1. generates a minisign key pair with the Tauri CLI (`tauri signer generate`, npm
#    @tauri-apps/cli, installed into target/tools/tauri-cli like scripts/build-brand.sh does),
#    plus a second, unrelated key;
# 2. signs an update artifact with it (`tauri signer sign`);
# 3. builds the app (debug) with the `updater` feature (TAURI_CONFIG gives the plugin a
#    placeholder configuration; the test passes endpoint and key at run time through
#    WEBPHONE_UPDATE_TEST, which only debug builds read);
# 4. serves update manifests on a loopback HTTP server (node) and runs the app under Xvfb
#    against each: the genuine one must be reported `verified`; a tampered artifact (one byte
#    changed), a signature made with the other key and a garbage signature must be `refused`.
# Nothing is installed: the app checks, downloads and verifies, prints the outcome and exits.
# Skips loudly without node/xvfb-run (fails with CI=true). Stops only the processes it started.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TOOLS="$ROOT/target/tools/tauri-cli"
TAURI="$TOOLS/node_modules/.bin/tauri"
say() { printf '[updater] %s\n' "$*"; }
unavailable() {
  if [ "${CI:-}" = "true" ]; then say "FAIL: $* (required when CI=true)"; exit 1; fi
  say "=================================================================="
  say "SKIPPED: $*"
  say "=================================================================="
  exit 0
}
command -v node >/dev/null 2>&1 || unavailable "node is not installed"
command -v xvfb-run >/dev/null 2>&1 || unavailable "xvfb-run (package xvfb) is not installed"

if [ ! -x "$TAURI" ]; then
  say "installing @tauri-apps/cli@2 into $TOOLS"
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && { [ -f package.json ] || echo '{"private":true}' >package.json; } \
    && npm install --no-audit --no-fund -D @tauri-apps/cli@2 >/dev/null)
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/webphone-updater.XXXXXX")
SERVER_PID=""
cleanup() {
  local rc=$?
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$D"
  exit $rc
}
trap cleanup EXIT INT TERM

say "keys and signatures (tauri signer)"
"$TAURI" signer generate --ci -p "" -w "$D/key" >/dev/null
"$TAURI" signer generate --ci -p "" -w "$D/other" >/dev/null
head -c 200000 /dev/urandom >"$D/app.tar.gz"
"$TAURI" signer sign -f "$D/key" -p "" "$D/app.tar.gz" >/dev/null
cp "$D/app.tar.gz" "$D/other.tar.gz"
"$TAURI" signer sign -f "$D/other" -p "" "$D/other.tar.gz" >/dev/null
# The tampered artifact: the genuine one with one byte changed, served with the genuine signature.
node -e 'const fs=require("fs");const b=fs.readFileSync(process.argv[1]);b[1000]^=0xff;fs.writeFileSync(process.argv[2],b);' \
  "$D/app.tar.gz" "$D/tampered.tar.gz"
PUBKEY=$(cat "$D/key.pub")

if [ -z "${E2E_UPDATER_APP:-}" ]; then
  say "building webphone-desktop (debug) with the updater feature"
  (cd "$ROOT" && TAURI_CONFIG='{"plugins":{"updater":{"pubkey":"set-at-run-time-by-the-test","endpoints":[]}}}' \
    ${CARGO:-cargo} build -p webphone-desktop --features updater)
  E2E_UPDATER_APP="$TARGET_DIR/debug/webphone-desktop"
fi

# Loopback update server: /<case>.json -> manifest, /<file> -> artifact.
cat >"$D/server.mjs" <<'JS'
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.argv[2];
const sig = (f) => readFileSync(join(dir, f), 'utf8');
const cases = {
  genuine: ['app.tar.gz', sig('app.tar.gz.sig')],
  tampered: ['tampered.tar.gz', sig('app.tar.gz.sig')],
  otherkey: ['other.tar.gz', sig('other.tar.gz.sig')],
  garbage: ['app.tar.gz', Buffer.from('not a signature').toString('base64')],
};
const server = http.createServer((req, res) => {
  const port = server.address().port;
  const name = req.url.replace(/^\//, '').replace(/\.json$/, '');
  if (req.url.endsWith('.json') && cases[name]) {
    const [file, signature] = cases[name];
    const url = `http://127.0.0.1:${port}/${file}`;
    const platforms = {};
    for (const t of ['linux-x86_64', 'linux-aarch64', 'linux-x86_64-deb', 'linux-x86_64-rpm', 'linux-x86_64-appimage']) {
      platforms[t] = { url, signature };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ version: '99.0.0', notes: 'e2e', pub_date: '2026-01-01T00:00:00Z', platforms }));
    return;
  }
  try {
    const body = readFileSync(join(dir, req.url.replace(/^\//, '').replace(/[^A-Za-z0-9_.-]/g, '')));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  } catch {
    res.writeHead(404); res.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
JS
node "$D/server.mjs" "$D" >"$D/port" &
SERVER_PID=$!
for _ in $(seq 1 50); do [ -s "$D/port" ] && break; sleep 0.1; done
PORT=$(cat "$D/port")
say "update server on 127.0.0.1:$PORT"

run_case() {
  local name=$1 out
  mkdir -p "$D/work-$name"
  out=$(WEBPHONE_UPDATE_TEST="http://127.0.0.1:$PORT/$name.json $PUBKEY" RUST_LOG=warn \
    timeout 60 xvfb-run -a "$E2E_UPDATER_APP" --work-dir "$D/work-$name" -p audiodevicein=null \
    -p audiodeviceout=null -p localip=127.0.0.1 2>"$D/$name.log" | grep '^UPDATE-TEST' || true)
  echo "$out"
}
fail=0
check() {
  local name=$1 want=$2 out
  out=$(run_case "$name")
  if [[ "$out" == "UPDATE-TEST $want"* ]]; then
    say "PASS  $name: $out"
  else
    say "FAIL  $name: expected '$want', got '${out:-nothing}'; log:"; tail -20 "$D/$name.log"; fail=1
  fi
}
check genuine verified
check tampered refused
check otherkey refused
check garbage refused
[ "$fail" = 0 ] && say "OK: a correctly signed update is accepted; tampered, foreign-key and garbage signatures are refused"
exit $fail
