#!/usr/bin/env bash
# test.sh - THE test command: everything CI checks, in order.
#
#   scripts/test.sh            # locally: tests whose peer is missing skip loudly
#   CI=true scripts/test.sh    # CI semantics (.ci/run): a missing peer is a failure
#
# Steps: system set-up (scripts/setup-system.sh), a private PulseAudio daemon
# with a null sink (for the cpal tests; stopped at exit), cargo fmt --check,
# cargo clippy -D warnings (whole workspace, desktop app included), cargo build
# (whole workspace), cargo test (unit, crate integration and tests/interop
# against Kamailio/baresip/SIPp on loopback), then the desktop smoke test
# tests/e2e-desktop/run.sh when it exists, a 12 s run of every cargo-fuzz
# target (scripts/fuzz.sh --smoke), the browser tests (tests/e2e-browser,
# tests/e2e-skins), the WebRTC interop test (tests/e2e-webrtc: Chromium + SIP.js over WS
# calling and called with ICE/DTLS-SRTP/BUNDLE, ~20 s) and the short forms of the quality and
# load benchmarks. Every step runs even when an
# earlier one failed, except that nothing is tested after a failed build.
# Prints a timing summary; exits non-zero if any step failed.
#
# Environment: CI=true (strict), SETUP_SKIP=1 (no package installation),
# CARGO (cargo command), TEST_SKIP_E2E_DESKTOP=1, TEST_SKIP_FUZZ=1, CARGO_TEST_ARGS (extra
# words after `cargo test --workspace --no-fail-fast`, e.g. "-- --nocapture").
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
export CI=${CI:-}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto}
# A CI checkout builds once: incremental caches would only take disk.
if [ "$CI" = true ]; then export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}; fi

say() { printf '\n[test] %s\n' "$*"; }

STEPS=()   # "name|status|seconds"
FAILED=0

# free space on the file system that holds the checkout and its target directory
disk_free() { df -Ph "$ROOT" 2>/dev/null | awk 'NR == 2 { print $4 }'; }

# run_step NAME CMD... - runs CMD, records its status and wall time
run_step() {
  local name=$1; shift
  say "=== $name: $*"
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$@"
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 0 ]; then
    STEPS+=("$name|ok|$secs")
  else
    STEPS+=("$name|FAILED (exit $rc)|$secs")
    FAILED=1
  fi
  say "=== $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in ${secs}s (disk free: $(disk_free))"
  return $rc
}

# run_logged_step NAME CMD... - run_step, with the output also kept in $STEP_LOG_DIR/NAME.log so
# that the summary (the tail of a CI log, the part that is always shown) can repeat the last
# lines of a failed step. Not for steps that must set shell variables (it runs in a pipeline).
STEP_LOG_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/test-steps"
run_logged_step() {
  local name=$1; shift
  mkdir -p "$STEP_LOG_DIR"
  run_step "$name" tee_step "$STEP_LOG_DIR/$name.log" "$@"
}
tee_step() {
  local log=$1; shift
  # tee through a process substitution, not a pipe: a daemon a step leaves behind would hold a
  # pipe open and keep the step from ending; here only tee lingers, and not for long
  "$@" > >(tee "$log") 2>&1
  local rc=$?
  # tee may still be copying the last lines; bash does not always give its pid in $!
  local tee_pid=${!:-}
  if [ -n "$tee_pid" ]; then
    for _ in $(seq 1 50); do kill -0 "$tee_pid" 2>/dev/null || break; sleep 0.1; done
  else
    sleep 0.5
  fi
  return $rc
}

# the last lines of each failed logged step
failed_steps() {
  local s name status secs
  for s in "${STEPS[@]}"; do
    IFS='|' read -r name status secs <<<"$s"
    case $status in
      FAILED*)
        [ -s "$STEP_LOG_DIR/$name.log" ] || continue
        printf '[test] ---- %s: last lines (whole output: %s) ----\n' "$name" "$STEP_LOG_DIR/$name.log"
        grep -v '^\s*$' "$STEP_LOG_DIR/$name.log" | tail -n "${TEST_FAILED_TAIL:-25}" | cut -c1-400 | sed 's/^/[test] /'
        ;;
    esac
  done
}

