#!/usr/bin/env bash
# run.sh - THE run command: set up the system, then build and start the
# desktop app. Extra arguments go to the app:
#
#   scripts/run.sh [app args...]
#
# SETUP_SKIP=1 skips the package installation (scripts/setup-system.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup-system.sh"
exec "${CARGO:-cargo}" run -p webphone-desktop -- "$@"
