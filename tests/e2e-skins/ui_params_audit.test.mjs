// Audit of the user-interface parameters (issue 7): every row of the parameter catalog with
// scope `ui` must have its effect in the skins and be exercised by a browser scenario, or be
// listed with a reason as a documented choice. No browser; runs in well under a second:
//
//   node --test tests/e2e-skins/ui_params_audit.test.mjs
//
// The catalog is the project's own copy, `crates/webphone-engine/data/parameters.tsv` (nothing
// here reads ../shared). For each `ui` parameter:
//
//   1. "read": the skin that applies it names it as a quoted string literal ('name' or "name")
//      in its scripts, comments left out. The defaults tables (UI_DEFAULTS of common.js,
//      DEFAULTS / FROM_ENGINE of click2call.js) use bare keys, so listing a name there does not
//      count as reading it. Most parameters belong to the softphone skin; the floating-button
//      and button-colour ones to the click-to-call skin (CLICK2CALL_ONLY); a few apply to both
//      and must be read by both (BOTH).
//   2. "exercised": tests/e2e-skins/skins.mjs sets it for a scenario, as a `wp_<name>=` page URL
//      parameter or a `setparameter('<name>', ...)` call (comments left out).
//
// A parameter that meets neither must be listed in the section "User-interface parameters not
// applied by the skins" of docs/behaviour-choices.md as "- `name`: reason". An entry there for a
// parameter that is read and exercised after all fails too, so the list stays honest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const read = (rel) => readFileSync(path.join(ROOT, rel), 'utf8');

// Parameters of the click-to-call skin only (the softphone has no floating call button).
const CLICK2CALL_ONLY = new Set(['float_button', 'float_distance_from_top', 'float_distance_from_left',
  'float_distance_from_bottom', 'float_distance_from_right', 'call_button_color']);
// Parameters both skins apply.
const BOTH = new Set(['colortheme', 'language', 'sendchat', 'to']);

const EXEMPT_HEADING = '## User-interface parameters not applied by the skins';

function uiParameters() {
  const rows = read('crates/webphone-engine/data/parameters.tsv').split('\n');
  const head = rows[0].split('\t');
  const scope = head.indexOf('scope');
  assert.ok(scope > 0, 'parameters.tsv has a scope column');
  return rows.slice(1).map((r) => r.split('\t')).filter((f) => f[scope] === 'ui').map((f) => f[0].trim());
}

// Block comments, whole-line `//` comments and trailing ` // ...` comments removed (the skins
// write no `//` inside strings other than URLs, which have no space before them).
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n').map((l) => (/^\s*\/\//.test(l) ? '' : l.replace(/\s\/\/\s.*$/, ''))).join('\n');
}

function scripts(dir) {
  return readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.js')).sort()
    .map((f) => ({ file: `${dir}/${f}`, text: code(read(`${dir}/${f}`)) }));
}

const SOFTPHONE = scripts('skins/softphone/js/softphone');
const CLICK2CALL = scripts('skins/click2call/js/click2call');
const SCENARIOS = code(read('tests/e2e-skins/skins.mjs'));

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const readers = (files, name) => files.filter((f) => new RegExp(`(['"])${escape(name)}\\1`).test(f.text)).map((f) => f.file);
const exercised = (name) => new RegExp(`wp_${escape(name)}=|setparameter\\((['"])${escape(name)}\\1`, 'i').test(SCENARIOS);

// `- \`name\`: reason` lines of the exemption section.
function exemptions() {
  const md = read('docs/behaviour-choices.md');
  const start = md.indexOf(EXEMPT_HEADING);
  assert.ok(start >= 0, `docs/behaviour-choices.md has the section "${EXEMPT_HEADING.slice(3)}"`);
  const rest = md.slice(start + EXEMPT_HEADING.length);
  const end = rest.search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end);
  const out = new Map();
  for (const m of section.matchAll(/^- `([a-z_0-9]+)`: (.*)$/gm)) { out.set(m[1], m[2].trim()); }
  return out;
}

const PARAMS = uiParameters();
const EXEMPT = exemptions();

test('the catalog copy lists the 64 user-interface parameters', () => {
  assert.equal(PARAMS.length, 64, PARAMS.join(' '));
  for (const n of [...CLICK2CALL_ONLY, ...BOTH]) { assert.ok(PARAMS.includes(n), `${n} is a ui parameter`); }
});

test('every exemption names a ui parameter and gives a reason', () => {
  for (const [name, reason] of EXEMPT) {
    assert.ok(PARAMS.includes(name), `${name} (behaviour-choices.md) is not a ui parameter of the catalog`);
    assert.ok(reason.length >= 10, `${name}: the reason is missing`);
  }
});

const summary = { covered: 0, exempt: 0 };
for (const name of PARAMS) {
  test(`ui parameter ${name}`, () => {
    const c2k = readers(CLICK2CALL, name);
    const sp = readers(SOFTPHONE, name);
    const missing = [];
    if (!CLICK2CALL_ONLY.has(name) && !sp.length) { missing.push('not read by the softphone skin (skins/softphone/js/softphone/)'); }
    if ((CLICK2CALL_ONLY.has(name) || BOTH.has(name)) && !c2k.length) { missing.push('not read by the click-to-call skin (skins/click2call/js/click2call/)'); }
    if (!exercised(name)) { missing.push(`not exercised by tests/e2e-skins/skins.mjs (no wp_${name}= nor setparameter('${name}', ...))`); }
    if (EXEMPT.has(name)) {
      assert.ok(missing.length > 0, `${name} is read and exercised: remove it from "${EXEMPT_HEADING.slice(3)}"`);
      summary.exempt++;
      return;
    }
    assert.deepEqual(missing, [], `${name}: ${missing.join('; ')}; apply it or document why not in docs/behaviour-choices.md`);
    summary.covered++;
  });
}

test('summary', () => {
  console.log(`[ui-params] ${PARAMS.length} ui parameters: ${summary.covered} read and exercised, ${summary.exempt} documented as not applied`);
});
