#!/bin/bash
# tests/load/run.sh - side-by-side load benchmark: SIPp calls with RTP into
# webphone-cli (auto-answer), baresip and linphonec on 127.0.0.1, one table,
# and docs/benchmarks.md regenerated (see tests/load/bench.py for the method).
#
#   tests/load/run.sh            full campaign (ramp to 1500 calls, 10,000-call growth run)
#   tests/load/run.sh --smoke    < 2 minutes, for CI: fails only if the pipeline breaks
#                                (writes the report to $LOAD_DOC or target/load/benchmarks-smoke.md)
# Extra options go to bench.py (--uas webphone,baresip --levels 1,2,4 --growth-calls N ...).
# Needs root or CAP_NET_RAW for dumpcap on the loopback interface.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
smoke=0
for a in "$@"; do [ "$a" = "--smoke" ] && smoke=1; done
target="${CARGO_TARGET_DIR:-$root/target}"
if [ -n "${WEBPHONE_CLI:-}" ]; then
  bin="$WEBPHONE_CLI"
else
  (cd "$root" && cargo build -p webphone-cli --release) >&2
  bin="$target/release/webphone-cli"
fi
for t in sipp dumpcap sox python3; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is not installed (scripts/setup-system.sh)" >&2; exit 2; }
done
if [ $smoke = 1 ]; then
  doc="${LOAD_DOC:-$target/load/benchmarks-smoke.md}"
else
  doc="${LOAD_DOC:-$root/docs/benchmarks.md}"
fi
mkdir -p "$(dirname "$doc")"
# SIPp, baresip and linphonec need a socket or two per call
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work="$(mktemp -d "${TMPDIR:-/tmp}/webphone-load.XXXXXX")"
echo "run.sh: work dir $work (kept for inspection), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
export PYTHONDONTWRITEBYTECODE=1
exec python3 "$here/bench.py" --webphone "$bin" --doc "$doc" --json "$work/results.json" \
  --work "$work" --argv "tests/load/run.sh $*" "$@"
