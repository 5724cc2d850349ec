// Benchmark (prints numbers, asserts nothing timed): time from starting the app binary to
// Kamailio logging its REGISTER as done, without WebDriver in between, and the memory of all the
// app's processes (app + WebKit web/network processes) once registered and idle, then in a call
// (baresip 1002 calls the app, which answers on its own with autoaccept=true); then the sizes
// of the installers in target/release/bundle (scripts/build-brand.sh) and what they install.
//
//   xvfb-run -a node tests/e2e-desktop/bench-launch.mjs [--doc docs/benchmarks.md] [APP] [RUNS]
//
// --doc FILE replaces the "## Desktop app" section at the end of FILE with the numbers (the
// load benchmark, which generates the rest of docs/benchmarks.md, keeps that section).
// APP defaults to target/release/webphone-desktop, RUNS to 3. Needs kamailio and baresip
// (tests/e2e-peers). Each run has its own profile and HOME (temporary directories, removed
// afterwards).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { requirePeers, startKamailio, startBaresip, freePort, ROOT } from '../e2e-peers/peers.mjs';

requirePeers(['kamailio', 'baresip'], 'tests/e2e-desktop/bench-launch.mjs');
const argv = process.argv.slice(2);
let DOC = null;
const di = argv.findIndex((a) => a === '--doc' || a.startsWith('--doc='));
if (di >= 0) {
  DOC = argv[di].includes('=') ? argv[di].slice(6) : argv[di + 1];
  argv.splice(di, argv[di].includes('=') ? 1 : 2);
}
const APP = resolve(argv[0] || join(ROOT, 'target/release/webphone-desktop'));
const RUNS = Number(argv[1] || 3);
const startedAt = new Date();
const loadStart = loadavg().map((v) => v.toFixed(2)).join(' ');
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
const peer = await startBaresip({ user: '1002', kamailio: k, answer: 'auto' });
const times = []; const mems = []; const callMems = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    const work = mkdtempSync(join(tmpdir(), 'wp-bench-launch-'));
    const user = String([1001, 1003, 1004, 1005][(run - 1) % 4]);
    const before = k.lines().filter((l) => l.includes('REGISTERED') && l.includes(user)).length;
    const t0 = process.hrtime.bigint();
    const app = spawn(APP, ['--work-dir', work, '-p', `serveraddress=${k.addr}`, '-p', `username=${user}`,
      '-p', `password=pass${user}`, '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null',
      '-p', 'localip=127.0.0.1', '-p', `signalingport=${await freePort()}`, '-p', 'autoaccept=true'],
    { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, RUST_LOG: 'warn', HOME: work } });
    try {
      await k.waitLine(['REGISTERED', user], { count: before + 1, timeoutMs: 30000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      times.push(ms);
      await sleep(3000);
      const m = memory(app.pid);
      mems.push(m);
      const established = peer.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
      const closed = peer.events().filter((e) => e.type === 'CALL_CLOSED').length;
      await peer.command(`dial ${k.uriOf(user)}`);
      await peer.waitEventCount('CALL_ESTABLISHED', established + 1);
      await sleep(3000);
      const c = memory(app.pid);
      callMems.push(c);
      await peer.command('hangup');
      await peer.waitEventCount('CALL_CLOSED', closed + 1);
      console.log(`run ${run}: launch to registered ${ms.toFixed(0)} ms; idle ${m.rss.toFixed(1)} MiB RSS, ${m.pss.toFixed(1)} MiB PSS in ${m.processes} processes; in a call ${c.rss.toFixed(1)} MiB RSS, ${c.pss.toFixed(1)} MiB PSS in ${c.processes} processes`);
    } finally {
      app.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { app.kill('SIGKILL'); r(); }, 5000); app.once('exit', () => { clearTimeout(t); r(); }); });
      rmSync(work, { recursive: true, force: true });
    }
  }
} finally {
  await peer.stop();
  await k.stop();
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const loadEnd = loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`median of ${RUNS}: launch to registered ${median(times).toFixed(0)} ms; idle ${median(mems.map((m) => m.rss)).toFixed(1)} MiB RSS, ${median(mems.map((m) => m.pss)).toFixed(1)} MiB PSS; in a call ${median(callMems.map((m) => m.rss)).toFixed(1)} MiB RSS, ${median(callMems.map((m) => m.pss)).toFixed(1)} MiB PSS (${APP})`);

