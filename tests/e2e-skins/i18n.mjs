// Checks the translation files (no browser needed):
//   - every i18n/<lang>.json has exactly the keys of en.json, every value is a non-empty string,
//   - every text carries the same {placeholders} as its English original,
//   - the languages the skins offer (stringres.js LANGUAGES) are exactly the files in i18n/,
//   - every data-i18n* key used in the skins' HTML and every t('key') / sr.t('key') in their
//     scripts exists in en.json.
//   node tests/e2e-skins/i18n.mjs
import { readFileSync, readdirSync } from 'node:fs';
import vm from 'node:vm';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const I18N = path.join(ROOT, 'i18n');
const say = (m) => console.log(`[e2e-skins] ${m}`);

const problems = [];
const placeholders = (s) => (String(s).match(/\{[A-Za-z_][A-Za-z0-9_]*\}/g) || []).sort().join(' ');

const en = JSON.parse(readFileSync(path.join(I18N, 'en.json'), 'utf8'));
const enKeys = Object.keys(en).sort();
const files = readdirSync(I18N).filter((f) => /^[a-z]{2}\.json$/.test(f)).sort();
for (const f of files) {
  let tbl;
  try { tbl = JSON.parse(readFileSync(path.join(I18N, f), 'utf8')); } catch (e) { problems.push(`${f}: not JSON: ${e.message}`); continue; }
  const keys = Object.keys(tbl).sort();
  const missing = enKeys.filter((k) => !(k in tbl));
  const extra = keys.filter((k) => !(k in en));
  if (missing.length) { problems.push(`${f}: missing ${missing.join(', ')}`); }
  if (extra.length) { problems.push(`${f}: keys not in en.json: ${extra.join(', ')}`); }
  for (const k of enKeys) {
    if (!(k in tbl)) { continue; }
    if (typeof tbl[k] !== 'string' || tbl[k].trim() === '') { problems.push(`${f}: ${k} is empty or not a string`); continue; }
    if (placeholders(tbl[k]) !== placeholders(en[k])) {
      problems.push(`${f}: ${k} has placeholders [${placeholders(tbl[k])}], English has [${placeholders(en[k])}]`);
    }
  }
  // A translation identical to English in more than a third of the texts is most likely untranslated.
  if (f !== 'en.json') {
    const same = enKeys.filter((k) => tbl[k] === en[k] && /[a-z]{4}/.test(en[k])).length;
    if (same > enKeys.length / 3) { problems.push(`${f}: ${same} of ${enKeys.length} texts are the English ones`); }
  }
}

// The languages offered by stringres.js.
const sr = readFileSync(path.join(ROOT, 'skins/softphone/js/lib/stringres.js'), 'utf8');
const offered = [...sr.matchAll(/\{\s*code:\s*'([a-z]{2})'/g)].map((m) => m[1]).sort();
const fileLangs = files.map((f) => f.slice(0, 2));
if (offered.join() !== fileLangs.join()) { problems.push(`stringres.js offers [${offered}], i18n/ has [${fileLangs}]`); }
for (const need of ['en', 'de', 'fr', 'es', 'it', 'pt', 'hu', 'ro', 'ru', 'zh']) {
  if (!fileLangs.includes(need)) { problems.push(`no i18n/${need}.json`); }
}

// Keys used by the skins exist.
function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'lib') { walk(p, out); } } else if (/\.(html|js)$/.test(e.name)) { out.push(p); }
  }
  return out;
}
const used = new Set();
for (const file of walk(path.join(ROOT, 'skins'))) {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/data-i18n(?:-[a-z-]+)?="([a-z0-9_]+\.[a-z0-9_.]+)"/g)) { used.add(m[1]); }
  for (const m of text.matchAll(/\bt\(\s*'([a-z0-9_]+\.[a-z0-9_.]+)'\s*[,)]/g)) { used.add(m[1]); }
}
for (const m of sr.matchAll(/'(display\.[a-z_]+)'/g)) { used.add(m[1]); }
const unknown = [...used].filter((k) => !(k in en)).sort();
if (unknown.length) { problems.push(`keys used by the skins but not in en.json: ${unknown.join(', ')}`); }

// The engine's onDisplay texts (written as crates/webphone-engine formats them) are each
// recognised by a stringres.js DISPLAY pattern and come out in German as that key's text.
{
  const ctx = { window: {} };
  vm.createContext(ctx);
  vm.runInContext(sr, ctx);
  const de = JSON.parse(readFileSync(path.join(I18N, 'de.json'), 'utf8'));
  const strings = ctx.window.stringres;
  strings.put(Object.fromEntries(Object.entries(de).map(([k, v]) => [`${k}_en`, v])));
  const samples = [
    ['Authentication failed (401 Unauthorized)', 'display.reg_auth_failed'],
    ['No response from server', 'display.reg_no_response'],
    ['Server address unreachable (503 Service Unavailable)', 'display.reg_unreachable'],
    ['Register rejected (404 Not Found)', 'display.reg_rejected'],
    ['Register failed (42 x)', 'display.reg_failed'],
    ['account 1003@pbx: Authentication failed (403 Forbidden)', 'display.account'],
    ['SIP stack could not start: address in use', 'display.sip_start_failed'],
    ['customsipheader not used: bad header', 'display.customsipheader_unused'],
    ['No microphone: calls need one (checkmicrophone=2): no device', 'display.no_microphone_refused'],
    ['The transfer did not complete; the call is resumed', 'display.transfer_resumed'],
    ['Cannot open the recording device (busy); using the default one', 'display.capture_default'],
    ['Cannot open the playback device (busy); using the default one', 'display.playback_default'],
    ['transport 3 (HTTP tunnelling) is not supported by this engine: use -1 (auto), 0 (UDP), 1 (TCP), 2 (TLS) or 5 (UDP, no tunnel)', 'display.transport_unsupported'],
    ['The recording device USB Mic is gone (unplugged): using the default recording device default', 'display.capture_gone_default'],
    ['The playback device USB Set is gone (unplugged): using the default playback device default', 'display.playback_gone_default'],
    ['The recording device USB Mic is gone (unplugged): the default recording device cannot be opened either; silent until a device returns', 'display.capture_gone_silent'],
    ['The playback device USB Set is gone (unplugged): the default playback device cannot be opened either; silent until a device returns', 'display.playback_gone_silent'],
    ['The recording device USB Mic is back and in use again', 'display.capture_back'],
    ['The playback device USB Set is back and in use again', 'display.playback_back'],
    ['The recording volume (Capture on default) was muted: unmuted', 'display.volume_fixed_in'],
    ['The playback volume (Master on default) was at 5 %: set to 50 %', 'display.volume_fixed_out'],
  ];
  for (const [text, key] of samples) {
    const got = strings.display(text);
    const stem = de[key].split('{')[0];
    if (got === text || !got.startsWith(stem)) { problems.push(`onDisplay "${text}" is not shown as ${key} (got "${got}")`); }
  }
  const nested = strings.display('account 1003@pbx: Authentication failed (403 Forbidden)');
  if (!nested.includes(de['display.reg_auth_failed'].replace('{detail}', ' (403 Forbidden)'))) {
    problems.push(`an extra account's message is not translated inside its prefix: "${nested}"`);
  }
}

if (problems.length) {
  for (const p of problems) { say(`i18n FAIL: ${p}`); }
  process.exit(1);
}
say(`i18n: ${files.length} languages (${fileLangs.join(' ')}), ${enKeys.length} keys each, placeholders match; ${used.size} keys used by the skins all defined`);
