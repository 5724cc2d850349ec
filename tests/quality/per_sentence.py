#!/usr/bin/env python3
"""Per-sentence PESQ of a finished benchmark run (diagnostic for docs/quality.md).

bench.py scores each whole 14 s recording at once. A receiver whose playout delay changes
between two sentences (an adaptive jitter buffer settling on a larger delay after a late
packet) is then scored against one alignment for all four sentences, and P.862's utterance
alignment does not always recover it. This tool scores every sentence of the clean speech on
its own (found by speech activity, with 0.1 s around it: a delay change made in the pause
between two sentences falls outside both), each aligned separately, so that what is heard
inside the sentences can be told apart from where the delay changed.

    target/quality-venv/bin/python tests/quality/per_sentence.py target/quality-work

prints, per condition directory of the work dir, the MOS of each sentence for ours and for
baresip, their means and the difference of the means.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

# Speech activity: 10 ms frames above this fraction of the peak; gaps shorter than
# MERGE_GAP_S stay inside a sentence (the pauses between words).
ACTIVITY = 0.02
MERGE_GAP_S = 0.3
# Context kept around a sentence's speech (less than half the pause between sentences, so
# that a delay change made in the pause stays outside both).
CONTEXT_S = 0.1
# How far a sentence is searched for around the whole-file alignment.
SEARCH_S = 0.15


def sentence_spans(ref: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """Sample ranges of the sentences of the clean speech: its active stretches (speech
    activity of 10 ms frames, gaps up to MERGE_GAP_S joined) with CONTEXT_S around."""
    frame = rate // 100
    thr = np.max(np.abs(ref)) * ACTIVITY
    active = [
        bool(np.max(np.abs(ref[i : i + frame])) > thr) for i in range(0, len(ref) - frame, frame)
    ]
    merge = int(MERGE_GAP_S * 100)
    spans, start, quiet = [], None, 0
    for k, a in enumerate(active):
        if a:
            start = k if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet > merge:
                spans.append((start, k - quiet + 1))
                start, quiet = None, 0
    if start is not None:
        spans.append((start, len(active)))
    ctx = int(CONTEXT_S * rate)
    return [(max(0, a * frame - ctx), min(len(ref), b * frame + ctx)) for a, b in spans]


def per_sentence(ref: np.ndarray, deg: np.ndarray, rate: int, spans) -> list[float | None]:
    from pesq import pesq

    aligned, _ = bench.align(ref, deg, rate)
    w = int(SEARCH_S * rate)
    out = []
    for a, b in spans:
        r = ref[a:b]
        lo = max(0, a - w)
        sub, _ = bench.align(r, aligned[lo : b + w], rate)
        try:
            mode = "nb" if rate == 8000 else "wb"
            out.append(float(pesq(rate, r.astype(np.float32), sub.astype(np.float32), mode)))
        except Exception:  # "no utterances detected"
            out.append(None)
    return out


def mean(v: list[float | None]) -> float | None:
    got = [x for x in v if x is not None]
    return sum(got) / len(got) if got else None


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    work = Path(sys.argv[1])
    fmt = bench.fmt
    print("| condition | ours per sentence | mean | baresip per sentence | mean | Δ mean |")
    print("|---|---|---:|---|---:|---:|")
    for cond in sorted(p for p in work.iterdir() if p.is_dir() and (p / "ours").is_dir()):
        row = {}
        for who in ("ours", "baresip"):
            degs = sorted((cond / who).glob(f"{who}-deg-*.wav"))
            if not degs:
                continue
            rate = int(degs[0].stem.rsplit("-", 1)[1])
            ref, _ = bench.read_wav(work / f"speech-{rate}.wav")
            deg, _ = bench.read_wav(degs[0])
            row[who] = per_sentence(ref, deg, rate, sentence_spans(ref, rate))
        if len(row) < 2:
            continue
        mo, mb = mean(row["ours"]), mean(row["baresip"])
        delta = None if mo is None or mb is None else mo - mb
        cells = {k: " / ".join(fmt(x) for x in v) for k, v in row.items()}
        print(
            f"| {cond.name} | {cells['ours']} | {fmt(mo)} | {cells['baresip']} | {fmt(mb)} "
            f"| {fmt(delta, '{:+.2f}')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
