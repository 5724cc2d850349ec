// Checks the translation files (no browser needed):
//   - every i18n/<lang>.json has exactly the keys of en.json, every value is a non-empty string,
//   - every text carries the same {placeholders} as its English original,
//   - the languages the skins offer (stringres.js LANGUAGES) are exactly the files in i18n/,
//   - every data-i18n* key used in the skins' HTML and every t('key') / sr.t('key') in their
//     scripts exists in en.json.
//   node tests/e2e-skins/i18n.mjs
import { readFileSync, readdirSync } from 'node:fs';
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

if (problems.length) {
  for (const p of problems) { say(`i18n FAIL: ${p}`); }
  process.exit(1);
}
say(`i18n: ${files.length} languages (${fileLangs.join(' ')}), ${enKeys.length} keys each, placeholders match; ${used.size} keys used by the skins all defined`);
