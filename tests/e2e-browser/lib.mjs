// Shared helpers of the browser tests (browser.mjs, techdemo.mjs): a static server for ui/, the
// local service (webphone-cli --serve), Chromium flags, screenshots. Everything started here is
// stopped by handle.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const UI = path.join(ROOT, 'ui');
export const OUT = process.env.E2E_OUT || path.join(ROOT, 'target/e2e-browser');
export const CLI = process.env.E2E_CLI || path.join(ROOT, 'target/debug/webphone-cli');
export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const TIMEOUT = 15000;

export const say = (m) => console.log(`[e2e-browser] ${m}`);

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};

// A read-only static server for ui/ on a free loopback port.
export function staticServer() {
  const server = http.createServer((req, res) => {
    let rel;
    try { rel = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { rel = '/'; }
    if (rel === '/favicon.ico') { res.writeHead(204).end(); return; } // no icon; keeps the console clean
    const file = path.resolve(UI, '.' + rel);
    if (req.method !== 'GET' || (file !== UI && !file.startsWith(UI + path.sep))) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (!statSync(file).isFile()) { throw new Error('not a file'); }
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
        'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Starts webphone-cli --serve on a free port admitting `origin`; resolves {child, port}.
export function startService(origin, extra = []) {
  const child = spawn(CLI, ['--serve', '127.0.0.1:0', '--allow-origin', origin,
    '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', ...extra],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  let stderr = '';
  child.stdout.on('data', () => {}); // notifications; not needed here
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('webphone-cli reported no address: ' + stderr)), 10000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /serving ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), log: () => stderr }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`webphone-cli exited (${code}): ${stderr}`)); });
  });
}

export function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) { return Promise.resolve(); }
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

export async function shot(page, name) {
  const file = path.join(OUT, name);
  await page.screenshot({ path: file, fullPage: true });
  say(`screenshot ${path.relative(ROOT, file)}`);
}

export function watchConsole(page, label) {
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') { say(`${label} console ${m.type()}: ${m.text()}`); } });
  page.on('pageerror', (e) => say(`${label} page error: ${e.message}`));
}

