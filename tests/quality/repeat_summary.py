#!/usr/bin/env python3
"""Mean scores over repeated benchmark runs (diagnostic for docs/quality.md).

One run of bench.py scores each condition once, and two identical runs differ by up to
about 0.15 MOS on the jitter rows (the relay's timing and the scheduler move the late
packets a little). Run the rows in question several times with different seeds, each into
its own work dir, then

    python3 tests/quality/repeat_summary.py WORK_DIR...

prints, per condition found in the dirs' rows.jsonl, the number of runs, the mean (and
spread) of ours and of baresip, the mean difference, and in how many runs ours was at or
above baresip's score minus 0.05.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def main(dirs: list[str]) -> int:
    if not dirs:
        print(__doc__, file=sys.stderr)
        return 2
    rows: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    order: list[tuple] = []
    for d in dirs:
        f = Path(d) / "rows.jsonl"
        if not f.exists():
            print(f"{f}: missing", file=sys.stderr)
            return 2
        for line in f.read_text().splitlines():
            r = json.loads(line)
            o, b = r["ours"].get("mos"), r["baresip"].get("mos")
            if o is None or b is None:
                continue
            key = (r["codec"], r["loss"], r["jitter"], r["reorder"])
            if key not in rows:
                order.append(key)
            rows[key].append((o, b))
    print("| codec | loss % | jitter ms | reorder % | runs | ours mean (sd) | baresip mean (sd) "
          "| Δ mean | runs within 0.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        pairs = rows[key]
        ours = [o for o, _ in pairs]
        theirs = [b for _, b in pairs]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        delta = statistics.mean(ours) - statistics.mean(theirs)
        close = sum(1 for o, b in pairs if o >= b - 0.05)
        codec, loss, jit, reo = key
        print(f"| {codec} | {loss:g} | {jit:g} | {reo:g} | {len(pairs)} | "
              f"{statistics.mean(ours):.2f} ({sd(ours):.2f}) | "
              f"{statistics.mean(theirs):.2f} ({sd(theirs):.2f}) | {delta:+.2f} | "
              f"{close}/{len(pairs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
