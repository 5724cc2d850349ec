#!/usr/bin/env python3
"""Regenerate crates/webphone-cli/link/startup-order.txt: the functions webphone-cli runs
when it starts, registers and takes a call, in the order the linker should place them.

    python3 tests/load/link_order.py [--webphone target/release/webphone-cli] [--out FILE]

Why: the kernel maps a program's code in 64 KiB blocks around each page it first runs
(fault-around), so the ~1,400 functions of start-up and a call, spread over the 9 MiB text,
kept 5 MiB of it resident. Placed together (lld's --symbol-ordering-file, passed by
crates/webphone-cli/build.rs in release builds) they fill about 2 MiB. Measured with
tests/load/bench.py: idle RSS 10.4 -> 7.3 MiB, 11.3 -> 7.6 MiB registered
(docs/benchmarks.md has the current numbers).

How: the release binary runs twice under valgrind's callgrind (names left mangled), driven by
the load benchmark's own helpers from bench.py: first registered to Kamailio (tests/interop/
peers/kamailio.cfg) and idle, then unregistered taking SIPp calls with RTP (tests/load/
uac_rtp.xml; 16 at once for 8 s, as the benchmark's calls). Every function of webphone-cli
that ran is listed, sorted by name (the order inside the hot block matters little; a sorted
file diffs well). Symbols stay the same across builds unless what they name changes; the
linker skips names it does not find, so a stale list only costs memory, never correctness.

Needs valgrind (not installed by scripts/setup-system.sh: this is a maintainer's tool, not a
test), kamailio, sipp and sox.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the load benchmark's helpers)

DEFAULT_OUT = os.path.join(bench.ROOT, "crates/webphone-cli/link/startup-order.txt")


def callgrind_functions(path, binary_name):
    """Names of the functions of `binary_name` with costs in a callgrind output file
    (name compression: `(id) name` defines an id, `(id)` refers to it)."""
    objs, names, funcs = {}, {}, set()
    current_obj = None
    spec = re.compile(r"^(ob|cob|fn|cfn|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$")
    with open(path, encoding="latin-1") as f:
        for line in f:
            m = spec.match(line.rstrip("\n"))
            if not m:
                continue
            kind, ident, name = m.groups()
            if kind in ("ob", "cob"):
                if name:
                    objs[ident] = name
                if kind == "ob":
                    current_obj = objs.get(ident, "")
            elif kind in ("fn", "cfn"):
                if name:
                    names[ident] = name
                if kind == "fn" and os.path.basename(current_obj or "") == binary_name:
                    funcs.add(names.get(ident, ""))
    # code without a symbol is named by its address; there is nothing to order by then
    return {f for f in funcs if f and not f.startswith("0x")}


def run_profiled(binary, work, out, kam=None, call_scenario=None, calls=1):
    wrap = ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}"]
    ua = bench.Webphone(work, binary, kam.addr() if kam else None, wrap=wrap)
    try:
        if kam:
            end = time.time() + 60
            while time.time() < end and ua.running() and not kam.registered("1001"):
                time.sleep(0.5)
            if not kam.registered("1001"):
                sys.exit(f"link_order: webphone-cli did not register (see {work})")
            time.sleep(3)
        else:
            time.sleep(8)  # start-up under valgrind
        if call_scenario:
            run = bench.SippRun(work, "call", ua.target(), ua.service(), call_scenario,
                                calls=calls, rate=calls, limit=calls, hold_ms=8000,
                                media_port=bench.MEDIA_BASE)
            st = run.wait(180)
            if st["ok"] != calls:
                sys.exit(f"link_order: {calls - st['ok']} of the {calls} SIPp calls failed: "
                         f"{run.errors()} (see {work})")
        time.sleep(2)
    finally:
        ua.stop(grace=60)  # valgrind writes its output at exit
    if not os.path.exists(out):
        sys.exit(f"link_order: callgrind wrote no {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webphone", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(bench.ROOT, "target")),
        "release/webphone-cli"))
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--calls", type=int, default=16,
                    help="concurrent SIPp calls in the call phase (paths a lone call never "
                         "takes: the scheduler's work stealing, tables growing)")
    a = ap.parse_args()
    for tool in ("valgrind", "kamailio", "sipp", "sox"):
        if not shutil.which(tool):
            sys.exit(f"link_order: {tool} is not installed (apt-get install {tool})")
    if not os.access(a.webphone, os.X_OK):
        sys.exit(f"link_order: no webphone-cli at {a.webphone} "
                 "(cargo build --release -p webphone-cli)")
    work = tempfile.mkdtemp(prefix="webphone-link-order-")
    bench.log(f"work dir {work}")
    name = os.path.basename(a.webphone)

    kam = bench.Kamailio(os.path.join(work, "kam"))
    try:
        reg = os.path.join(work, "registered.callgrind")
        run_profiled(a.webphone, os.path.join(work, "registered"), reg, kam=kam)
    finally:
        kam.stop()
    registered = callgrind_functions(reg, name)
    bench.log(f"start, REGISTER, idle: {len(registered)} functions")

    scenario = bench.call_scenario(work)
    call = os.path.join(work, "call.callgrind")
    run_profiled(a.webphone, os.path.join(work, "call"), call, call_scenario=scenario,
                 calls=a.calls)
    called = callgrind_functions(call, name)
    bench.log(f"start, {a.calls} concurrent calls with RTP: {len(called)} functions")

    funcs = sorted(registered | called)
    with open(a.out, "w") as f:
        f.write("".join(fn + "\n" for fn in funcs))
    bench.log(f"wrote {len(funcs)} symbols to {a.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
