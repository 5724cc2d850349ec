// Loads ui/webphone_api.js into a fresh vm context that plays the browser window.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

export const SOURCE = readFileSync(fileURLToPath(new URL('../webphone_api.js', import.meta.url)), 'utf8');

/**
 * `win` holds what the page's window has (WebSocket, __TAURI__, location, ...).
 * `staticParameters` replaces the empty static parameter block at the top of the file.
 * Returns { win, api, logs, dispose }; dispose() cancels the page's timers (the facade's
 * reconnect back-off) and keeps new ones from starting, so the test process can end.
 */
export function loadFacade(win = {}, { staticParameters } = {}) {
  const logs = [];
  let source = SOURCE;
  if (staticParameters) {
    const block = 'var parameters = {};';
    if (!source.includes(block)) { throw new Error('static parameter block not found'); }
    source = source.replace(block, `var parameters = ${JSON.stringify(staticParameters)};`);
  }
  const timers = new Set();
  let disposed = false;
  const pageSetTimeout = (fn, ms, ...rest) => {
    if (disposed) { return 0; }
    const h = setTimeout(() => { timers.delete(h); fn(...rest); }, ms);
    timers.add(h);
    return h;
  };
  const pageClearTimeout = (h) => { timers.delete(h); clearTimeout(h); };
  const w = {
    console: { log: (m) => logs.push(String(m)), error: (m) => logs.push(String(m)) },
    setTimeout: pageSetTimeout,
    clearTimeout: pageClearTimeout,
    Promise,
    document: { readyState: 'complete' },
    ...win,
  };
  w.window = w;
  vm.createContext(w);
  vm.runInContext(source, w);
  const dispose = () => {
    disposed = true;
    for (const h of timers) { clearTimeout(h); }
    timers.clear();
  };
  return { win: w, api: w.webphone_api, logs, dispose };
}

export const tick = () => new Promise((r) => setTimeout(r, 0));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` is true (polling), or fails after `ms`. */
export async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) { throw new Error(`timed out waiting for ${what}`); }
    await sleep(10);
  }
}
