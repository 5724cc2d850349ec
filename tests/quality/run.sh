#!/usr/bin/env bash
# Call-quality benchmark (issue 4): webphone-cli vs baresip receiving speech through an
# impairment relay (loss / jitter / reordering), scored with PESQ. See tests/quality/README.md.
#
#   tests/quality/run.sh            full campaign (PCMU, G.722, Opus x loss 0/3/10 % x
#                                   jitter 0/30/60 ms + a reordering-only row); rewrites
#                                   docs/quality.md; takes about 25 minutes
#   tests/quality/run.sh --resume   continue an interrupted full campaign (keeps finished rows)
#   tests/quality/run.sh --smoke    one short condition (PCMU, 3 % loss, 30 ms jitter) for CI;
#                                   fails only if the pipeline breaks, never on a score
#   tests/quality/run.sh -- ARGS    full run with extra arguments for bench.py (--codecs,
#                                   --loss, --jitter, --seed, --work-dir, ...; no report
#                                   unless --report is given)
#
# Needs: baresip (+ g711/g722/opus/aubridge/sndfile/plc modules), espeak-ng, sox, python3-venv
# (scripts/setup-system.sh), and a network path to the Python package index the first time
# (pesq, numpy, scipy go into target/quality-venv). WEBPHONE_CLI=path skips the release build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/quality-venv"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the tree

smoke=0
resume=0
extra=()
if [[ "${1:-}" == "--resume" ]]; then
    # continue an interrupted full campaign: rows already in target/quality-work are kept
    resume=1
    shift
fi
if [[ "${1:-}" == "--smoke" ]]; then
    smoke=1
    shift
fi
if [[ "${1:-}" == "--" ]]; then
    shift
    extra=("$@")
fi

for tool in baresip espeak-ng sox python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "quality: $tool is not installed (scripts/setup-system.sh installs it)" >&2
        exit 2
    fi
done

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import pesq, numpy, scipy' 2>/dev/null; then
    echo "quality: creating $venv (pesq, numpy, scipy)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet pesq numpy scipy
fi

if [[ -n "${WEBPHONE_CLI:-}" ]]; then
    cli="$WEBPHONE_CLI"
else
    echo "quality: building webphone-cli (release)" >&2
    cargo build --quiet -p webphone-cli --release
    cli="$target/release/webphone-cli"
fi
# recordings, logs and SIP traces of the last run stay here for inspection
work="$target/quality-work"
if [[ $resume == 0 ]]; then
    rm -rf "$work"
fi

if [[ $smoke == 1 ]]; then
    exec "$venv/bin/python" "$root/tests/quality/bench.py" --cli "$cli" --smoke \
        --work-dir "$work" --codecs PCMU --loss 3 --jitter 30 --reorder-only 0 "${extra[@]}"
fi
if [[ ${#extra[@]} -gt 0 ]]; then
    exec "$venv/bin/python" "$root/tests/quality/bench.py" --cli "$cli" --work-dir "$work" "${extra[@]}"
fi
resume_arg=()
if [[ $resume == 1 ]]; then
    resume_arg=(--resume)
fi
exec "$venv/bin/python" "$root/tests/quality/bench.py" --cli "$cli" --work-dir "$work" \
    --report "$root/docs/quality.md" "${resume_arg[@]}"
