#!/usr/bin/env bash
# fuzz.sh - cargo-fuzz campaigns for the project's hostile-input parsers
# (crates/webphone-sip/fuzz: sip_parse, sip_ua, sdp_parse, rtp_rtcp, media_datagram,
# api_request, engine_params; docs/fuzzing.md lists what each one feeds).
#
#   scripts/fuzz.sh                    # long campaign: every target FUZZ_SECONDS (3600) each,
#                                      # new inputs added to fuzz/corpus/<target> (commit them
#                                      # after `cargo fuzz cmin`)
#   scripts/fuzz.sh sip_ua             # one target
#   scripts/fuzz.sh --smoke 12         # CI: every target 12 s on the committed corpus (read-only),
#                                      # fails on the first crash, leak or timeout
#
# cargo-fuzz is installed into target/tools/bin when missing. libFuzzer needs nightly
# compiler flags (-Zsanitizer): the nightly toolchain is used when rustup has one, else
# stable with RUSTC_BOOTSTRAP=1. Crash inputs land in crates/webphone-sip/fuzz/artifacts/.
# Environment: FUZZ_SECONDS, FUZZ_JOBS (parallel jobs per target in a campaign, default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_DIR="$ROOT/crates/webphone-sip/fuzz"
TOOLS="$ROOT/target/tools"
export PATH="$TOOLS/bin:$PATH"
TARGETS_ALL=(sip_parse sip_ua sdp_parse rtp_rtcp media_datagram api_request engine_params)

smoke=""
if [ "${1:-}" = "--smoke" ]; then
  smoke=${2:-20}
  shift 2 || shift $#
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${TARGETS_ALL[@]}")

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz into $TOOLS"
  if ! cargo install cargo-fuzz --locked --root "$TOOLS"; then
    if [ -n "${CI:-}" ]; then echo "[fuzz] cannot install cargo-fuzz" >&2; exit 1; fi
    echo "[fuzz] SKIPPED: cannot install cargo-fuzz (offline?)" >&2
    exit 0
  fi
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  echo "[fuzz] no nightly toolchain: stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi

cd "$ROOT/crates/webphone-sip"
if [ -n "$smoke" ]; then
  # The smoke run only replays the corpus and fuzzes for seconds: a lighter release build
  # (opt-level 1, no debug info) compiles in about half the time on a 2-core CI machine.
  # A crash it finds is kept in artifacts/ and reproduced with the full build.
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}
  export CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-0}
fi
"${FUZZ[@]}" build -O

status=0
for t in "${targets[@]}"; do
  corpus="$FUZZ_DIR/corpus/$t"
  if [ -n "$smoke" ]; then
    scratch=$(mktemp -d)
    echo "[fuzz] $t: ${smoke}s smoke run"
    if ! "${FUZZ[@]}" run -O "$t" "$scratch" "$corpus" -- \
        -max_total_time="$smoke" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1; then
      echo "[fuzz] $t: FAILED (crash input in $FUZZ_DIR/artifacts/$t)" >&2
      status=1
    fi
    rm -rf "$scratch"
  else
    echo "[fuzz] $t: ${FUZZ_SECONDS:-3600}s campaign"
    "${FUZZ[@]}" run -O -j "${FUZZ_JOBS:-1}" "$t" "$corpus" -- \
      -max_total_time="${FUZZ_SECONDS:-3600}" -timeout=25 -rss_limit_mb=2048 || status=1
  fi
done
exit $status