// Installers next to the binary (target/release/bundle/{deb,rpm}) and what they install.
const bundle = join(dirname(APP), 'bundle');
const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
const installers = [];
for (const [kind, ext] of [['deb', '.deb'], ['rpm', '.rpm']]) {
  const dir = join(bundle, kind);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)) : [];
  for (const f of files) {
    const file = join(dir, f);
    let installed = 'unknown';
    try {
      installed = kind === 'deb'
        ? mib(Number(execFileSync('dpkg-deb', ['-f', file, 'Installed-Size'], { encoding: 'utf8' }).trim()) * 1024)
        : mib(Number(execFileSync('rpm', ['-qp', '--qf', '%{SIZE}', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()));
    } catch { /* tool missing */ }
    console.log(`installer ${f}: ${mib(statSync(file).size)}, installs ${installed} (built ${statSync(file).mtime.toISOString()})`);
    installers.push({ f, size: mib(statSync(file).size), installed, built: statSync(file).mtime.toISOString().slice(0, 16).replace('T', ' ') });
  }
}

if (DOC) {
  const f1 = (v) => v.toFixed(1);
  const runs = (a, fmt) => a.map(fmt).join(', ');
  const L = [
    '## Desktop app',
    '',
    `Generated by \`xvfb-run -a node tests/e2e-desktop/bench-launch.mjs --doc ${DOC}${argv.length ? ' ' + argv.join(' ') : ''}\`` +
      ' — rerun it instead of editing; the load benchmark above keeps this section.',
    '',
    `- Date: ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC; binary ${APP.replace(ROOT + '/', '')} ` +
      `(${mib(statSync(APP).size)}, built ${statSync(APP).mtime.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    `- Machine: ${cpus().length} CPUs (${(cpus()[0] || {}).model || '?'}), ${Math.round(totalmem() / 1048576)} MiB RAM, ` +
      `under Xvfb without a desktop; load average ${loadStart} -> ${loadEnd} (shared with other builds)`,
    '- Launch to registered: from spawning the binary to Kamailio logging the REGISTER done (no WebDriver in between).',
    '- Memory: all processes of the app (the app and its WebKit web and network processes), RSS and PSS ' +
      '(PSS shares the libraries the processes have in common); idle = registered 3 s, in a call = 3 s after ' +
      "baresip's G.711 call was answered (autoaccept=true), sound devices off (audiodevicein/out=null).",
    '',
    `| measure | median of ${RUNS} runs | each run |`,
    '|---|---|---|',
    `| launch to registered | ${median(times).toFixed(0)} ms | ${runs(times, (v) => v.toFixed(0))} ms |`,
    `| memory idle, registered | ${f1(median(mems.map((m) => m.rss)))} MiB RSS, ${f1(median(mems.map((m) => m.pss)))} MiB PSS ` +
      `(${mems[0] ? mems[0].processes : '?'} processes) | ${runs(mems, (m) => f1(m.pss))} MiB PSS |`,
    `| memory in a call | ${f1(median(callMems.map((m) => m.rss)))} MiB RSS, ${f1(median(callMems.map((m) => m.pss)))} MiB PSS ` +
      `(${callMems[0] ? callMems[0].processes : '?'} processes) | ${runs(callMems, (m) => f1(m.pss))} MiB PSS |`,
    ...installers.map((i) => `| installer ${i.f} (scripts/build-brand.sh default, built ${i.built} UTC) | ${i.size} | installs ${i.installed} |`),
    '',
  ];
  const old = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '';
  const at = old.indexOf('## Desktop app');
  const head = (at >= 0 ? old.slice(0, at) : old).replace(/\n*$/, '\n\n');
  writeFileSync(DOC, head + L.join('\n'));
  console.log(`wrote the "## Desktop app" section of ${DOC}`);
}
