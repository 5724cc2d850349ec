// Benchmark (prints numbers, asserts nothing timed): time from starting the app binary to
// Kamailio logging its REGISTER as done, without WebDriver in between, and the memory of all the
// app's processes (app + WebKit web/network processes) once registered and idle.
//
//   xvfb-run -a node tests/e2e-desktop/bench-launch.mjs [APP] [RUNS]
//
// APP defaults to target/release/webphone-desktop, RUNS to 3. Needs kamailio (tests/e2e-peers).
// Each run has its own profile and HOME (temporary directories, removed afterwards).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requirePeers, startKamailio, freePort, ROOT } from '../e2e-peers/peers.mjs';

requirePeers(['kamailio'], 'tests/e2e-desktop/bench-launch.mjs');
const APP = resolve(process.argv[2] || join(ROOT, 'target/release/webphone-desktop'));
const RUNS = Number(process.argv[3] || 3);
const sleep = (n) => new Promise((r) => setTimeout(r, n));

function memory(rootPid) {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,rss='], { encoding: 'utf8' }).trim().split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const tree = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of rows) { if (!tree.has(pid) && tree.has(ppid)) { tree.add(pid); grew = true; } }
  }
  let rss = 0; let pss = 0;
  for (const [pid, , r] of rows) { if (tree.has(pid)) { rss += r; } }
  for (const pid of tree) {
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
      if (m) { pss += +m[1]; }
    } catch { /* gone */ }
  }
  return { rss: rss / 1024, pss: pss / 1024, processes: tree.size };
}

const k = await startKamailio();
const times = []; const mems = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    const work = mkdtempSync(join(tmpdir(), 'wp-bench-launch-'));
    const user = String(1000 + ((run - 1) % 5) + 1);
    const before = k.lines().filter((l) => l.includes('REGISTERED') && l.includes(user)).length;
    const t0 = process.hrtime.bigint();
    const app = spawn(APP, ['--work-dir', work, '-p', `serveraddress=${k.addr}`, '-p', `username=${user}`,
      '-p', `password=pass${user}`, '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null',
      '-p', 'localip=127.0.0.1', '-p', `signalingport=${await freePort()}`],
    { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, RUST_LOG: 'warn', HOME: work } });
    try {
      await k.waitLine(['REGISTERED', user], { count: before + 1, timeoutMs: 30000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      times.push(ms);
      await sleep(3000);
      const m = memory(app.pid);
      mems.push(m);
      console.log(`run ${run}: launch to registered ${ms.toFixed(0)} ms; idle ${m.rss.toFixed(1)} MiB RSS, ${m.pss.toFixed(1)} MiB PSS in ${m.processes} processes`);
    } finally {
      app.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { app.kill('SIGKILL'); r(); }, 5000); app.once('exit', () => { clearTimeout(t); r(); }); });
      rmSync(work, { recursive: true, force: true });
    }
  }
} finally {
  await k.stop();
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`median of ${RUNS}: launch to registered ${median(times).toFixed(0)} ms; idle ${median(mems.map((m) => m.rss)).toFixed(1)} MiB RSS, ${median(mems.map((m) => m.pss)).toFixed(1)} MiB PSS (${APP})`);