skip_step() {
  STEPS+=("$1|skipped ($2)|0.0")
  say "=== $1: SKIPPED ($2)"
}

# cargo test's output is also kept in a file, so that the summary (the part of a CI log that
# is always shown) can name the tests that failed and the first lines of their panics
TEST_LOG="${CARGO_TARGET_DIR:-$ROOT/target}/test-step.log"
run_cargo_test() {
  mkdir -p "$(dirname "$TEST_LOG")"
  # shellcheck disable=SC2086 # CARGO_TEST_ARGS is a list of words
  "$CARGO" test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} 2>&1 | tee "$TEST_LOG"
  return "${PIPESTATUS[0]}"
}

failed_tests() {
  [ -s "$TEST_LOG" ] || return 0
  grep -q -E '^---- .* stdout ----$|^error: test failed|^test result: FAILED' "$TEST_LOG" || return 0
  printf '[test] ---- failed tests (whole output: %s) ----\n' "$TEST_LOG"
  # the targets that failed, one line
  grep -E '^error: test failed, to rerun pass' "$TEST_LOG" | sed -E 's/.*pass `(.*)`.*/\1/' | head -n 8 |
    paste -sd ';' | sed 's/^/[test] targets: /'
  # each failed test's report, up to 24 lines each and 30 in all (the tail of a CI log is what
  # is shown, so this comes last, just before the result)
  awk '
    /^---- .* stdout ----$/ { on = 1; n = 0; print; next }
    /^note: run with `RUST_BACKTRACE/ || /^failures:$/ { on = 0 }
    on && n < 24 && NF { print; n++ }
  ' "$TEST_LOG" | head -n 30 | sed 's/^/[test] /'
}

summary() {
  printf '\n[test] ---------------- summary ----------------\n'
  local s name status secs line=""
  for s in "${STEPS[@]}"; do
    IFS='|' read -r name status secs <<<"$s"
    if [ "$status" = ok ]; then
      # passing steps share lines; anything else gets a line of its own
      line="$line $name ${secs}s ·"
      if [ ${#line} -gt 90 ]; then printf '[test] ok:%s\n' "${line% ·}"; line=""; fi
    else
      printf '[test] %-22s %8ss  %s\n' "$name" "$secs" "$status"
    fi
  done
  [ -n "$line" ] && printf '[test] ok:%s\n' "${line% ·}"
  printf '[test] total %ss, CI=%s\n' "$SECONDS" "${CI:-<unset>}"
  failed_steps
  failed_tests
  if [ $FAILED -eq 0 ]; then
    printf '[test] RESULT: PASS\n'
  else
    printf '[test] RESULT: FAIL\n'
  fi
}

# ---------------------------------------------------------------- PulseAudio
PA_PID=""
PA_TMP=""
cleanup() {
  if [ -n "$PA_PID" ]; then
    kill -TERM "$PA_PID" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$PA_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PA_PID" 2>/dev/null
    wait "$PA_PID" 2>/dev/null
  fi
  [ -n "$PA_TMP" ] && rm -rf "$PA_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A PulseAudio daemon of our own with a null sink, reachable through
# XDG_RUNTIME_DIR (exported for everything after it): cpal's ALSA default
# device goes to it through libasound2-plugins' pulse plugin.
start_pulseaudio() {
  if ! command -v pulseaudio >/dev/null 2>&1; then
    say "pulseaudio is not installed: audio-device tests will find no device"
    [ "$CI" = true ] && return 1
    return 0
  fi
  PA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/webphone-test.XXXXXX")
  export XDG_RUNTIME_DIR="$PA_TMP/xdg"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  pulseaudio --daemonize=no --exit-idle-time=-1 --system=false -n \
    --load="module-null-sink sink_name=webphone_null rate=48000" \
    --load="module-native-protocol-unix" \
    --load="module-always-sink" \
    --log-target=file:"$PA_TMP/pulseaudio.log" </dev/null >/dev/null 2>&1 &
  PA_PID=$!
  for _ in $(seq 1 100); do
    if pactl info >/dev/null 2>&1; then
      pactl set-default-sink webphone_null >/dev/null 2>&1
      pactl set-default-source webphone_null.monitor >/dev/null 2>&1
      echo "PulseAudio pid $PA_PID, XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR," \
           "$(pactl info | grep -E '^Default (Sink|Source)' | tr '\n' ' ')"
      return 0
    fi
    kill -0 "$PA_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "PulseAudio did not start; log:"
  cat "$PA_TMP/pulseaudio.log" 2>/dev/null | tail -20
  PA_PID=""
  return 1
}

# ---------------------------------------------------------------- steps
say "disk free at start: $(disk_free)"
run_logged_step setup-system "$ROOT/scripts/setup-system.sh"
run_step pulseaudio start_pulseaudio
run_step fmt "$CARGO" fmt --all -- --check
run_step clippy "$CARGO" clippy --workspace --all-targets -- -D warnings
if run_step build "$CARGO" build --workspace; then
  run_step test run_cargo_test
  # every cargo-fuzz target 12 s on its committed corpus (7 targets, under 1.5 min; installs
  # cargo-fuzz; nightly or RUSTC_BOOTSTRAP=1); fails on a crash
  if [ "${TEST_SKIP_FUZZ:-}" = 1 ]; then
    skip_step fuzz-smoke "TEST_SKIP_FUZZ=1"
  else
    run_logged_step fuzz-smoke "$ROOT/scripts/fuzz.sh" --smoke "${FUZZ_SMOKE_SECONDS:-12}"
  fi
  run_logged_step keyring "$ROOT/tests/e2e-desktop/keyring.sh"
  E2E="$ROOT/tests/e2e-desktop/run.sh"
  if [ "${TEST_SKIP_E2E_DESKTOP:-}" = 1 ]; then
    skip_step e2e-desktop "TEST_SKIP_E2E_DESKTOP=1"
  elif [ -x "$E2E" ]; then
    run_logged_step e2e-desktop "$E2E"
  else
    skip_step e2e-desktop "no executable tests/e2e-desktop/run.sh"
  fi
  if [ -x "$ROOT/tests/e2e-browser/run.sh" ]; then run_logged_step e2e-browser "$ROOT/tests/e2e-browser/run.sh"; else skip_step e2e-browser "no executable tests/e2e-browser/run.sh"; fi
  if [ -x "$ROOT/tests/e2e-skins/run.sh" ]; then run_logged_step e2e-skins "$ROOT/tests/e2e-skins/run.sh"; else skip_step e2e-skins "no executable tests/e2e-skins/run.sh"; fi
  if [ -x "$ROOT/tests/e2e-webrtc/run.sh" ]; then run_logged_step e2e-webrtc env E2E_CLI="${CARGO_TARGET_DIR:-$ROOT/target}/debug/webphone-cli" "$ROOT/tests/e2e-webrtc/run.sh"; else skip_step e2e-webrtc "no executable tests/e2e-webrtc/run.sh"; fi
  # the quality (PESQ through the impairment relay, vs baresip) and load (SIPp, vs baresip and
  # linphonec) benchmarks in their short form, with the debug binary: they fail only when the
  # pipeline breaks; the full campaigns are tests/quality/run.sh and tests/load/run.sh
  DEBUG_CLI="${CARGO_TARGET_DIR:-$ROOT/target}/debug/webphone-cli"
  run_logged_step quality-smoke env WEBPHONE_CLI="$DEBUG_CLI" "$ROOT/tests/quality/run.sh" --smoke
  run_logged_step load-smoke env WEBPHONE_CLI="$DEBUG_CLI" LOAD_DOC="${CARGO_TARGET_DIR:-$ROOT/target}/load/benchmarks-smoke.md" "$ROOT/tests/load/run.sh" --smoke
else
  skip_step test "build failed"
  skip_step e2e-desktop "build failed"
  skip_step e2e-browser "build failed"
  skip_step e2e-webrtc "build failed"
fi

summary
exit $FAILED
